"""Stage-1 features of one parallel pair, and the per-utterance cache files.

For each side: the audio front-end (:mod:`vc_toolkit.features.frontend`: load,
mono, resample to the spk rate, trim head/tail silence, zero internal silences
when ``trim.zero_internal_silence``) → log-mel and log energy (one STFT) →
WORLD log-F0 and voiced mask on the same frames. Every
stream of a side is cut to the same ``T``, a multiple of the reduction factor
``r`` (the last ``T mod r`` frames are dropped). Durations come from DTW between
the two sides at ``r`` (:func:`vc_toolkit.features.dtw.align_durations`), on the
log-mel or, with ``feats.dtw.n_mels``, a coarser log-mel (:func:`dtw_features`);
sentence segments from the internal silences
(:func:`vc_toolkit.features.segments.pair_segments`).

A pair that cannot give useful features raises :class:`BadPair` with one of
:data:`BAD_REASONS`, checked in this order: unreadable, truncated, empty, silent,
too_short, length_ratio, unvoiced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.features import dtw, frontend, segments, spectral
from vc_toolkit.features.frontend import Speech
from vc_toolkit.features.pitch import extract_lf0
from vc_toolkit.io import writing

T = TypeVar("T")

BAD_REASONS = (
    "unreadable",
    "truncated",
    "empty",
    "silent",
    "too_short",
    "unvoiced",
    "length_ratio",
)
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


@contextlib.contextmanager
def _timed(timings: dict | None, key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


def _side(key: str) -> str:
    return "source" if key == "src" else "target"


def _checked(key: str, fn: Callable[..., T], *args) -> T:
    """``fn(*args)``; an unusable side becomes a :class:`BadPair` naming the side."""
    try:
        return fn(*args)
    except frontend.UnusableAudioError as err:
        raise BadPair(err.reason, f"{_side(key)} {err}") from None


def _check_ratio(src: Speech, tgt: Speech, ts: int, tt: int, limit: float) -> None:
    ratio = max(ts / tt, tt / ts)
    if ratio > limit:
        raise BadPair(
            "length_ratio",
            f"source {src.path} has {ts} frames, target {tgt.path} has {tt} "
            f"(ratio {ratio:.2f} > filters.max_length_ratio {limit})",
        )


def mel_energy(speech: Speech, cfg: SpkConfig, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel (T, n_mels) and log energy (T,) of ``speech`` from one STFT, cut to ``n_frames``."""
    mel, energy = spectral.log_mel_energy(speech.samples, cfg.sample_rate, cfg.feats.mel)
    return mel[:n_frames], energy[:n_frames]


