"""Stage-1 features of one parallel pair, and the per-utterance cache files.

For each side: load (mono, resampled to the spk rate) → trim head/tail silence →
find internal silences (zeroed if ``trim.zero_internal_silence``) → log-mel and
log energy (one STFT) → WORLD log-F0 and voiced mask on the same frames. Every
stream of a side is cut to the same ``T``, a multiple of the reduction factor
``r`` (the last ``T mod r`` frames are dropped). Durations come from DTW between
the two mel sequences at ``r`` (:func:`vc_toolkit.features.dtw.align_durations`);
sentence segments from the internal silences
(:func:`vc_toolkit.features.segments.pair_segments`).

A pair that cannot give useful features raises :class:`BadPair` with one of
:data:`BAD_REASONS`, checked in this order: unreadable, empty, silent, too_short,
length_ratio, unvoiced.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.features import dtw, segments, spectral, trim
from vc_toolkit.features.audio import AudioError, load_audio
from vc_toolkit.features.pitch import extract_lf0

BAD_REASONS = ("unreadable", "empty", "silent", "too_short", "unvoiced", "length_ratio")
STREAMS = ("mel", "lf0", "vuv", "energy")


class BadPair(Exception):  # noqa: N818 - the name stage 1 reports
    """A pair dropped at stage 1.

    Attributes:
        reason (str): one of :data:`BAD_REASONS`.
        detail (str): what was wrong, naming the side and the file.
    """

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class _Side:
    """One side of a pair while it is being processed."""

    key: str
    path: str
    x: np.ndarray
    head: int = 0
    tail: int = 0
    silences: list[tuple[int, int]] | None = None
    mel: np.ndarray | None = None
    energy: np.ndarray | None = None
    lf0: np.ndarray | None = None
    vuv: np.ndarray | None = None

    @property
    def name(self) -> str:
        return "source" if self.key == "src" else "target"

    def fail(self, reason: str, what: str) -> BadPair:
        return BadPair(reason, f"{self.name} {self.path}: {what}")


@contextlib.contextmanager
def _timed(timings: dict | None, key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


def _load(key: str, path: str | Path, sr: int) -> _Side:
    try:
        return _Side(key, str(path), load_audio(path, sr))
    except AudioError as err:
        raise BadPair(err.reason, f"{'source' if key == 'src' else 'target'} {err}") from None


def _trim(side: _Side, cfg: SpkConfig) -> None:
    sr = cfg.sample_rate
    y, side.head, side.tail = trim.trim_silence(side.x, sr, cfg.trim)
    if len(y) == 0:
        raise side.fail("silent", "nothing left after trimming silence")
    seconds = len(y) / sr
    if seconds < cfg.filters.min_seconds:
        raise side.fail(
            "too_short",
            f"{seconds:.2f} s after trimming < filters.min_seconds ({cfg.filters.min_seconds} s)",
        )
    side.silences = trim.internal_silences(y, sr, cfg.trim)
    side.x = trim.zero_internal_silences(y, side.silences) if cfg.trim.zero_internal_silence else y


def _frames(side: _Side, cfg: SpkConfig) -> int:
    """Frame count of a side: the STFT count, rounded down to a multiple of r."""
    r = cfg.reduction_factor
    t = spectral.num_frames(len(side.x), cfg.feats.mel.hop_length) // r * r
    if t == 0:
        raise side.fail("too_short", f"fewer than reduction_factor ({r}) frames")
    return t


def _check_ratio(src: _Side, tgt: _Side, ts: int, tt: int, limit: float) -> None:
    ratio = max(ts / tt, tt / ts)
    if ratio > limit:
        raise BadPair(
            "length_ratio",
            f"source {src.path} has {ts} frames, target {tgt.path} has {tt} "
            f"(ratio {ratio:.2f} > filters.max_length_ratio {limit})",
        )


def _voiced(side: _Side, cfg: SpkConfig) -> float:
    fraction = float(side.vuv.mean())
    if fraction < cfg.filters.min_voiced_fraction:
        raise side.fail(
            "unvoiced",
            f"voiced on {fraction:.1%} of frames < filters.min_voiced_fraction "
            f"({cfg.filters.min_voiced_fraction:.1%})",
        )
    return fraction


def extract_pair(
    src_path: str | Path, tgt_path: str | Path, cfg: SpkConfig, timings: dict | None = None
) -> dict:
    """Features, durations and segments of one parallel pair.

    BLAS runs single-threaded inside: the matrix products here are small, and idle
    OpenBLAS threads spinning on another core slow WORLD down by about a third.

    Args:
        src_path: Source speaker's wav.
        tgt_path: Target speaker's wav (same sentence).
        cfg: The spk config.
        timings: If given, seconds spent per step are added under ``load``, ``trim``,
            ``mel``, ``f0``, ``dtw``, ``segments``.

    Returns:
        A dict of float32 arrays ``src_mel`` (Ts, n_mels), ``src_lf0`` (Ts,), ``src_vuv``
        (Ts,), ``src_energy`` (Ts,), the same four ``tgt_*`` with Tt frames,
        ``duration`` (Ts // r,) int32 summing to Tt // r, ``src_seg`` / ``tgt_seg``
        (K,) int32 summing to Ts // r and Tt // r, and the floats ``src_seconds``,
        ``tgt_seconds`` (after trimming), ``src_trimmed_seconds``,
        ``tgt_trimmed_seconds`` (head + tail cut), ``dtw_cost``, ``seg_fallback`` (0/1),
        ``src_voiced_fraction``, ``tgt_voiced_fraction``.

    Raises:
        BadPair: the pair is unusable (see :data:`BAD_REASONS`).
    """
    with threadpool_limits(1, user_api="blas"):
        return _extract_pair(src_path, tgt_path, cfg, timings)


def _extract_pair(
    src_path: str | Path, tgt_path: str | Path, cfg: SpkConfig, timings: dict | None
) -> dict:
    sr, r, mel_cfg = cfg.sample_rate, cfg.reduction_factor, cfg.feats.mel
    with _timed(timings, "load"):
        src, tgt = _load("src", src_path, sr), _load("tgt", tgt_path, sr)
    with _timed(timings, "trim"):
        for side in (src, tgt):
            _trim(side, cfg)
    ts, tt = _frames(src, cfg), _frames(tgt, cfg)
    _check_ratio(src, tgt, ts, tt, cfg.filters.max_length_ratio)
    with _timed(timings, "mel"):
        for side, t in ((src, ts), (tgt, tt)):
            mel, energy = spectral.log_mel_energy(side.x, sr, mel_cfg)
            side.mel, side.energy = mel[:t], energy[:t]
    with _timed(timings, "f0"):
        for side, t in ((src, ts), (tgt, tt)):
            n = spectral.num_frames(len(side.x), mel_cfg.hop_length)
            lf0, vuv = extract_lf0(side.x, sr, mel_cfg.hop_length, cfg.feats.pitch, n)
            side.lf0, side.vuv = lf0[:t], vuv[:t]
    voiced = {side.key: _voiced(side, cfg) for side in (src, tgt)}
    with _timed(timings, "dtw"):
        duration, cost = dtw.align_durations(src.mel, tgt.mel, r)
    with _timed(timings, "segments"):
        if cfg.sentence_duration:
            cuts = [segments.Segmentation.from_silences(len(s.x), s.silences) for s in (src, tgt)]
        else:
            cuts = [segments.Segmentation.whole(len(s.x)) for s in (src, tgt)]
        src_seg, tgt_seg, fallback = segments.pair_segments(
            *cuts, ts // r, tt // r, mel_cfg.hop_length, r
        )
    item = {f"{s.key}_{k}": getattr(s, k) for s in (src, tgt) for k in STREAMS}
    item.update(
        duration=duration.astype(np.int32),
        src_seg=src_seg,
        tgt_seg=tgt_seg,
        src_seconds=len(src.x) / sr,
        tgt_seconds=len(tgt.x) / sr,
        src_trimmed_seconds=(src.head + src.tail) / sr,
        tgt_trimmed_seconds=(tgt.head + tgt.tail) / sr,
        dtw_cost=float(cost),
        seg_fallback=int(fallback),
        src_voiced_fraction=voiced["src"],
        tgt_voiced_fraction=voiced["tgt"],
    )
    return item


def save_raw(path: str | Path, item: dict) -> None:
    """Write one utterance's features as an uncompressed ``.npz``, atomically.

    Args:
        path: Destination (``.npz``); a temporary sibling is renamed over it.
        item: Arrays and scalars, e.g. from :func:`extract_pair`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in item.items()})
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_raw(path: str | Path) -> dict:
    """Read a file written by :func:`save_raw`; 0-d entries come back as Python scalars.

    Raises:
        ValueError: the file is missing or damaged (delete it to recompute the utterance).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path}: unreadable feature cache ({err}); delete it to recompute this utterance"
        ) from None
