"""DTW explorer: which features the stage-1 alignment should use (``feats.dtw.n_mels``).

The durations a VC model learns come from a DTW between the source and target
speech of each pair. Aligning on the full log-mel lets harmonics (pitch) pull
the path around when the speakers' F0 differ; a coarse log-mel of a few bands
follows the spectral envelope instead. For N utterances drawn from
``data/<SPK>/train`` and every choice of bands, the pair goes through the audio
front-end (:mod:`vc_toolkit.features.frontend`) and the stage-1 DTW
(:func:`vc_toolkit.features.dtw.align`), and the alignments are summarised:

* ``cost``: mean relative path cost (path distance / mean distance of all frame
  pairs; scale-free, lower is a tighter match);
* ``zero``: fraction of source frames given no target frame (the model must
  learn to skip them);
* ``long``: fraction given 4 or more target frames (stretched);
* ``jitter``: mean ``|d[i+1] - d[i]|``, how ragged consecutive durations are (a
  noisy path alternates 0, 2, 0, 2 where speech is steady);
* ``shift_ms``: mean distance between this choice's cumulative alignment and the
  first choice's, in milliseconds (how much the choice changes the durations).

The table goes to the console and to ``dtw.tsv`` / ``dtw.md``; with plots, one
PNG per utterance (``png/<utt>.png``) shows each choice's distance matrix with
its path, and the durations along the source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from vc_toolkit import log
from vc_toolkit.config import load_spk
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.errors import UserError
from vc_toolkit.features import dtw, extract, frontend
from vc_toolkit.io import atomic_write_text
from vc_toolkit.paths import Layout
from vc_toolkit.preprocess.explore import render_table, sample_pairs

logger = log.get("explore")
COLUMNS = ("bands", "cost", "zero", "long", "jitter", "shift_ms", "spk")
LONG = 4


def _choice_label(bands: int | None, cfg: SpkConfig) -> str:
    return f"all ({cfg.feats.mel.n_mels})" if bands in (None, cfg.feats.mel.n_mels) else str(bands)


def _features(speech: frontend.Speech, cfg: SpkConfig, bands: int | None) -> np.ndarray:
    t = frontend.num_frames(speech, cfg)
    mel, _ = extract.mel_energy(speech, cfg, t)
    cfg.feats.dtw.n_mels = bands
    return extract.dtw_features(speech, cfg, mel)


def summarise(alignments: list[dtw.Alignment], first: list[dtw.Alignment], frame_ms: float):
    """One table row (without labels) from the alignments of one choice."""
    durs = [a.durations for a in alignments]
    flat = np.concatenate(durs)
    jitter = np.concatenate([np.abs(np.diff(d)) for d in durs if len(d) > 1] or [np.zeros(1)])
    shift = [
        np.abs(np.cumsum(a.durations) - np.cumsum(b.durations)).mean()
        for a, b in zip(alignments, first, strict=True)
    ]
    return {
        "cost": float(np.mean([a.cost for a in alignments])),
        "zero": float(np.mean(flat == 0)),
        "long": float(np.mean(flat >= LONG)),
        "jitter": float(jitter.mean()),
        "shift_ms": float(np.mean(shift)) * frame_ms,
    }


def format_table(rows: list[dict], style: str = "text") -> str:
    """Rows as an aligned text table, ``tsv`` or GitHub ``markdown``."""

    def cell(key: str, value) -> str:
        if isinstance(value, str):
            return value
        return f"{value:.1f}" if key == "shift_ms" else f"{value:.3f}"

    return render_table(COLUMNS, [[cell(k, row[k]) for k in COLUMNS] for row in rows], style)


def plot_utterance(path: Path, utt: str, found: dict[str, dtw.Alignment], frame_ms: float) -> None:
    """Distance matrix + path and durations of every choice for one utterance, as a PNG."""
    from vc_toolkit.plots import plt, save

    fig, axes = plt.subplots(len(found), 2, figsize=(12, 3.2 * len(found)), squeeze=False)
    for (label, a), (left, right) in zip(found.items(), axes, strict=True):
        left.imshow(a.distances.T, origin="lower", aspect="auto", cmap="viridis")
        left.plot(a.path[:, 0], a.path[:, 1], color="red", linewidth=1.0)
        left.set(xlabel="source frame", ylabel="target frame", title=f"{label}: cost {a.cost:.3f}")
        right.step(np.arange(len(a.durations)), a.durations, where="mid", linewidth=1.0)
        right.set(xlabel="source frame", ylabel="target frames", title=f"{label}: durations")
    fig.suptitle(f"{utt}  (reduced frames of {frame_ms:g} ms)")
    fig.tight_layout()
    save(fig, path)


def explore_dtw(
    spk: str,
    layout: Layout,
    bands: list[int | None] | None = None,
    num_utts: int = 10,
    out_dir: Path | None = None,
    seed: int = 0,
    plots: bool = True,
) -> list[dict]:
    """Align sampled train pairs of ``spk`` with every choice of ``bands`` and summarise.

    Args:
        spk: Dataset version (stage 0 must have run).
        layout: Recipe root.
        bands: ``feats.dtw.n_mels`` choices (None: the full log-mel); default: the
            spk's own choice and 20 bands.
        num_utts: Utterances to sample from the train split.
        out_dir: Output folder (default ``exp/dtw/<SPK>``).
        seed: Seed of the utterance sample.
        plots: Write one PNG per utterance.

    Returns:
        One dict per choice with the keys of :data:`COLUMNS`.
    """
    cfg = load_spk(spk, layout.root)
    current = cfg.feats.dtw.n_mels
    choices = list(dict.fromkeys(bands if bands else [current, 20]))
    for b in choices:
        if b is not None and b < 1:
            raise UserError(f"mel bands must be >= 1 (or 'all'), got {b}")
    out_dir = Path(out_dir) if out_dir else layout.exp("dtw") / spk
    r = cfg.reduction_factor
    frame_ms = 1000.0 * r * cfg.feats.mel.hop_length / cfg.sample_rate
    found: dict[str, dict[str, dtw.Alignment]] = {}
    for utt, src, tgt in tqdm(sample_pairs(layout, spk, num_utts, seed), desc="DTW", unit="pair"):
        try:
            speech = [frontend.load_speech(p, cfg) for p in (src, tgt)]
            per_choice = {}
            for b in choices:
                feats = [_features(s, cfg, b) for s in speech]
                per_choice[_choice_label(b, cfg)] = dtw.align(*feats, r)
        except frontend.UnusableAudioError as err:
            logger.warning("skipping %s: %s", utt, err)
            continue
        found[utt] = per_choice
        if plots:
            plot_utterance(out_dir / "png" / f"{utt}.png", utt, per_choice, frame_ms)
    if not found:
        raise UserError(f"no usable pair among the sampled utterances of spk '{spk}'")
    labels = [_choice_label(b, cfg) for b in choices]
    first = [found[u][labels[0]] for u in found]
    rows = []
    for b, label in zip(choices, labels, strict=True):
        row = summarise([found[u][label] for u in found], first, frame_ms)
        rows.append({"bands": label, **row, "spk": "*" if b == current else ""})
    atomic_write_text(out_dir / "dtw.tsv", format_table(rows, "tsv"))
    atomic_write_text(
        out_dir / "dtw.md",
        f"# DTW features of spk `{spk}` on {len(found)} train pairs\n\n"
        "cost: relative path cost; zero / long: source frames given 0 / 4+ target frames; "
        "jitter: mean change between consecutive durations; shift_ms: distance of the "
        "cumulative alignment from the first row's; `*`: the spk's current "
        "`feats.dtw.n_mels`.\n\n" + format_table(rows, "markdown"),
    )
    return rows