def lf0_vuv(speech: Speech, cfg: SpkConfig, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """WORLD log-F0 and voiced mask (T,) of ``speech`` on the mel frames, cut to ``n_frames``."""
    hop = cfg.feats.mel.hop_length
    n = spectral.num_frames(len(speech.samples), hop)
    lf0, vuv = extract_lf0(speech.samples, cfg.sample_rate, hop, cfg.feats.pitch, n)
    return lf0[:n_frames], vuv[:n_frames]


def dtw_features(speech: Speech, cfg: SpkConfig, mel: np.ndarray) -> np.ndarray:
    """What DTW aligns (``feats.dtw``): the log-mel ``mel`` (T, n_mels) itself, or an
    ``n_mels``-band log-mel of ``speech`` over the same band, (T, feats.dtw.n_mels)."""
    bands = cfg.feats.dtw.n_mels
    if bands is None or bands == cfg.feats.mel.n_mels:
        return mel
    coarse = dataclasses.replace(cfg.feats.mel, n_mels=bands)
    return spectral.log_mel_energy(speech.samples, cfg.sample_rate, coarse)[0][: len(mel)]


def speech_segments(speech: Speech, cfg: SpkConfig) -> segments.Segmentation:
    """Sentence segments of ``speech``: cut at its internal silences when ``sentence_duration``."""
    if cfg.sentence_duration:
        return segments.Segmentation.from_silences(len(speech.samples), speech.silences)
    return segments.Segmentation.whole(len(speech.samples))


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
    r, keys = cfg.reduction_factor, ("src", "tgt")
    paths = dict(zip(keys, (src_path, tgt_path), strict=True))
    raw, speech, item = {}, {}, {}
    with _timed(timings, "load"):
        for key in keys:
            raw[key] = _checked(key, frontend.read, paths[key], cfg.sample_rate)
    with _timed(timings, "trim"):
        for key in keys:
            speech[key] = frontend.front_end(raw[key], cfg.sample_rate, cfg.trim, paths[key])
            _checked(key, frontend.check_speech, speech[key], cfg)
    frames = {k: _checked(k, frontend.num_frames, speech[k], cfg) for k in keys}
    src, tgt = speech["src"], speech["tgt"]
    ts, tt = frames["src"], frames["tgt"]
    _check_ratio(src, tgt, ts, tt, cfg.filters.max_length_ratio)
    with _timed(timings, "mel"):
        for key in keys:
            item[f"{key}_mel"], item[f"{key}_energy"] = mel_energy(speech[key], cfg, frames[key])
    with _timed(timings, "f0"):
        for key in keys:
            item[f"{key}_lf0"], item[f"{key}_vuv"] = lf0_vuv(speech[key], cfg, frames[key])
    voiced = {k: _checked(k, frontend.check_voiced, item[f"{k}_vuv"], cfg, paths[k]) for k in keys}
    with _timed(timings, "dtw"):
        src_x, tgt_x = (dtw_features(speech[k], cfg, item[f"{k}_mel"]) for k in keys)
        duration, cost = dtw.align_durations(src_x, tgt_x, r)
    with _timed(timings, "segments"):
        cuts = [speech_segments(speech[k], cfg) for k in keys]
        src_seg, tgt_seg, fallback = segments.pair_segments(
            *cuts, ts // r, tt // r, cfg.feats.mel.hop_length, r
        )
    item = {f"{k}_{s}": item[f"{k}_{s}"] for k in keys for s in STREAMS}
    item.update(
        duration=duration.astype(np.int32),
        src_seg=src_seg,
        tgt_seg=tgt_seg,
        src_seconds=src.seconds,
        tgt_seconds=tgt.seconds,
        src_trimmed_seconds=src.trimmed_seconds,
        tgt_trimmed_seconds=tgt.trimmed_seconds,
        dtw_cost=float(cost),
        seg_fallback=int(fallback),
        src_voiced_fraction=voiced["src"],
        tgt_voiced_fraction=voiced["tgt"],
    )
    return item


def extract_utterance(path: str | Path, cfg: SpkConfig, timings: dict | None = None) -> dict:
    """Features of one recording, as the target side of :func:`extract_pair` has them.

    Used for text spks, whose items have a transcript instead of a source recording.

    Returns:
        float32 ``tgt_mel`` (T, n_mels), ``tgt_lf0``, ``tgt_vuv``, ``tgt_energy`` (T,) with T a
        multiple of ``reduction_factor``, and the floats ``tgt_seconds`` (after trimming),
        ``tgt_trimmed_seconds``, ``head_seconds`` (cut at the start: frame 0 starts there
        in the file) and ``tgt_voiced_fraction``.

    Raises:
        BadPair: the recording is unusable (see :data:`BAD_REASONS`).
    """
    with threadpool_limits(1, user_api="blas"):
        with _timed(timings, "load"):
            x = _checked("tgt", frontend.read, path, cfg.sample_rate)
        with _timed(timings, "trim"):
            speech = frontend.front_end(x, cfg.sample_rate, cfg.trim, path)
            _checked("tgt", frontend.check_speech, speech, cfg)
        n = _checked("tgt", frontend.num_frames, speech, cfg)
        with _timed(timings, "mel"):
            mel, energy = mel_energy(speech, cfg, n)
        with _timed(timings, "f0"):
            lf0, vuv = lf0_vuv(speech, cfg, n)
        voiced = _checked("tgt", frontend.check_voiced, vuv, cfg, path)
    return {
        "tgt_mel": mel,
        "tgt_lf0": lf0,
        "tgt_vuv": vuv,
        "tgt_energy": energy,
        "tgt_seconds": speech.seconds,
        "tgt_trimmed_seconds": speech.trimmed_seconds,
        "head_seconds": speech.head / cfg.sample_rate,
        "tgt_voiced_fraction": voiced,
    }


def save_raw(path: str | Path, item: dict) -> None:
    """Write one utterance's features as an uncompressed ``.npz``, atomically.

    Args:
        path: Destination (``.npz``); a temporary sibling is renamed over it.
        item: Arrays and scalars, e.g. from :func:`extract_pair`.

    Raises:
        DiskFullError: the disk filled up (nothing is left behind).
    """
    path = Path(path)
    with writing(path):
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
