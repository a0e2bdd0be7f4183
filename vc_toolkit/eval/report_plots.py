"""Report figures: loss curves of several tags, and one utterance through a tag.

* :func:`loss_curves`: per-epoch train (dashed) and dev (solid) losses from
  ``history.jsonl`` (:func:`vc_toolkit.plots.loss_curves_figure`).
* :func:`utterance_figure`: source, target and converted log-mels (each in its own
  speaker's scale, denormalised) and their F0 contours in one PNG. The converted
  side comes from stage 3 (``exp/<T>/convert/<C>/<split>/<utt>.npz``) or, for an
  utterance stage 3 did not convert (e.g. a train one), is converted on the fly.
  Its F0 is drawn twice: as predicted (continuous, the model predicts no voicing)
  and re-analysed from the converted wav with the spk's pitch settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vc_toolkit import plots
from vc_toolkit.paths import checkpoint_label
from vc_toolkit.plots import plt
from vc_toolkit.records import read_history


def loss_curves(exp_dirs: list[Path], out: Path, losses: tuple[str, ...] | None = None) -> Path:
    """Write the loss curves of the tags in ``exp_dirs`` (``exp/<T>``) to ``out`` (PNG).

    Only the ``losses`` some tag logged are drawn (one panel each); default: the dev
    losses the model registry shows in the leaderboard.
    """
    if losses is None:
        from vc_toolkit.models import all_loss_terms

        losses = tuple(t.name for t in all_loss_terms() if t.header)
    histories = {d.name: read_history(d) for d in exp_dirs}
    logged = {
        k
        for rows in histories.values()
        for r in rows
        for k in (*r.get("train", {}), *r.get("dev", {}))
    }
    shown = tuple(k for k in losses if k in logged) or losses[:1]
    return plots.save(plots.loss_curves_figure(histories, shown), out)


def _f0(lf0: np.ndarray, vuv: np.ndarray | None) -> np.ndarray:
    f0 = np.exp(np.asarray(lf0, dtype=np.float64))
    return f0 if vuv is None else np.where(vuv > 0.5, f0, np.nan)


def _converted(layout, tag: str, checkpoint: str, split: str, item: dict, bundle) -> dict:
    """Stage-3 outputs of one utterance, or a fresh conversion when there are none."""
    path = layout.convert_dir(tag, checkpoint) / split / f"{item['utt_id']}.npz"
    if path.is_file():
        with np.load(path) as z:
            out = {k: z[k] for k in ("mel", "lf0")}
        wav = path.with_suffix(".wav")
        if wav.is_file():
            import soundfile as sf

            out["wav"] = sf.read(str(wav), dtype="float32")[0]
        return out
    from vc_toolkit.infer.convert import Converter

    return Converter(bundle)([item])[0]


def utterance_figure(layout, tag: str, utt: str, checkpoint: str = "best", out: Path | None = None):
    """Write the source/target/converted figure of ``utt`` (any split) and return its path.

    Default ``out``: ``exp/<tag>/plots/<checkpoint>_<utt>.png``.

    Raises:
        UserError: unknown tag/checkpoint, or ``utt`` in no split of the tag's spk.
    """
    from vc_toolkit.data.dump import DumpSplit
    from vc_toolkit.errors import UserError
    from vc_toolkit.features.pitch import extract_lf0
    from vc_toolkit.features.stats import denormalize_lf0, denormalize_mel, pair_stats
    from vc_toolkit.infer.pack import load_tag_bundle

    bundle = load_tag_bundle(layout, tag, checkpoint)
    spk_cfg = bundle.spk_cfg
    for split in ("dev", "eval", "train"):
        ds = DumpSplit(layout.dump(bundle.cfg.spk) / split)
        if utt in ds.utt_ids:
            item = {**ds[ds.index_of(utt)], "labels": ds.labels[utt]}
            break
    else:
        raise UserError(f"utterance '{utt}' is in no split of spk '{bundle.cfg.spk}'")
    st = pair_stats(bundle.stats, item["labels"].src_speaker, item["labels"].tgt_speaker)
    conv = _converted(layout, tag, checkpoint_label(bundle.checkpoint), split, item, bundle)
    mels = [
        ("source", denormalize_mel(item["src_mel"], st, side="src")),
        ("target", denormalize_mel(item["tgt_mel"], st, side="tgt")),
        (f"converted ({tag}, {checkpoint})", conv["mel"]),
    ]
    curves = [
        ("source", _f0(denormalize_lf0(item["src_lf0"], st, "src"), item["src_vuv"])),
        ("target", _f0(denormalize_lf0(item["tgt_lf0"], st, "tgt"), item["tgt_vuv"])),
        ("converted, predicted", _f0(conv["lf0"], None)),
    ]
    if "wav" in conv:
        hop = spk_cfg.feats.mel.hop_length
        n = 1 + len(conv["wav"]) // hop
        lf0, vuv = extract_lf0(conv["wav"], spk_cfg.sample_rate, hop, spk_cfg.feats.pitch, n)
        curves.append(("converted wav, re-analysed", _f0(lf0, vuv)))
    hop_seconds = spk_cfg.feats.mel.hop_length / spk_cfg.sample_rate
    title = f"{tag} / {checkpoint} / {split} / {utt} ({item['labels'].pair})"
    fig = _figure(mels, curves, hop_seconds, title)
    out = out or layout.exp(tag) / "plots" / f"{checkpoint_label(bundle.checkpoint)}_{utt}.png"
    return plots.save(fig, out)


def _figure(mels: list[tuple[str, np.ndarray]], curves, hop_seconds: float, title: str):
    fig, axes = plt.subplots(len(mels) + 1, 1, figsize=(11, 2.2 * (len(mels) + 1.4)))
    end = max(len(m) for _, m in mels) * hop_seconds
    for ax, (label, mel) in zip(axes, mels, strict=False):
        extent = (0.0, len(mel) * hop_seconds, 0, mel.shape[1])
        ax.imshow(mel.T, origin="lower", aspect="auto", extent=extent, interpolation="none")
        ax.set_xlim(0, end)
        ax.set_ylabel("mel bin")
        ax.set_title(label, fontsize=9, loc="left")
    ax = axes[-1]
    for label, f0 in curves:
        ax.plot(np.arange(len(f0)) * hop_seconds, f0, label=label, linewidth=1.1)
    ax.set_xlim(0, end)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("F0 (Hz)")
    ax.legend(loc="upper right", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
