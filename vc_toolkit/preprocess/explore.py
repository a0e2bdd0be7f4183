"""Threshold explorer: how silence settings trim and segment a sample of a spk.

For N utterances drawn from ``data/<SPK>/train`` and every combination of
``silence_thresh_h`` × ``silence_thresh_t`` × ``min_silence_len``, the trimming
of stage 1 (:mod:`vc_toolkit.features.trim`) and its segmentation
(:mod:`vc_toolkit.features.segments`) are applied to both sides, and summarised
per setting:

* ``head_s`` / ``tail_s``: mean seconds cut at the start / end of a file,
* ``kept``: fraction of the audio left after head/tail trimming,
* ``pause``: fraction of the kept audio inside internal silences (zeroed by stage 1
  when ``trim.zero_internal_silence``),
* ``seg_src`` / ``seg_tgt``: mean number of segments per file,
* ``mismatch``: fraction of pairs whose source and target segment counts differ
  (stage 1 then falls back to merging segments),
* ``silent``: files with nothing left.

The table goes to the console and to ``thresholds.tsv`` / ``thresholds.md``; one
PNG per sampled utterance and setting (``png/<utt>/<setting>.png``) shows the
mel before trimming (cut regions shaded red, internal silences grey, segment
cuts as lines) and after.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vc_toolkit import log
from vc_toolkit.config import load_spk
from vc_toolkit.config.spk import SpkConfig, Trim
from vc_toolkit.errors import UserError
from vc_toolkit.features import spectral, trim
from vc_toolkit.features.frontend import UnusableAudioError, front_end, read
from vc_toolkit.features.segments import Segmentation
from vc_toolkit.io import atomic_write_text, read_scp
from vc_toolkit.paths import Layout

logger = log.get("explore")
COLUMNS = (
    "thresh_h",
    "thresh_t",
    "min_sil",
    "head_s",
    "tail_s",
    "kept",
    "pause",
    "seg_src",
    "seg_tgt",
    "mismatch",
    "silent",
    "spk",
)


@dataclass(frozen=True)
class Setting:
    """One grid point: head/tail thresholds (dBFS) and the shortest internal pause (ms)."""

    thresh_h: float
    thresh_t: float
    min_silence_len: int

    def apply(self, base: Trim) -> Trim:
        """``base`` with this setting's three values."""
        return dataclasses.replace(
            base,
            silence_thresh_h=self.thresh_h,
            silence_thresh_t=self.thresh_t,
            min_silence_len=self.min_silence_len,
        )

    @property
    def label(self) -> str:
        """File-name form, e.g. ``h-50_t-60_m150``."""
        return f"h{self.thresh_h:g}_t{self.thresh_t:g}_m{self.min_silence_len}"


@dataclass(frozen=True)
class SideResult:
    """Trimming of one file under one setting (sample counts)."""

    n: int
    head: int
    tail: int
    silences: list[tuple[int, int]]

    @property
    def kept(self) -> int:
        return self.n - self.head - self.tail

    @property
    def n_segments(self) -> int:
        return len(self.silences) + 1 if self.kept else 0


def analyse(x: np.ndarray, sr: int, trim_cfg: Trim) -> SideResult:
    """Head/tail trimming and internal silences (relative to the trimmed signal) of ``x``."""
    speech = front_end(x, sr, trim_cfg)
    return SideResult(len(x), speech.head, speech.tail, speech.silences)


def grid(thresh_h: list[float], thresh_t: list[float], min_silence_len: list[int]) -> list[Setting]:
    """All combinations, in the order given."""
    for ms in min_silence_len:
        if ms < 1:
            raise UserError(f"min_silence_len must be >= 1 ms, got {ms}")
    for db in (*thresh_h, *thresh_t):
        if db > 0:
            raise UserError(f"silence thresholds are dBFS and must be <= 0, got {db}")
    combos = itertools.product(thresh_h, thresh_t, min_silence_len)
    return [Setting(float(h), float(t), int(m)) for h, t, m in combos]


def sample_pairs(layout: Layout, spk: str, n: int, seed: int = 0) -> list[tuple[str, Path, Path]]:
    """``n`` random ``(utt_id, src_wav, tgt_wav)`` of the train split, in list order."""
    folder = layout.data(spk) / "train"
    scps = [folder / "src.scp", folder / "tgt.scp"]
    if not all(p.is_file() for p in scps):
        raise UserError(
            f"{folder}: no src.scp/tgt.scp; run stage 0 first: ./run.sh --stage 0 --spk {spk}"
        )
    src, tgt = (read_scp(p) for p in scps)
    ids = [u for u in src if u in tgt]
    if not ids:
        raise UserError(f"{folder}: src.scp and tgt.scp share no utterance id")
    chosen = set(random.Random(seed).sample(ids, min(n, len(ids))))
    return [(u, layout.resolve(src[u]), layout.resolve(tgt[u])) for u in ids if u in chosen]


