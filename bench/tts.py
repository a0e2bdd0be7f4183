"""Figure 7: text-to-speech, training throughput and synthesis real-time factor.

Both rows run on a text spk's dump (``dump/<spk>``: ``demo_tts`` when the recipe root has
it). Without one, a small text spk is made in a temporary root first: the ``demo_tts``
corpus (espeak-ng reading the first Harvard sentences, ``--utts`` of them) at the spk's
features, through the real stages 0 and 1 (seconds for a dozen sentences).

* **Training** (:func:`training.bench_training`): the TTS tag (``conf/tag/<tag>.yaml``
  when it exists, else :data:`FALLBACK_TAG`: the demo model preset as ``fastspeech2tts``)
  set up exactly as stage 2 sets it up; real optimizer steps on its own batches, target
  frames per second, the first steps not counted.
* **Synthesis** (:func:`bench_synthesis`): a :class:`~vc_toolkit.infer.synthesize.Synthesizer`
  (the ``vc-synthesize`` code path) with randomly initialised weights on the dev sentences'
  tokens. Speed does not depend on training except through the predicted durations, so the
  duration predictor is set to predict the spk's mean reduced frames per token (the output
  is as long as real speech of those sentences). Real-time factors as stage 3 reports them
  (compute seconds / output audio seconds), acoustic model and the tag's vocoder apart
  (WORLD gets a random per-symbol voicing, about 60 % voiced: speed only).

    python bench/tts.py --quick            # about a minute, most of it stages 0-1
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from timing import summarize  # noqa: E402

from vc_toolkit.config import TagConfig, build, load_tag, to_dict  # noqa: E402
from vc_toolkit.paths import Layout  # noqa: E402

FALLBACK_TAG = {
    "note": "bench: demo model preset as fastspeech2tts",
    "model": {"preset": "demo", "type": "fastspeech2tts"},
    "train": {"batch_size": 16, "group_size": 4, "epochs": 1},
    "infer": {"vocoder": {"type": "griffin_lim"}},
}


def tts_config(layout: Layout, tag: str, spk: str, batch_size: int | None = None) -> TagConfig:
    """The TTS tag's resolved config on ``spk`` (:data:`FALLBACK_TAG` when ``tag`` has no file)."""
    if layout.tag_conf(tag).is_file():
        data = to_dict(load_tag(tag, layout.root))
    else:
        from vc_toolkit.config.resolve import deep_merge, load_raw

        model, _ = load_raw(layout, "model", "demo")
        data = deep_merge({"model": model}, FALLBACK_TAG)
    data["spk"] = spk
    if batch_size:
        data["train"]["batch_size"] = batch_size
    return build(TagConfig, data, where=f"bench TTS tag {tag}")


