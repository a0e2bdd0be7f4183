"""Speed benchmark of vc_toolkit: preprocessing, batching, training, conversion, memory.

Run through ``./bench/run.sh [--quick]`` (installs the bench extras first), or
directly with ``python bench/bench.py [--quick]`` from the repository root.
Writes ``bench/results/<YYYY-MM-DD>-<host>.json`` and ``.md`` (``-quick`` added
for quick runs) and prints the Markdown report. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("TQDM_DISABLE", "1")  # read by tqdm at import: no progress bars in figures

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from machine import load_average, machine_info  # noqa: E402

if TYPE_CHECKING:
    from vc_toolkit.config import TagConfig
    from vc_toolkit.paths import Layout

SECTIONS = ("preprocess", "batching", "training", "conversion", "memory", "vocoder", "tts")


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of each figure a run measures."""

    pairs: int | None  # stage-1 pairs per repetition (None: all)
    preprocess_reps: int
    batching_epochs: int
    train: dict[str, tuple[int, int]]  # preset → (warm-up steps, measured steps)
    predictors: tuple[str, ...]
    conversion_reps: int
    vocoder_reps: int
    memory_pairs: int
    memory_steps: int
    vocoder: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    """Vocoder size → (warm-up steps, measured steps) of HiFi-GAN training."""
    vocoder_presets: tuple[str, ...] = ("v1", "v2", "v3", "tiny")
    tts: tuple[int, int, int] = (1, 2, 1)
    """Text-to-speech: (warm-up steps, measured steps, synthesis repetitions)."""


VARIANTS = ("conv", "ar", "arnar", "gmm")
QUICK = Plan(12, 2, 10, {"demo": (1, 3)}, VARIANTS, 3, 1, 4, 1, {"tiny": (1, 3)}, ("tiny",))
FULL = Plan(
    48, 5, 50, {"demo": (2, 10), "base": (1, 4)}, VARIANTS, 9, 3, 8, 2,
    {"tiny": (1, 5), "v1": (1, 2)}, tts=(2, 10, 3),
)  # fmt: skip


def wait_until_quiet(threshold: float, limit_s: float, poll_s: float = 15.0) -> list[float]:
    """Poll the 1-minute load average until it is below ``threshold`` or ``limit_s`` passed."""
    deadline = time.monotonic() + limit_s
    load = load_average()
    while load and load[0] >= threshold and time.monotonic() < deadline:
        print(f"[bench] load {load[0]:.2f} >= {threshold}; waiting", file=sys.stderr, flush=True)
        time.sleep(poll_s)
        load = load_average()
    return load


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run_preprocess(layout: Layout, spk: str, plan: Plan) -> dict:
    from preproc import bench_preprocess

    _log(f"1/5 stage-1 preprocessing: {plan.pairs or 'all'} pairs x {plan.preprocess_reps} reps")
    return bench_preprocess(layout, spk, plan.pairs, plan.preprocess_reps)


def run_batching(layout: Layout, spk: str, tag_cfg: TagConfig, plan: Plan) -> dict:
    from batching import bench_batching

    from vc_toolkit.data.dump import DumpSplit

    _log(f"2/5 batching: {plan.batching_epochs} epochs")
    train = DumpSplit(layout.dump(spk) / "train")
    return bench_batching(
        train.tgt_frames,
        train.src_frames,
        batch_size=tag_cfg.train.batch_size,
        epochs=plan.batching_epochs,
        seed=tag_cfg.train.seed,
        max_frames=tag_cfg.train.max_frames,
    )


def _variants(layout: Layout, tag: str, presets, predictors) -> dict:
    from training import variant_config

    from vc_toolkit.config import load_tag

    own = load_tag(tag, layout.root).model.preset
    return {
        preset: {
            p: variant_config(layout, tag, p, None if preset == own else preset) for p in predictors
        }
        for preset in presets
    }


def run_training(layout: Layout, tag: str, plan: Plan) -> dict:
    from training import bench_training

    out = {}
    variants = _variants(layout, tag, plan.train, plan.predictors)
    for preset, by_pred in variants.items():
        warmup, steps = plan.train[preset]
        for pred, cfg in by_pred.items():
            _log(f"3/5 training: {preset} preset, {pred}: {warmup} + {steps} steps")
            out[f"{preset}/{pred}"] = bench_training(
                layout, f"bench-{preset}-{pred}", cfg, steps, warmup
            )
    return out


def run_conversion(layout: Layout, spk: str, tag: str, plan: Plan) -> dict:
    from conversion import bench_conversion

    from vc_toolkit.config import load_spk

    _log(f"4/5 conversion: {plan.conversion_reps} reps (vocoders {plan.vocoder_reps})")
    variants = _variants(layout, tag, ("demo", "base"), plan.predictors)
    return bench_conversion(
        layout,
        load_spk(spk, layout.root),
        spk,
        variants,
        plan.conversion_reps,
        vocoder_reps=plan.vocoder_reps,
        presets=plan.vocoder_presets,
    )