def summarise(setting: Setting, pairs: list[tuple[SideResult, SideResult]], sr: int) -> dict:
    """One table row from the per-pair results of a setting."""
    sides = [s for pair in pairs for s in pair]
    total = sum(s.n for s in sides)
    kept = sum(s.kept for s in sides)
    pause = sum(b - a for s in sides for a, b in s.silences)
    return {
        "thresh_h": setting.thresh_h,
        "thresh_t": setting.thresh_t,
        "min_sil": setting.min_silence_len,
        "head_s": float(np.mean([s.head for s in sides])) / sr,
        "tail_s": float(np.mean([s.tail for s in sides])) / sr,
        "kept": kept / total if total else 0.0,
        "pause": pause / kept if kept else 0.0,
        "seg_src": float(np.mean([p[0].n_segments for p in pairs])),
        "seg_tgt": float(np.mean([p[1].n_segments for p in pairs])),
        "mismatch": float(np.mean([p[0].n_segments != p[1].n_segments for p in pairs])),
        "silent": sum(s.kept == 0 for s in sides),
    }


def _cell(key: str, value: str | float) -> str:
    if isinstance(value, str | int):
        return str(value)
    if key in ("thresh_h", "thresh_t"):
        return f"{value:g}"
    return f"{value:.2f}" if key.startswith("seg") else f"{value:.3f}"


def render_table(columns: tuple[str, ...], cells: list[list[str]], style: str = "text") -> str:
    """Cells under ``columns`` as an aligned text table (``text``), ``tsv`` or ``markdown``."""
    if style == "tsv":
        return "\n".join("\t".join(line) for line in [list(columns), *cells]) + "\n"
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) for v, w in zip(values, widths))

    if style == "markdown":
        head = "| " + " | ".join(c.rjust(w) for c, w in zip(columns, widths)) + " |"
        rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
        body = ["| " + " | ".join(v.rjust(w) for v, w in zip(r, widths)) + " |" for r in cells]
        return "\n".join([head, rule, *body]) + "\n"
    return "\n".join([line(list(columns)), *(line(r) for r in cells)]) + "\n"


def format_table(rows: list[dict], style: str = "text") -> str:
    """Rows as an aligned text table (``text``), ``tsv`` or GitHub ``markdown``."""
    return render_table(COLUMNS, [[_cell(k, row[k]) for k in COLUMNS] for row in rows], style)


def _show_mel(
    ax, x: np.ndarray, cfg: SpkConfig, mel: np.ndarray | None = None, vlim: tuple | None = None
) -> tuple[float, float]:
    """Draw the log-mel of ``x`` (or the given (T, n_mels) ``mel``); returns its colour limits."""
    if mel is None:
        mel, _ = spectral.log_mel_energy(x, cfg.sample_rate, cfg.feats.mel)
    vmin, vmax = vlim or (float(mel.min()), float(mel.max()))
    extent = (0, len(x) / cfg.sample_rate, 0, cfg.feats.mel.n_mels)
    ax.imshow(
        mel.T, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=vmin, vmax=vmax
    )
    return vmin, vmax


