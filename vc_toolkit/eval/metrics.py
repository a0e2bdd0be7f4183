"""Objective scores of converted speech against the parallel target utterance.

What is computed, for one (converted, target) pair of waveforms at the same
sample rate (:func:`score_pair`):

1. **WORLD analysis** of both sides [Morise et al., "WORLD: a vocoder-based
   high-quality speech synthesis system for real-time applications", IEICE
   2016]: F0 with Harvest between ``eval.f0_floor`` and ``eval.f0_ceil`` Hz
   (0 = unvoiced), the CheapTrick spectral envelope, and its mel-cepstrum
   ``c_0 .. c_M`` (``pysptk.sp2mc``). Order ``M`` and all-pass constant
   ``alpha`` come from ``eval.mcep_order``/``eval.mcep_alpha`` or, when null,
   from the sample rate as in ESPnet's MCD evaluation
   (``egs2/TEMPLATE/asr1/pyscripts/utils/evaluate_mcd.py``,
   ``_get_best_mcep_params``): 16 kHz → (23, 0.42), 22.05 kHz → (34, 0.45),
   24 kHz → (34, 0.46), 44.1 kHz → (39, 0.53), 48 kHz → (39, 0.55).
2. **Alignment**: one DTW path (symmetric steps, Euclidean frame distance;
   :mod:`vc_toolkit.features.dtw`) between the mel-cepstra without ``c_0``.
   Every metric below averages over the pairs ``(i, j)`` of that path, so a
   frame repeated by the path counts once per repetition.
3. **MCD** (dB) [Kubichek, "Mel-cepstral distance measure for objective speech
   quality assessment", PACRIM 1993]: the mean over path pairs of
   ``(10 / ln 10) * sqrt(2 * sum_{d=1..M} (c_d - c'_d)^2)``; ``c_0`` (energy)
   is included only with ``eval.use_c0``. ``mcd`` uses all pairs; ``mcd_vad``
   only pairs where both frames are speech. A frame is speech when its power
   (mean of the WORLD power envelope over the full band) is above
   ``VAD_THRESHOLD_DB`` = -20 dB relative to the mean frame power of its
   utterance, the rule of sprocket's ``spc2npow``/``extfrm``
   (k2kobayashi/sprocket, the VCC 2018 baseline). A silent utterance has no
   speech frames.
4. **F0**, on path pairs voiced on both sides (their count: ``voiced_frames``):
   ``f0_rmse_hz`` = RMS of ``f0 - f0'``; ``f0_rmse_cents`` = RMS of
   ``1200 * log2(f0 / f0')``; ``lf0_corr`` = Pearson correlation of
   ``log f0`` and ``log f0'``. ``vuv_error`` = fraction of all path pairs whose
   voicing decisions differ.
5. **Duration**: ``conv_seconds``, ``tgt_seconds`` (sample counts / rate),
   ``len_ratio`` = converted / target length, and ``ddur`` =
   ``|ln(len_conv / len_tgt)|`` (0 for equal lengths; 0.1 ≈ 10 % off either way).

Flags: ``silent`` when the converted waveform's RMS is below -60 dBFS (or it
is empty); ``unvoiced`` when it has no voiced frame. Metrics stay computed
where defined; undefined ones (no frames to average, fewer than two voiced
pairs for the correlation) are NaN.

:func:`summarize` reports, per metric over utterances, the mean, sample
standard deviation (ddof 1), count ``n`` of non-NaN values and the half-width
``ci95`` of the 95 % Student-t confidence interval of the mean
(``t_{0.975, n-1} * std / sqrt(n)``), plus how many rows were flagged.

Example:
    >>> a = np.zeros((2, 3)); b = np.ones((2, 3))
    >>> round(mcd(a, b), 4), round(mcd(a, b, use_c0=True), 4)
    (8.6859, 10.638)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pysptk
import pyworld
import scipy.stats

from vc_toolkit.config.tag import Eval
from vc_toolkit.features.dtw import distance_matrix, dtw

MCEP_PARAMS = {
    16000: (23, 0.42),
    22050: (34, 0.45),
    24000: (34, 0.46),
    44100: (39, 0.53),
    48000: (39, 0.55),
}
VAD_THRESHOLD_DB = -20.0
SILENCE_DBFS = -60.0
MCD_SCALE = 10.0 / math.log(10.0)

METRIC_KEYS = (
    "mcd",
    "mcd_vad",
    "f0_rmse_hz",
    "f0_rmse_cents",
    "lf0_corr",
    "vuv_error",
    "voiced_frames",
    "len_ratio",
    "ddur",
    "conv_seconds",
    "tgt_seconds",
)
FLAG_KEYS = ("silent", "unvoiced")


def mcep_params(sample_rate: int) -> tuple[int, float]:
    """Mel-cepstrum ``(order, alpha)`` for a sample rate, as ESPnet chooses them.

    Example:
        >>> mcep_params(22050)
        (34, 0.45)
    """
    if sample_rate not in MCEP_PARAMS:
        known = ", ".join(str(r) for r in MCEP_PARAMS)
        raise ValueError(
            f"no default mel-cepstrum settings for {sample_rate} Hz (known: {known}); "
            "set eval.mcep_order and eval.mcep_alpha"
        )
    return MCEP_PARAMS[sample_rate]


def _check_wav(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a mono waveform (1-D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has NaN or inf samples")
    return x


def _world(
    x: np.ndarray,
    sr: int,
    f0_floor: float,
    f0_ceil: float,
    frame_period_ms: float,
    order: int,
    alpha: float,
    method: str = "harvest",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WORLD analysis → ``(mcep (T, order + 1), f0 (T,), frame power (T,))``."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if method == "harvest":
        f0, t = pyworld.harvest(
            x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period_ms
        )
    elif method == "dio":
        f0, t = pyworld.dio(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period_ms)
        f0 = pyworld.stonemask(x, f0, t, sr)
    else:
        raise ValueError(f"unknown F0 method {method!r}; use 'harvest' or 'dio'")
    sp = np.maximum(pyworld.cheaptrick(x, f0, t, sr), 1e-30)
    mcep = pysptk.sp2mc(sp, order, alpha)
    # mean of the two-sided power spectrum from its one-sided half
    power = (sp[:, 0] + sp[:, -1] + 2.0 * sp[:, 1:-1].sum(axis=1)) / (2 * (sp.shape[1] - 1))
    return mcep, f0, power


def world_features(
    x: np.ndarray,
    sr: int,
    f0_floor: float,
    f0_ceil: float,
    frame_period_ms: float,
    order: int,
    alpha: float,
    method: str = "harvest",
) -> tuple[np.ndarray, np.ndarray]:
    """Mel-cepstrum and F0 of a waveform with WORLD.

    Args:
        x: Waveform, (N,), float in [-1, 1].
        sr: Sample rate, Hz.
        f0_floor: Lowest F0 searched, Hz.
        f0_ceil: Highest F0 searched, Hz.
        frame_period_ms: Frame shift, ms.
        order: Mel-cepstrum order ``M``.
        alpha: All-pass constant.
        method: ``harvest`` or ``dio`` (dio + StoneMask).

    Returns:
        ``(mcep, f0)``: (T, order + 1) mel-cepstra and (T,) F0 in Hz (0 = unvoiced).
    """
    mcep, f0, _ = _world(
        _check_wav(x, "x"), sr, f0_floor, f0_ceil, frame_period_ms, order, alpha, method
    )
    return mcep, f0


def speech_frames(power: np.ndarray, threshold_db: float = VAD_THRESHOLD_DB) -> np.ndarray:
    """Frames whose power is above ``threshold_db`` relative to the mean frame power.

    Example:
        >>> speech_frames(np.array([1.0, 1.0, 1e-4])).tolist()
        [True, True, False]
    """
    power = np.asarray(power, dtype=np.float64)
    mean = power.mean() if len(power) else 0.0
    if mean <= 0.0:
        return np.zeros(len(power), dtype=bool)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(power / mean) > threshold_db


def mcd(
    mc_a: np.ndarray, mc_b: np.ndarray, use_c0: bool = False, mask: np.ndarray | None = None
) -> float:
    """Mel-cepstral distortion in dB between aligned frames.

    Args:
        mc_a: Mel-cepstra, (T, M + 1).
        mc_b: Mel-cepstra aligned with ``mc_a``, (T, M + 1).
        use_c0: Include ``c_0``.
        mask: Frames to average over, (T,) bool; None: all.

    Returns:
        Mean over frames of ``(10 / ln 10) * sqrt(2 * sum_d (a_d - b_d)^2)``; NaN with no frame.
    """
    a = np.asarray(mc_a, dtype=np.float64)
    b = np.asarray(mc_b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"mcd needs two aligned (T, D) arrays, got {a.shape} and {b.shape}")
    if not use_c0:
        a, b = a[:, 1:], b[:, 1:]
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(a),):
            raise ValueError(f"mcd mask must have shape ({len(a)},), got {mask.shape}")
        a, b = a[mask], b[mask]
    if len(a) == 0:
        return math.nan
    return float(np.mean(MCD_SCALE * np.sqrt(2.0 * ((a - b) ** 2).sum(axis=1))))


def align(mc_a: np.ndarray, mc_b: np.ndarray) -> np.ndarray:
    """DTW path between two mel-cepstrum sequences, ``c_0`` left out → (L, 2) int64."""
    path, _ = dtw(distance_matrix(np.asarray(mc_a)[:, 1:], np.asarray(mc_b)[:, 1:]))
    return path


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN with fewer than two points or a constant side."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((dx * dx).sum() * (dy * dy).sum()))
    return float((dx * dy).sum() / denom) if denom > 0 else math.nan


def f0_metrics(f0_a: np.ndarray, f0_b: np.ndarray) -> dict[str, float]:
    """F0 and voicing scores of two aligned F0 tracks (Hz, 0 = unvoiced), (L,) each.

    Returns:
        ``f0_rmse_hz``, ``f0_rmse_cents``, ``lf0_corr`` over frames voiced in both,
        ``vuv_error`` over all frames, and ``voiced_frames``.

    Example:
        >>> out = f0_metrics(np.array([110.0, 0.0, 220.0]), np.array([100.0, 0.0, 0.0]))
        >>> out["f0_rmse_hz"], round(out["f0_rmse_cents"], 1), round(out["vuv_error"], 3)
        (10.0, 165.0, 0.333)
    """
    a = np.asarray(f0_a, dtype=np.float64)
    b = np.asarray(f0_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"f0_metrics needs two aligned (L,) tracks, got {a.shape} and {b.shape}")
    va, vb = a > 0, b > 0
    both = va & vb
    out = {
        "f0_rmse_hz": math.nan,
        "f0_rmse_cents": math.nan,
        "lf0_corr": math.nan,
        "vuv_error": float(np.mean(va != vb)) if len(a) else math.nan,
        "voiced_frames": int(both.sum()),
    }
    if both.any():
        fa, fb = a[both], b[both]
        out["f0_rmse_hz"] = float(np.sqrt(np.mean((fa - fb) ** 2)))
        out["f0_rmse_cents"] = float(np.sqrt(np.mean((1200.0 * np.log2(fa / fb)) ** 2)))
        out["lf0_corr"] = pearson(np.log(fa), np.log(fb))
    return out


def duration_metrics(n_conv: int, n_tgt: int, sr: int) -> dict[str, float]:
    """Length scores from sample counts.

    Example:
        >>> d = duration_metrics(22050, 11025, 22050)
        >>> d["len_ratio"], round(d["ddur"], 4), d["conv_seconds"]
        (2.0, 0.6931, 1.0)
    """
    ratio = n_conv / n_tgt if n_tgt > 0 else math.nan
    return {
        "conv_seconds": n_conv / sr,
        "tgt_seconds": n_tgt / sr,
        "len_ratio": ratio,
        "ddur": abs(math.log(ratio)) if ratio > 0 else math.nan,
    }


def is_silent(x: np.ndarray) -> bool:
    """True when the waveform is empty or its RMS is below ``SILENCE_DBFS``."""
    return len(x) == 0 or float(np.sqrt(np.mean(np.square(x)))) < 10.0 ** (SILENCE_DBFS / 20.0)


def score_pair(
    conv_wav: np.ndarray,
    tgt_wav: np.ndarray,
    sr: int,
    eval_cfg: Eval,
    frame_period_ms: float = 5.0,
) -> dict[str, Any]:
    """Every metric of the module docstring for one converted/target pair.

    Args:
        conv_wav: Converted waveform, (N,), float.
        tgt_wav: Target waveform, (M,), float, same sample rate.
        sr: Sample rate, Hz.
        eval_cfg: ``eval`` block of the tag config (mcep order/alpha, use_c0, F0 range).
        frame_period_ms: WORLD frame shift, ms.

    Returns:
        Floats ``mcd``, ``mcd_vad``, ``f0_rmse_hz``, ``f0_rmse_cents``, ``lf0_corr``,
        ``vuv_error``, ``len_ratio``, ``ddur``, ``conv_seconds``, ``tgt_seconds``,
        int ``voiced_frames`` and bool flags ``silent``, ``unvoiced``.
    """
    conv = _check_wav(conv_wav, "converted waveform")
    tgt = _check_wav(tgt_wav, "target waveform")
    if is_silent(tgt):
        raise ValueError("target waveform is silent (RMS below -60 dBFS); check the reference")
    row: dict[str, Any] = dict.fromkeys(METRIC_KEYS, math.nan)
    row.update(duration_metrics(len(conv), len(tgt), sr))
    row.update(voiced_frames=0, silent=is_silent(conv), unvoiced=True)
    if len(conv) == 0:
        return row
    order, alpha = eval_cfg.mcep_order, eval_cfg.mcep_alpha
    if order is None or alpha is None:
        default_order, default_alpha = mcep_params(sr)
        order = default_order if order is None else order
        alpha = default_alpha if alpha is None else alpha
    args = (sr, eval_cfg.f0_floor, eval_cfg.f0_ceil, frame_period_ms, order, alpha)
    mc_c, f0_c, pow_c = _world(conv, *args)
    mc_t, f0_t, pow_t = _world(tgt, *args)
    path = align(mc_c, mc_t)
    i, j = path[:, 0], path[:, 1]
    speech_c = np.zeros(len(mc_c), bool) if row["silent"] else speech_frames(pow_c)
    speech = speech_c[i] & speech_frames(pow_t)[j]
    row["mcd"] = mcd(mc_c[i], mc_t[j], eval_cfg.use_c0)
    row["mcd_vad"] = mcd(mc_c[i], mc_t[j], eval_cfg.use_c0, mask=speech)
    row.update(f0_metrics(f0_c[i], f0_t[j]))
    row["unvoiced"] = not bool((f0_c > 0).any())
    return row


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Corpus-level statistics of :func:`score_pair` rows.

    Returns:
        ``{metric: {"mean", "std", "n", "ci95"}}`` for every numeric key (other keys,
        such as utterance ids, are skipped; NaN values
        ignored; std with ddof 1; ``ci95`` the half-width of the 95 % Student-t
        interval; NaN where ``n`` is too small), plus ``"count": {"rows", "silent",
        "unvoiced"}``.

    Example:
        >>> s = summarize([{"utt": "a", "mcd": 4.0, "silent": False},
        ...                {"utt": "b", "mcd": 6.0, "silent": True}])
        >>> s["mcd"]["mean"], s["mcd"]["n"], s["count"]
        (5.0, 2, {'rows': 2, 'silent': 1, 'unvoiced': 0})
    """
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in FLAG_KEYS]
    out: dict[str, Any] = {}
    for key in keys:
        numbers = [r[key] for r in rows if _is_number(r.get(key))]
        if not numbers:
            continue
        values = np.array(numbers, dtype=np.float64)
        values = values[~np.isnan(values)]
        n = len(values)
        mean = float(values.mean()) if n else math.nan
        std = float(values.std(ddof=1)) if n > 1 else math.nan
        ci = float(scipy.stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
        out[key] = {"mean": mean, "std": std, "n": n, "ci95": ci}
    out["count"] = {"rows": len(rows), **{f: sum(bool(r.get(f)) for r in rows) for f in FLAG_KEYS}}
    return out