def ensure_text_spk(layout: Layout, spk: str, utts: int, tmp: Path) -> tuple[Layout, str]:
    """``(layout, spk)`` of a text spk with stage 1 done: ``spk`` itself, or a temporary
    copy of its config limited to ``utts`` sentences, prepared in ``tmp``."""
    from vc_toolkit.data.text_dump import is_text_dump

    if is_text_dump(layout.dump(spk)) and (layout.dump(spk) / "dev").is_dir():
        return layout, spk
    import shutil

    import yaml

    from vc_toolkit.prepare import stage as prepare
    from vc_toolkit.preprocess import stage as preprocess

    root = tmp / "recipe"
    for sub in ("conf/model", "egs/demo"):
        shutil.copytree(layout.root / sub, root / sub)
    data = yaml.safe_load((layout.root / "conf/spk/demo_tts.yaml").read_text())
    data["corpus"]["num_utts"] = utts
    data["split"] = {"dev": max(2, utts // 6), "eval": 2, "seed": 0}
    (root / "conf/spk").mkdir(parents=True)
    (root / "conf/spk/bench_tts.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    small = Layout(root)
    _say(f"text spk: stages 0-1 of {utts} demo_tts sentences in a temporary root")
    prepare.run("bench_tts", small, nj=2)
    preprocess.run("bench_tts", small, nj=2)
    return small, "bench_tts"


def _bundle(layout: Layout, cfg: TagConfig):
    """A Bundle of ``cfg`` with random weights whose durations match the spk's speech rate."""
    from vc_toolkit.config import SpkConfig
    from vc_toolkit.config.resolve import read_yaml
    from vc_toolkit.data.labels import SpeakerTable
    from vc_toolkit.data.text_dump import TextDumpSplit
    from vc_toolkit.features.stats import load_stats
    from vc_toolkit.infer.pack import Bundle
    from vc_toolkit.infer.speakers import spk_pairs
    from vc_toolkit.models import build_model

    dump = layout.dump(cfg.spk)
    spk = build(SpkConfig, read_yaml(dump / "config.yaml"))
    pairs = spk_pairs(dump)
    table = SpeakerTable(speakers=sorted({p.tgt_speaker for p in pairs}))
    symbols = json.loads((dump / "symbols.json").read_text(encoding="utf-8"))
    train = TextDumpSplit(dump / "train")
    r = spk.reduction_factor
    per_token = float(np.sum(train.tgt_frames) / r / np.sum(train.token_counts))
    torch.manual_seed(0)
    model = build_model(cfg.model, spk.feats.mel.n_mels, r, table, len(symbols["symbols"]))
    with torch.no_grad():
        proj = model.duration_predictor.proj
        proj.weight.zero_()
        proj.bias.fill_(math.log(1.0 + per_token))  # exp(log d) - 1 = the mean duration
    weights = model.state_dict()
    stats = load_stats(dump / "stats.npz")
    voicing = (np.random.default_rng(0).random(len(symbols["symbols"])) < 0.6).astype(float)
    return (
        Bundle(
            tag="bench-tts", cfg=cfg, spk_cfg=spk, stats=stats, weights=weights,
            checkpoint="random", speakers=table, pairs=pairs, symbols=symbols,
            voicing=voicing.tolist(),
        ),
        per_token,
    )  # fmt: skip


def bench_synthesis(layout: Layout, cfg: TagConfig, reps: int, batch_sizes=(1, 8)) -> dict:
    """Synthesis RTF of the dev sentences (module docstring), per batch size.

    Returns:
        ``tokens_per_reduced_frame``, ``utterances`` and per ``batch_<n>``: summarised
        ``acoustic_rtf``, ``vocoder_rtf``, ``total_rtf`` over ``reps`` repetitions (after
        one uncounted warm-up pass) and the seconds of audio made per pass.
    """
    from vc_toolkit.data.text_dump import TextDumpSplit
    from vc_toolkit.infer.convert import batches
    from vc_toolkit.infer.synthesize import Synthesizer

    bundle, per_token = _bundle(layout, cfg)
    dev = TextDumpSplit(layout.dump(cfg.spk) / "dev")
    items = [{k: dev[i][k] for k in ("utt_id", "tokens", "tok_seg")} for i in range(len(dev))]
    out: dict = {
        "mean_reduced_frames_per_token": per_token,
        "utterances": len(items),
        "vocoder": cfg.infer.vocoder.type,
    }
    for n in batch_sizes:
        synth = Synthesizer(bundle, cfg.infer)
        groups = batches(items, [len(it["tokens"]) for it in items], n)
        runs: dict[str, list[float]] = {"acoustic_rtf": [], "vocoder_rtf": [], "total_rtf": []}
        audio = 0.0
        for rep in range(reps + 1):
            synth.rtf = type(synth.rtf)()
            for group in groups:
                synth(group)
            record = synth.rtf.as_dict()
            audio = record["audio_seconds"]
            if rep:  # the first pass warms up
                for key in runs:
                    runs[key].append(record[key])
        out[f"batch_{n}"] = {**{k: summarize(v) for k, v in runs.items()}, "audio_seconds": audio}
    return out


def bench_tts(
    layout: Layout,
    spk: str = "demo_tts",
    tag: str = "demo_tts",
    steps: int = 3,
    warmup: int = 1,
    reps: int = 2,
    utts: int = 14,
    batch_size: int | None = None,
    threads: int = 2,
) -> dict:
    """Both rows (module docstring); ``utts``: sentences of a temporary spk when needed."""
    from training import bench_training

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="vc-bench-tts-") as tmp:
            small, name = ensure_text_spk(layout, spk, utts, Path(tmp))
            cfg = tts_config(layout, tag, name, batch_size)  # the tag of the recipe root
            shown = tag if layout.tag_conf(tag).is_file() else "fallback (demo preset)"
            _say(f"TTS training: {warmup} + {steps} steps, batch {cfg.train.batch_size}")
            train = bench_training(small, "bench-tts", cfg, steps, warmup)
            _say(f"TTS synthesis: {reps} reps of the dev sentences")
            synth = bench_synthesis(small, cfg, reps)
            return {
                "spk": name,
                "tag": shown,
                "threads": threads,
                "training": train,
                "synthesis": synth,
            }
    finally:
        torch.set_num_threads(previous)


def _say(msg: str) -> None:
    print(f"[bench tts {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def markdown(res: dict) -> list[str]:
    """The figure's Markdown table (``bench/report.py`` adds it to the report)."""
    from report import fmt

    tr, sy = res["training"], res["synthesis"]
    lines = [
        "",
        f"## 7. Text-to-speech (spk {res['spk']}, tag {res['tag']}, {res['threads']} threads)",
        "",
        "| row | value |",
        "|---|---|",
        f"| training, target frames/s (batch {tr['batch_size']}, {tr['params']:,} params) "
        f"| {fmt(tr['frames_per_second'], digits=0)} |",
        f"| training, s/step | {fmt(tr['step_seconds'])} |",
    ]
    for key, block in sy.items():
        if not key.startswith("batch_"):
            continue
        n = key.split("_")[1]
        lines.append(
            f"| synthesis RTF, batch {n}: acoustic / {sy['vocoder']} / total "
            f"| {fmt(block['acoustic_rtf'], digits=4)} / {fmt(block['vocoder_rtf'], digits=3)} / "
            f"{fmt(block['total_rtf'], digits=3)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=HERE.parent, help="recipe root")
    p.add_argument("--spk", default="demo_tts", help="text spk (a temporary one when missing)")
    p.add_argument("--tag", default="demo_tts", help="TTS tag config (fallback: demo preset)")
    p.add_argument("--quick", action="store_true", help="tiny settings: seconds, not minutes")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    layout = Layout(args.root.resolve())
    if args.quick:
        res = bench_tts(layout, args.spk, args.tag, steps=2, warmup=1, reps=1, utts=12,
                        batch_size=4)  # fmt: skip
    else:
        res = bench_tts(layout, args.spk, args.tag, steps=10, warmup=2, reps=3, utts=40)
    print("\n".join(markdown(res)))
    if args.out:
        args.out.write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