def plot_pair(
    path: Path,
    utt: str,
    setting: Setting,
    audio: dict[str, np.ndarray],
    results: dict[str, SideResult],
    cfg: SpkConfig,
    mels: dict[str, np.ndarray] | None = None,
) -> None:
    """Before/after mel of both sides of one utterance under one setting, as a PNG.

    Args:
        path: PNG to write.
        utt: Utterance id (title).
        setting: The grid point (title).
        audio: ``{"src": x, "tgt": x}`` untrimmed signals.
        results: ``{"src": SideResult, "tgt": SideResult}`` of this setting.
        cfg: The spk config (sample rate, mel settings, zeroing).
        mels: Optional precomputed log-mels of ``audio`` (T, n_mels), reused across settings.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sr = cfg.sample_rate
    fig, axes = plt.subplots(2, 2, figsize=(12, 5.5), squeeze=False)
    for row, side in enumerate(("src", "tgt")):
        x, res = audio[side], results[side]
        before, after = axes[row]
        vlim = _show_mel(before, x, cfg, (mels or {}).get(side))
        before.axvspan(0, res.head / sr, color="red", alpha=0.35, lw=0)
        before.axvspan((res.n - res.tail) / sr, res.n / sr, color="red", alpha=0.35, lw=0)
        y = x[res.head : res.n - res.tail]
        cuts = Segmentation.from_silences(len(y), res.silences).cuts
        for a, b in res.silences:
            before.axvspan((res.head + a) / sr, (res.head + b) / sr, color="white", alpha=0.3, lw=0)
        for c in cuts:
            before.axvline((res.head + c) / sr, color="cyan", lw=1.2)
        before.set_title(f"{side} before: cut {res.head / sr:.2f} s + {res.tail / sr:.2f} s")
        if len(y):
            zero = cfg.trim.zero_internal_silence
            z = trim.zero_internal_silences(y, res.silences) if zero else y
            _show_mel(after, z, cfg, vlim=vlim)
            for c in cuts:
                after.axvline(c / sr, color="cyan", lw=1.2)
        after.set_title(f"{side} after: {len(y) / sr:.2f} s, {res.n_segments} segment(s)")
        for ax in (before, after):
            ax.set_xlabel("s")
            ax.set_ylabel("mel bin")
    fig.suptitle(f"{utt}  {setting.label}  (red: trimmed, grey: internal silence, cyan: cut)")
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.09, top=0.88, hspace=0.5, wspace=0.12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def explore(
    spk: str,
    layout: Layout,
    num_utts: int = 10,
    thresh_h: list[float] | None = None,
    thresh_t: list[float] | None = None,
    min_silence_len: list[int] | None = None,
    out_dir: Path | None = None,
    seed: int = 0,
    plots: bool = True,
) -> list[dict]:
    """Run the explorer and write its outputs.

    Args:
        spk: Dataset version (stage 0 must have run).
        layout: Recipe root.
        num_utts: Utterances to sample from the train split.
        thresh_h: Head thresholds, dBFS (default: the spk's).
        thresh_t: Tail/internal thresholds, dBFS (default: the spk's).
        min_silence_len: Shortest internal pauses, ms (default: the spk's).
        out_dir: Output folder (default ``exp/thresholds/<SPK>``).
        seed: Seed of the utterance sample.
        plots: Write the PNGs.

    Returns:
        One dict per setting with the keys of :data:`COLUMNS`.
    """
    cfg = load_spk(spk, layout.root)
    sr, base = cfg.sample_rate, cfg.trim
    settings = grid(
        thresh_h or [base.silence_thresh_h],
        thresh_t or [base.silence_thresh_t],
        min_silence_len or [base.min_silence_len],
    )
    out_dir = Path(out_dir) if out_dir else layout.exp("thresholds") / spk
    audio = {}
    for utt, src, tgt in sample_pairs(layout, spk, num_utts, seed):
        try:
            audio[utt] = {"src": read(src, sr), "tgt": read(tgt, sr)}
        except UnusableAudioError as err:
            logger.warning("skipping %s: %s", utt, err)
    if not audio:
        raise UserError(f"no readable pair among the sampled utterances of spk '{spk}'")
    mels = {}
    if plots:
        mels = {
            u: {s: spectral.log_mel_energy(x, sr, cfg.feats.mel)[0] for s, x in a.items()}
            for u, a in audio.items()
        }
    current = Setting(base.silence_thresh_h, base.silence_thresh_t, base.min_silence_len)
    rows = []
    for setting in tqdm(settings, desc="threshold grid", unit="setting"):
        trim_cfg = setting.apply(base)
        results = {u: {s: analyse(x, sr, trim_cfg) for s, x in a.items()} for u, a in audio.items()}
        row = summarise(setting, [(r["src"], r["tgt"]) for r in results.values()], sr)
        rows.append({**row, "spk": "*" if setting == current else ""})
        if plots:
            for utt in audio:
                png = out_dir / "png" / utt / f"{setting.label}.png"
                plot_pair(png, utt, setting, audio[utt], results[utt], cfg, mels[utt])
    atomic_write_text(out_dir / "thresholds.tsv", format_table(rows, "tsv"))
    atomic_write_text(out_dir / "thresholds.md", _markdown_report(spk, len(audio), rows))
    return rows


def _markdown_report(spk: str, n: int, rows: list[dict]) -> str:
    return (
        f"# Silence thresholds of spk `{spk}` on {n} train utterances\n\n"
        "head_s/tail_s: mean seconds cut per file; kept: fraction of audio left; pause: "
        "fraction of the kept audio in internal silences; seg_*: mean segments per file; "
        "mismatch: pairs whose segment counts differ; silent: files with nothing left; "
        "`*`: the spk's current setting.\n\n" + format_table(rows, "markdown")
    )
