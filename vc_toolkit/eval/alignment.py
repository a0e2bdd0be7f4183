"""Alignment report of ``vc-align``: learned phoneme boundaries against espeak-ng's own.

The durations ``vc-align --tag T`` wrote (``dump/<SPK>/<split>/durations/<T>.npy``,
reduced frames per token) put the start of token ``k`` at the frame edge
``r * sum(d[:k]) - 1/2`` (seconds: ``head_seconds + edge * hop / sample_rate`` in the
recording). Where the corpus kept the synthesiser's own phoneme timings
(``data/<SPK>/phone_times/<utt>.tsv``: ``demo_tts`` with ``corpus.phone_times``), each
phoneme token is matched with espeak-ng's phoneme event (:mod:`vc_toolkit.text.phone_times`):

* **compared**: every phoneme token, in order, with espeak-ng's non-pause events (stress
  marks stripped on both sides, so ``ˈoʊ`` matches ``oʊ``); its error is
  ``|learned start - espeak start|``;
* **skipped**: pause/punctuation tokens and word boundaries (espeak-ng gives a pause
  event, or nothing, not a phoneme start), stress-mark tokens (no sound of their own:
  their start is the next phoneme's), and whole utterances whose phoneme sequence differs
  from espeak-ng's events (counted as ``mismatched``) or that have no timing file.

The resolution is one reduced frame (``r * hop / sample_rate``); errors below half of
it are rounding. Outputs in ``exp/<T>/align/<C>/``: ``report.json`` (overall and per
split: boundaries compared, mean / median / 90th percentile absolute error in ms, share
within 20 ms and within one reduced frame, skipped utterances), ``boundaries.tsv`` (per
utterance), ``boundary_errors.png`` (histogram) and ``images/<utt>.png`` (soft and hard
alignment of a few dev sentences, :func:`vc_toolkit.models.aligner.attention_image`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vc_toolkit import log
from vc_toolkit.data.text_dump import DURATIONS, TextDumpSplit
from vc_toolkit.errors import UserError
from vc_toolkit.infer.align import aligned_durations, bundle_model
from vc_toolkit.infer.pack import load_tag_bundle
from vc_toolkit.infer.synthesize import symbol_table
from vc_toolkit.io import atomic_write_text
from vc_toolkit.paths import Layout, checkpoint_label
from vc_toolkit.text.phone_times import boundary_errors, read_phone_times, token_starts

logger = log.get("align")
PHONE_TIMES = "phone_times"
WITHIN_MS = 20.0


def error_stats(errors_ms: np.ndarray, frame_ms: float) -> dict:
    """Count, mean, median, 90th percentile, share within 20 ms and within one frame.

    Example:
        >>> s = error_stats(np.array([0.0, 10.0, 30.0, 100.0]), frame_ms=23.2)
        >>> s["boundaries"], s["mean_ms"], s["median_ms"], s["within_20ms"], s["within_frame"]
        (4, 35.0, 20.0, 0.5, 0.5)
    """
    e = np.asarray(errors_ms, dtype=np.float64)
    if not len(e):
        return {"boundaries": 0}
    return {
        "boundaries": len(e),
        "mean_ms": float(e.mean()),
        "median_ms": float(np.median(e)),
        "p90_ms": float(np.percentile(e, 90)),
        "within_20ms": float(np.mean(e <= WITHIN_MS)),
        "within_frame": float(np.mean(e <= frame_ms)),
    }


def _histogram(errors_ms: np.ndarray, frame_ms: float, path: Path, title: str) -> None:
    from vc_toolkit.plots import plt, save

    fig, ax = plt.subplots(figsize=(7, 3.5))
    top = max(100.0, float(np.percentile(errors_ms, 99))) if len(errors_ms) else 100.0
    ax.hist(np.clip(errors_ms, 0, top), bins=50, range=(0, top), color="tab:blue")
    ax.axvline(frame_ms, color="tab:red", ls="--", label=f"one reduced frame ({frame_ms:.1f} ms)")
    ax.set_xlabel("|learned - espeak-ng| phoneme start (ms)")
    ax.set_ylabel("boundaries")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    save(fig, path)


def alignment_report(
    layout: Layout,
    tag: str,
    checkpoint: str = "best",
    splits: tuple[str, ...] = ("train", "dev", "eval"),
    images: int = 4,
) -> dict:
    """Score the durations ``vc-align`` wrote for ``tag`` (module docstring); write the report.

    Returns:
        The report (also ``exp/<tag>/align/<checkpoint>/report.json``).

    Raises:
        UserError: not a text tag, or no durations written for a split (run vc-align).
    """
    bundle = load_tag_bundle(layout, tag, checkpoint)
    table = symbol_table(bundle)
    spk = bundle.spk_cfg
    r, hop, sr = spk.reduction_factor, spk.feats.mel.hop_length, spk.sample_rate
    frame_ms = 1000.0 * r * hop / sr
    dump, times = layout.dump(bundle.cfg.spk), layout.data(bundle.cfg.spk) / PHONE_TIMES
    out = layout.exp(tag) / "align" / checkpoint_label(bundle.checkpoint)
    rows, per_split, all_errors, picked = [], {}, [], []
    for split in splits:
        if not (dump / split / DURATIONS / f"{tag}.npy").is_file():
            raise UserError(
                f"no durations of tag '{tag}' in {dump / split}; run vc-align --tag {tag}"
            )
        ds = TextDumpSplit(dump / split, durations=tag)
        errors, skipped = [], {"no_phone_times": 0, "mismatched": 0}
        for i, utt in enumerate(ds.utt_ids):
            path = times / f"{utt}.tsv"
            if not path.is_file():
                skipped["no_phone_times"] += 1
                continue
            item = ds[i]
            starts = token_starts(
                table.decode(item["tokens"]), read_phone_times(path), table.pauses
            )
            if starts is None:
                skipped["mismatched"] += 1
                continue
            err = 1000.0 * boundary_errors(item["duration"], starts, ds.head_seconds[i], hop, sr, r)
            errors.append(err)
            rows.append((split, utt, len(item["tokens"]), err))
            if split == "dev" and len(picked) < images:
                picked.append(utt)
        flat = np.concatenate(errors) if errors else np.zeros(0)
        all_errors.append(flat)
        per_split[split] = {
            "utterances": len(ds), "compared": len(errors), **skipped, **error_stats(flat, frame_ms)
        }  # fmt: skip
    flat = np.concatenate(all_errors) if all_errors else np.zeros(0)
    report = {
        "tag": tag,
        "checkpoint": bundle.checkpoint,
        "spk": bundle.cfg.spk,
        "frame_ms": frame_ms,
        "overall": error_stats(flat, frame_ms),
        "splits": per_split,
        "method": "phoneme tokens matched in order with espeak-ng's phoneme events (stress "
        "stripped); pauses, word boundaries and stress marks skipped (vc_toolkit.eval.alignment)",
    }
    lines = ["split\tutt_id\ttokens\tcompared\tmean_ms\tmax_ms"]
    lines += [
        f"{s}\t{u}\t{n}\t{len(e)}\t{e.mean():.2f}\t{e.max():.2f}" for s, u, n, e in rows if len(e)
    ]
    atomic_write_text(out / "boundaries.tsv", "\n".join(lines) + "\n")
    if len(flat):
        title = f"{tag} ({bundle.checkpoint}): {len(flat)} phoneme starts vs espeak-ng"
        _histogram(flat, frame_ms, out / "boundary_errors.png", title)
    report["images"] = _images(bundle, dump, picked or None, out / "images", images)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    _log(report, layout.shown(out))
    return report


def _images(bundle, dump: Path, utts: list[str] | None, folder: Path, count: int) -> list[str]:
    """Alignment figures of ``utts`` (default: the first ``count`` dev sentences)."""
    from vc_toolkit.models.aligner import attention_image
    from vc_toolkit.plots import save

    if count <= 0 or not (dump / "dev").is_dir():
        return []
    ds = TextDumpSplit(dump / "dev")
    utts = utts or ds.utt_ids[:count]
    _, attn = aligned_durations(bundle_model(bundle), bundle, ds, images=utts, only=set(utts))
    written = []
    for utt in utts:
        soft, hard = attn[utt]
        fig = attention_image(soft, hard, soft.shape[1], soft.shape[0], title=f"{utt} (dev)")
        written.append(f"{folder.name}/{save(fig, folder / f'{utt}.png').name}")
    return written


def _log(report: dict, out: str) -> None:
    o = report["overall"]
    if not o["boundaries"]:
        logger.info("no phoneme timings to compare (data/<SPK>/phone_times/ missing or mismatched)")
    else:
        logger.info(
            "phoneme starts vs espeak-ng: %d boundaries, mean %.1f ms, median %.1f ms, 90%% "
            "%.1f ms, %.0f%% within 20 ms (one reduced frame = %.1f ms)",
            o["boundaries"], o["mean_ms"], o["median_ms"], o["p90_ms"],
            100 * o["within_20ms"], report["frame_ms"],
        )  # fmt: skip
    logger.info(
        "alignment report: %s/{report.json,boundaries.tsv,boundary_errors.png,images/}", out
    )
