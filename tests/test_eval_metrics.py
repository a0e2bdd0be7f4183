"""Objective metrics: MCD, DTW alignment, F0/V-UV scores, durations, summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from vc_toolkit.config.tag import Eval
from vc_toolkit.eval.metrics import (
    align,
    duration_metrics,
    f0_metrics,
    mcd,
    mcep_params,
    score_pair,
    speech_frames,
    summarize,
    world_features,
)

SR = 16000
K = 10.0 / math.log(10.0)


def harmonic(f0: float, seconds: float = 0.5, amp: float = 0.3) -> np.ndarray:
    """A voiced test signal: harmonics of a slowly vibrating F0 up to 7.5 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1.0 + 0.05 * np.sin(2 * np.pi * 2 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    n_harm = int(7500 // (f0 * 1.05))
    return sum(amp / k * np.sin(k * phase) for k in range(1, n_harm + 1))


def test_mcep_params_follow_espnet_table_and_reject_unknown_rates():
    assert mcep_params(16000) == (23, 0.42)
    assert mcep_params(24000) == (34, 0.46)
    assert mcep_params(48000) == (39, 0.55)
    with pytest.raises(ValueError, match="eval.mcep_order"):
        mcep_params(8000)


def test_mcd_of_identical_frames_is_zero():
    a = np.random.default_rng(0).normal(size=(7, 25))
    assert mcd(a, a) == 0.0
    assert mcd(a, a, use_c0=True) == 0.0


def test_mcd_matches_hand_computed_value():
    a = np.array([[0.0, 1.0, 2.0], [5.0, 0.0, 0.0]])
    b = np.array([[9.0, 1.0, 0.0], [1.0, 3.0, 4.0]])
    # without c0: frame diffs (0, 2) and (3, 4) -> squared sums 4 and 25
    assert mcd(a, b) == pytest.approx(K * (math.sqrt(8) + math.sqrt(50)) / 2)
    # with c0: (9, 0, 2) and (4, 3, 4) -> 85 and 41
    assert mcd(a, b, use_c0=True) == pytest.approx(K * (math.sqrt(170) + math.sqrt(82)) / 2)
    # the mask keeps the second frame only
    assert mcd(a, b, mask=np.array([False, True])) == pytest.approx(K * math.sqrt(50))
    assert math.isnan(mcd(a, b, mask=np.array([False, False])))


def test_constant_offset_gives_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(11, 25))
    k = 0.3
    # 24 coefficients beyond c0, each off by k: (10 / ln 10) * sqrt(2 * 24 * k^2)
    assert mcd(a, a + k) == pytest.approx(K * k * math.sqrt(48))
    assert mcd(a, a + k, use_c0=True) == pytest.approx(K * k * math.sqrt(50))


def test_c0_only_difference_is_ignored_by_default():
    a = np.zeros((4, 5))
    b = a.copy()
    b[:, 0] = 3.0
    assert mcd(a, b) == 0.0
    assert mcd(a, b, use_c0=True) == pytest.approx(K * math.sqrt(18))


def test_dtw_aligned_mcd_of_stretched_copy_is_far_below_unaligned():
    t = np.linspace(0, 1, 40)[:, None]
    a = np.hstack([np.sin(2 * np.pi * (d + 1) * t + d) for d in range(13)])
    stretch = np.floor(np.linspace(0, len(a) - 1e-9, 70)).astype(int)  # each frame 1-2 times
    b = a[stretch]
    path = align(a, b)
    aligned = mcd(a[path[:, 0]], b[path[:, 1]])
    n = min(len(a), len(b))
    unaligned = mcd(a[:n], b[:n])
    assert aligned < 1e-6
    assert unaligned > 1.0


def test_f0_rmse_in_hz_and_cents_on_ten_percent_shift():
    tgt = np.array([100.0, 150.0, 0.0, 200.0, 0.0])
    conv = np.where(tgt > 0, tgt * 1.1, 0.0)
    out = f0_metrics(conv, tgt)
    assert out["f0_rmse_hz"] == pytest.approx(math.sqrt((10**2 + 15**2 + 20**2) / 3))
    assert out["f0_rmse_cents"] == pytest.approx(1200 * math.log2(1.1))  # 165.0
    assert out["f0_rmse_cents"] == pytest.approx(165.0, abs=0.01)
    assert out["vuv_error"] == 0.0
    assert out["voiced_frames"] == 3


def test_vuv_error_on_constructed_masks():
    a = np.array([120.0, 130.0, 0.0, 0.0, 140.0, 0.0])
    b = np.array([110.0, 0.0, 0.0, 115.0, 150.0, 160.0])
    out = f0_metrics(a, b)
    assert out["vuv_error"] == pytest.approx(3 / 6)  # frames 1, 3, 5 disagree
    assert out["voiced_frames"] == 2
    # RMSE over the frames voiced in both (0 and 4) only
    assert out["f0_rmse_hz"] == pytest.approx(math.sqrt((10**2 + 10**2) / 2))


def test_log_f0_correlation_matches_numpy():
    rng = np.random.default_rng(2)
    a = rng.uniform(80, 300, size=50)
    b = a * rng.uniform(0.8, 1.2, size=50)
    a[::7] = 0.0
    both = (a > 0) & (b > 0)
    expected = np.corrcoef(np.log(a[both]), np.log(b[both]))[0, 1]
    assert f0_metrics(a, b)["lf0_corr"] == pytest.approx(expected)


def test_f0_metrics_are_nan_without_common_voiced_frames():
    out = f0_metrics(np.array([0.0, 100.0]), np.array([120.0, 0.0]))
    assert math.isnan(out["f0_rmse_hz"]) and math.isnan(out["lf0_corr"])
    assert out["vuv_error"] == 1.0


def test_duration_metrics():
    d = duration_metrics(24000, 16000, SR)
    assert d["len_ratio"] == 1.5
    assert d["ddur"] == pytest.approx(math.log(1.5))
    assert duration_metrics(16000, 24000, SR)["ddur"] == pytest.approx(math.log(1.5))
    assert (d["conv_seconds"], d["tgt_seconds"]) == (1.5, 1.0)


def test_speech_frames_threshold_is_relative_to_mean_power():
    # mean power = (1 + 1 + 0.0101 + 0.002) / 4 ~ 0.503; -20 dB of it ~ 0.00503
    power = np.array([1.0, 1.0, 0.0101, 0.002])
    assert speech_frames(power).tolist() == [True, True, True, False]
    assert not speech_frames(np.zeros(3)).any()


def test_summarize_matches_scipy_confidence_interval():
    values = [4.1, 5.3, 6.2, 3.9, np.nan, 5.0]
    rows = [
        {"utt": str(i), "mcd": v, "silent": i == 0, "unvoiced": i in (0, 1)}
        for i, v in enumerate(values)
    ]
    out = summarize(rows)
    clean = np.array([v for v in values if not np.isnan(v)])
    low, high = scipy.stats.t.interval(
        0.95, len(clean) - 1, loc=clean.mean(), scale=scipy.stats.sem(clean)
    )
    stats = out["mcd"]
    assert stats["n"] == 5
    assert stats["mean"] == pytest.approx(clean.mean())
    assert stats["std"] == pytest.approx(np.std(clean, ddof=1))
    assert stats["mean"] - stats["ci95"] == pytest.approx(low)
    assert stats["mean"] + stats["ci95"] == pytest.approx(high)
    assert out["count"] == {"rows": 6, "silent": 1, "unvoiced": 2}
    assert "utt" not in out


def test_world_features_shapes_and_f0():
    x = harmonic(150.0, seconds=0.4)
    mc, f0 = world_features(x, SR, 40.0, 800.0, 5.0, 24, 0.42)
    assert mc.shape == (len(f0), 25)
    assert len(f0) == 1 + int(len(x) / SR * 1000 / 5.0)
    assert np.median(f0[f0 > 0]) == pytest.approx(150.0, rel=0.03)
    with pytest.raises(ValueError, match="mono"):
        world_features(np.zeros((2, 100)), SR, 40.0, 800.0, 5.0, 24, 0.42)


def test_score_pair_same_signal_scores_perfectly():
    x = harmonic(150.0)
    row = score_pair(x, x, SR, Eval())
    assert row["mcd"] == pytest.approx(0.0, abs=1e-6)
    assert row["mcd_vad"] == pytest.approx(0.0, abs=1e-6)
    assert row["f0_rmse_hz"] == pytest.approx(0.0, abs=1e-6)
    assert row["f0_rmse_cents"] == pytest.approx(0.0, abs=1e-6)
    assert row["vuv_error"] == 0.0
    assert row["lf0_corr"] == pytest.approx(1.0)
    assert row["len_ratio"] == 1.0 and row["ddur"] == 0.0
    assert row["voiced_frames"] > 50
    assert not row["silent"] and not row["unvoiced"]


def test_score_pair_octave_shift_is_1200_cents():
    tgt = harmonic(150.0)
    row = score_pair(harmonic(300.0), tgt, SR, Eval())
    assert row["f0_rmse_cents"] == pytest.approx(1200.0, abs=15.0)
    assert row["f0_rmse_hz"] == pytest.approx(150.0, rel=0.05)


def test_score_pair_flags_silent_conversion():
    tgt = harmonic(150.0)
    row = score_pair(np.zeros(len(tgt) // 2), tgt, SR, Eval(mcep_order=24, mcep_alpha=0.42))
    assert row["silent"] and row["unvoiced"]
    assert math.isnan(row["mcd_vad"]) and math.isnan(row["f0_rmse_cents"])
    assert np.isfinite(row["mcd"])
    assert row["vuv_error"] > 0.9
    assert row["len_ratio"] == 0.5
    assert row["conv_seconds"] == pytest.approx(0.25)
    assert summarize([row])["count"]["silent"] == 1


def test_mcd_vad_ignores_a_pause_that_differs_only_in_background_noise():
    tgt = harmonic(150.0, seconds=0.6)
    pause = slice(int(0.2 * SR), int(0.4 * SR))
    tgt[pause] = 0.0
    conv = tgt.copy()
    conv[pause] = np.random.default_rng(0).normal(0, 0.003, pause.stop - pause.start)  # -50 dBFS
    row = score_pair(conv, tgt, SR, Eval())
    assert row["mcd_vad"] < 0.2
    assert row["mcd"] > 5 * row["mcd_vad"]