def run_memory(layout: Layout, spk: str, tag: str, plan: Plan) -> dict:
    from memory import measure

    _log("5/5 memory: stage-1 workers and base-preset training, each in a fresh process")
    root = layout.root
    return {
        "stage1": measure("stage1", "--spk", spk, "--pairs", str(plan.memory_pairs), root=root),
        "train": measure(
            "train", "--tag", tag, "--preset", "base", "--steps", str(plan.memory_steps), root=root
        ),
    }


def run_vocoder(layout: Layout, spk: str, plan: Plan) -> dict:
    from memory import measure
    from vocoder import bench_vocoder_training

    out: dict = {"training": {}, "memory": {}}
    for size, (warmup, steps) in plan.vocoder.items():
        _log(f"6/6 vocoder training: {size}, {warmup} + {steps} steps")
        out["training"][size] = bench_vocoder_training(layout, spk, size, steps, warmup)
        out["memory"][size] = measure("voc", "--spk", spk, "--size", size, root=layout.root)
    return out


def run_tts(layout: Layout, plan: Plan) -> dict:
    from tts import bench_tts

    warmup, steps, reps = plan.tts
    _log(f"7/7 text-to-speech: training {warmup} + {steps} steps, synthesis {reps} reps")
    return bench_tts(layout, steps=steps, warmup=warmup, reps=reps)


def notes(res: dict) -> list[str]:
    """Context a reader of the table needs, derived from the measured figures."""
    out = []
    pre = res.get("preprocess")
    if pre:
        steps = pre["pipelines"]["ours_nj1"]["steps"]
        total = sum(s["median"] for s in steps.values()) or 1.0
        share = steps["f0"]["median"] / total
        plain = pre["pipelines"]["straightforward"]["steps"]
        plain_share = plain["f0"]["median"] / (sum(s["median"] for s in plain.values()) or 1.0)
        out.append(
            f"WORLD F0 (dio + stonemask) is {100 * share:.0f}% of stage 1's step time and "
            f"{100 * plain_share:.0f}% of the straightforward script's; stage 1 runs dio "
            "with the spk's dio_speed, the script with pyworld's default speed 1 (row "
            "'dio_speed 1' shows stage 1 with that setting; see bench/README.md, 'Profiles')."
        )
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 2 minutes)")
    parser.add_argument("--root", type=Path, default=HERE.parent, help="recipe root")
    parser.add_argument("--spk", default="demo", help="dataset version measured")
    parser.add_argument("--tag", default="demo_conv", help="base experiment of the variants")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="measure only these figures")
    parser.add_argument(
        "--wait_quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the 1-minute load average to drop below 0.6",
    )
    args = parser.parse_args(argv)

    from preproc import ensure_features

    from vc_toolkit.config import load_tag
    from vc_toolkit.paths import Layout

    plan = QUICK if args.quick else FULL
    sections = args.only or SECTIONS
    layout = Layout(args.root.resolve())
    ensure_features(layout, args.spk)
    if args.wait_quiet > 0:
        wait_until_quiet(0.6, args.wait_quiet)
    res: dict = {"mode": "quick" if args.quick else "full", "plan": dataclasses.asdict(plan)}
    res["machine"] = machine_info()
    res["load_before"] = load_average()
    start = time.perf_counter()
    tag_cfg = load_tag(args.tag, layout.root)
    runners = {
        "preprocess": lambda: run_preprocess(layout, args.spk, plan),
        "batching": lambda: run_batching(layout, args.spk, tag_cfg, plan),
        "training": lambda: run_training(layout, args.tag, plan),
        "conversion": lambda: run_conversion(layout, args.spk, args.tag, plan),
        "memory": lambda: run_memory(layout, args.spk, args.tag, plan),
        "vocoder": lambda: run_vocoder(layout, args.spk, plan),
        "tts": lambda: run_tts(layout, plan),
    }
    res["section_seconds"] = {}
    for name in SECTIONS:
        if name in sections:
            tick = time.perf_counter()
            res[name] = runners[name]()
            res["section_seconds"][name] = round(time.perf_counter() - tick, 1)
            _log(f"{name}: {res['section_seconds'][name]:.0f} s")
    res["wall_seconds"] = time.perf_counter() - start
    res["load_after"] = load_average()

    from report import markdown, targets

    res["targets"] = targets(res)
    res["notes"] = notes(res)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{res['machine']['date'][:10]}-{res['machine']['host']}"
    stem += "-quick" if args.quick else ""
    text = markdown(res)
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(text)
    print(text)
    _log(f"results: {args.out / stem}.json and .md")
    return res


if __name__ == "__main__":
    main()
