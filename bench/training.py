"""Figure 3: training throughput per model preset and predictor type.

Each variant is set up exactly as stage 2 sets up a tag
(:func:`vc_toolkit.train.setup.setup`, into a temporary folder, nothing
written) and runs real optimizer steps (:meth:`vc_toolkit.train.loop.Trainer._step`)
on batches from the tag's own data loader, in the training order of epoch 0.
Per step it records the time spent waiting for the batch (data loader) and the
time of the step, as the training loop logs them. The first ``warmup`` steps
are not counted (allocator and thread-pool start-up).

Seconds per epoch are extrapolated from the measured throughput:
``target frames of the train split / target frames per second``.

Run as a script, it compares contenders side by side (issue 17): the old commit (a
worktree, ``--old``), the new code, the new code with the reference attention, bf16
autocast, ``train.compile``; each run in a fresh process, interleaved, the ratio to
the first contender formed within each repetition::

    python bench/training.py --root /work/main --old ../wt-speed-old --reps 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from timing import summarize

from vc_toolkit.config import TagConfig, build, load_tag, to_dict
from vc_toolkit.config.resolve import deep_merge, load_raw
from vc_toolkit.paths import Layout

PREDICTORS = {
    "conv": {"pitch_predictor": {"type": "conv"}, "prosody": {"type": "none"}},
    "ar": {"pitch_predictor": {"type": "ar"}, "prosody": {"type": "none"}},
    "arnar": {"pitch_predictor": {"type": "arnar"}, "prosody": {"type": "none"}},
    "gmm": {"pitch_predictor": {"type": "conv"}, "prosody": {"type": "gmm", "use_global": True}},
}
"""Model overrides of each predictor variant (``gmm``: wGMM segment prosody, conv pitch)."""


def variant_config(
    layout: Layout, tag: str, predictor: str, preset: str | None = None, threads: int | None = None
) -> TagConfig:
    """``tag``'s resolved config with another predictor type and optionally another preset.

    Args:
        layout: Recipe root.
        tag: Base experiment, e.g. ``demo_conv``.
        predictor: ``conv``, ``ar``, ``arnar`` or ``gmm`` (see :data:`PREDICTORS`).
        preset: ``conf/model/<preset>.yaml`` replacing the tag's model block (None: keep it).
        threads: ``train.num_threads`` (None: keep the tag's).

    Raises:
        ValueError: unknown predictor.
    """
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}; use one of {', '.join(PREDICTORS)}")
    data = to_dict(load_tag(tag, layout.root))
    if preset is not None:
        model, _ = load_raw(layout, "model", preset)
        data["model"] = {**model, "preset": preset}
    data["model"] = deep_merge(data["model"], PREDICTORS[predictor])
    if threads is not None:
        data["train"]["num_threads"] = threads
    return build(TagConfig, data, where=f"bench variant of tag {tag} ({preset}, {predictor})")


def _batches(exp):
    """Endless batches in training order (epoch 0, 1, ...), each with its waiting time."""
    epoch = 0
    while True:
        exp.sampler.set_epoch(epoch)
        gen = torch.Generator()
        gen.manual_seed(exp.cfg.train.seed * 1000003 + epoch)
        loader = iter(exp.train_loader(gen))
        while True:
            start = time.perf_counter()
            try:
                batch = next(loader)
            except StopIteration:
                break
            yield batch, time.perf_counter() - start
        epoch += 1


def bench_training(layout: Layout, tag: str, cfg: TagConfig, steps: int, warmup: int = 2) -> dict:
    """Throughput of ``steps`` training steps of ``cfg`` (after ``warmup`` uncounted steps).

    Args:
        layout: Recipe root (the spk's features built).
        tag: Name used for the run (nothing is written under it).
        cfg: Resolved tag config, e.g. from :func:`variant_config`.
        steps: Measured steps (>= 1).
        warmup: Steps run first and not counted.

    Returns:
        ``params``, ``threads``, ``batch_size``, ``steps``, and summarised per-step
        ``frames_per_second`` (target frames), ``step_seconds`` (wait + step),
        ``loader_share`` (wait / (wait + step)) and ``epoch_seconds`` (extrapolated).
    """
    from vc_toolkit.train.loop import Trainer
    from vc_toolkit.train.setup import setup

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    with tempfile.TemporaryDirectory(prefix="vc-bench-train-") as tmp:
        exp = setup(tag, layout, "cpu", cfg=cfg, exp_dir=Path(tmp), write=False)
        trainer = Trainer(exp, save_checkpoints=False)
        epoch_frames = float(exp.train_set.tgt_frames.sum())
        fps, total, share = [], [], []
        batches = _batches(exp)
        for k in range(warmup + steps):
            batch, wait = next(batches)
            start = time.perf_counter()
            trainer._step(batch.to(exp.device))
            compute = time.perf_counter() - start
            if k < warmup:
                continue
            frames = float(batch.tgt_lens.sum())
            fps.append(frames / (wait + compute))
            total.append(wait + compute)
            share.append(wait / (wait + compute))
        return {
            "params": exp.core.num_params(),
            "threads": torch.get_num_threads(),
            "batch_size": cfg.train.batch_size,
            "steps": steps,
            "warmup_steps": warmup,
            "frames_per_second": summarize(fps),
            "step_seconds": summarize(total),
            "loader_share": summarize(share),
            "epoch_seconds": summarize([epoch_frames / f for f in fps]),
        }


# ---- side-by-side speed rows (issue 17): each contender in its own process ----------------


@dataclass(frozen=True)
class Contender:
    """One row of the speed comparison.

    Attributes:
        name: Row label, e.g. ``new sdpa``.
        code: Repository root whose ``vc_toolkit`` the worker imports (old or new commit).
        fused: ``fused_attention`` mode (None: the code's default; old code has no switch).
        precision: ``train.precision`` (None: leave the key out, old code lacks it).
        compile: ``train.compile``. The worker then first runs every measured batch once
            untimed (compiling each length bucket) and records that pass's seconds as
            ``compile_seconds``; the timed steps are the second pass over the same batches.
        frames: frame-budget batches (``train.batch_frames`` = B × the mean source + target
            frames of the train split, about B utterances per step) instead of ``batch_size``.
    """

    name: str
    code: str
    fused: bool | None = None
    precision: str | None = None
    compile: bool = False
    frames: bool = False


def _worker(spec: dict) -> dict:
    """Run in the worker process: ``warmup + steps`` steps of one contender, per-step times."""
    from contextlib import nullcontext

    from vc_toolkit.train.loop import Trainer
    from vc_toolkit.train.setup import setup

    layout = Layout(Path(spec["root"]))
    cfg = variant_config(layout, spec["tag"], spec["predictor"], spec["preset"], spec["threads"])
    data = to_dict(cfg)
    data["train"]["batch_size"] = spec["batch_size"]
    if spec.get("frames"):
        from vc_toolkit.data.dump import DumpSplit

        train = DumpSplit(layout.dump(cfg.spk) / "train")
        mean = (sum(train.src_frames) + sum(train.tgt_frames)) / len(train)
        data["train"]["batch_frames"] = round(spec["batch_size"] * mean)
        data["train"]["batch_size"] = 16  # batch_frames excludes batch_size's scheme
    for stack in ("encoder", "decoder"):
        data["model"][stack]["pos_enc"] = spec["pos_enc"]
    if spec.get("precision"):
        data["train"]["precision"] = spec["precision"]
    if spec.get("compile"):
        data["train"]["compile"] = True
    cfg = build(TagConfig, data, where="bench contender")
    mode = nullcontext()
    if spec.get("fused") is not None:
        from vc_toolkit.models.layers import fused_attention

        mode = fused_attention(spec["fused"])
    exp_dir = Path(spec["exp_dir"]) if spec.get("exp_dir") else Path(tempfile.mkdtemp())
    exp = setup("bench-speed", layout, "cpu", cfg=cfg, exp_dir=exp_dir, write=False)
    trainer = Trainer(exp, save_checkpoints=False)
    batches = _batches(exp)
    seconds, frames, waits = [], [], []
    compile_seconds = 0.0
    with mode:
        todo = [next(batches) for _ in range(spec["warmup"] + spec["steps"])]
        if spec.get("compile"):  # compile every measured batch's bucket first, untimed
            start = time.perf_counter()
            for batch, _ in todo:
                trainer._step(batch.to(exp.device))
            compile_seconds = time.perf_counter() - start
        for batch, wait in todo:
            start = time.perf_counter()
            trainer._step(batch.to(exp.device))
            seconds.append(time.perf_counter() - start)
            frames.append(float(batch.tgt_lens.sum()))
            waits.append(wait)
    threads = torch.get_num_threads()
    return {
        "seconds": seconds,
        "frames": frames,
        "waits": waits,
        "threads": threads,
        "compile_seconds": compile_seconds,
    }


def run_contender(c: Contender, spec: dict) -> dict:
    """One contender in a fresh process with ``c.code`` first on ``PYTHONPATH``."""
    spec = {**spec, "fused": c.fused, "precision": c.precision, "compile": c.compile}
    spec["frames"] = c.frames
    env = {**os.environ, "PYTHONPATH": c.code, "TQDM_DISABLE": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"contender {c.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(contenders: list[Contender], specs: list[dict], reps: int) -> list[dict]:
    """Interleaved rows: for each spec, every contender once per repetition, in turn.

    Returns:
        One row per (spec, contender): the spec, per-repetition target frames/s over the
        measured steps, the loader share, the ratio to the first contender formed within
        each repetition, and the raw per-step ``runs`` (seconds, frames, waits).
    """
    rows = []
    for spec in specs:
        fps: dict[str, list[float]] = {c.name: [] for c in contenders}
        share: dict[str, list[float]] = {c.name: [] for c in contenders}
        raw: dict[str, list[dict]] = {c.name: [] for c in contenders}
        for _ in range(reps):
            for c in contenders:
                r = run_contender(c, spec)
                raw[c.name].append(r)
                w = spec["warmup"]
                secs, waits = sum(r["seconds"][w:]), sum(r["waits"][w:])
                fps[c.name].append(sum(r["frames"][w:]) / (secs + waits))
                share[c.name].append(waits / (secs + waits))
        base = fps[contenders[0].name]
        for c in contenders:
            rows.append(
                {
                    **{k: spec[k] for k in ("predictor", "pos_enc", "batch_size", "threads")},
                    "contender": c.name,
                    "frames_per_second": summarize(fps[c.name]),
                    "loader_share": summarize(share[c.name]),
                    "ratio": summarize([a / b for a, b in zip(fps[c.name], base)]),
                    "compile_seconds": summarize(
                        [r.get("compile_seconds", 0.0) for r in raw[c.name]]
                    ),
                    "runs": raw[c.name],
                }
            )
            _say(
                f"{spec['predictor']} {spec['pos_enc']} B={spec['batch_size']} {c.name}: "
                f"{rows[-1]['frames_per_second']['median']:.0f} frames/s, "
                f"x{rows[-1]['ratio']['median']:.2f}"
            )
    return rows


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def markdown(rows: list[dict]) -> str:
    """The comparison as a Markdown table (medians with min–max)."""
    lines = [
        "| predictor | positions | B | contender | target frames/s | ratio to first | loader "
        "| compile pass |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        f, q = r["frames_per_second"], r["ratio"]
        lines.append(
            f"| {r['predictor']} | {r['pos_enc']} | {r['batch_size']} | {r['contender']} | "
            f"{f['median']:.0f} [{f['min']:.0f}–{f['max']:.0f}] | "
            f"{q['median']:.2f} [{q['min']:.2f}–{q['max']:.2f}] | "
            f"{100 * r['loader_share']['median']:.1f}% | "
            + (f"{c['median']:.0f} s |" if (c := r.get("compile_seconds")) and c["max"] else "– |")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``--worker SPEC`` (internal), or the side-by-side comparison (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--old", help="repository root of the old commit (a worktree)")
    parser.add_argument("--tag", default="demo_conv")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--predictors", default="conv,ar")
    parser.add_argument("--batch_sizes", default="8,16")
    parser.add_argument("--pos_enc", default="rel")
    parser.add_argument("--contenders", default="old,new,new_bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--out", help="JSON file for the rows (the table goes to stdout)")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    new = str(Path(__file__).resolve().parents[1])
    known = {
        "old": Contender("old", args.old or ""),
        "new": Contender("new", new),
        "new_reference_attention": Contender("new, reference attention", new, fused=False),
        "new_bf16": Contender("new, bf16", new, precision="bf16"),
        "new_compile": Contender("new, compile", new, compile=True),
        "new_frames": Contender("new, batch_frames", new, frames=True),
        "new_bf16_compile": Contender("new, bf16 + compile", new, precision="bf16", compile=True),
        "new_all": Contender(
            "new, bf16 + compile + batch_frames", new, precision="bf16", compile=True, frames=True
        ),
    }
    contenders = [known[k] for k in args.contenders.split(",")]
    if any(c.name == "old" for c in contenders) and not args.old:
        parser.error("--old is needed for the old contender")
    specs = [
        {
            "root": args.root,
            "tag": args.tag,
            "preset": args.preset,
            "predictor": p,
            "pos_enc": args.pos_enc,
            "batch_size": int(b),
            "threads": args.threads,
            "steps": args.steps,
            "warmup": args.warmup,
        }
        for p in args.predictors.split(",")
        for b in args.batch_sizes.split(",")
    ]
    rows = compare(contenders, specs, args.reps)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
