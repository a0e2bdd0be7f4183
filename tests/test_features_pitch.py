"""WORLD F0 on synthetic harmonic signals; continuous interpolation; voicing of silence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vc_toolkit.config.spk import Pitch
from vc_toolkit.features.pitch import UNVOICED_LF0, extract_lf0, fit_length, interpolate_unvoiced

SR, HOP = 16000, 160


def harmonic(f0: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = sum(0.3 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 8))
    return x.astype(np.float32)


@pytest.mark.parametrize("method", ["dio", "harvest"])
@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_f0_of_a_harmonic_signal(method: str, f0: float) -> None:
    x = harmonic(f0, 0.6)
    n = 1 + len(x) // HOP
    lf0, vuv = extract_lf0(x, SR, HOP, Pitch(method=method, f0_floor=60, f0_ceil=500), n)
    assert lf0.dtype == vuv.dtype == np.float32
    assert vuv[5:-5].mean() > 0.9
    voiced = lf0[5:-5][vuv[5:-5] > 0]
    assert np.median(np.abs(voiced - math.log(f0))) < math.log(1.03)


@pytest.mark.parametrize("f0", [90.0, 150.0, 300.0])
def test_decimated_dio_is_as_accurate_as_full_rate_on_a_known_contour(f0: float) -> None:
    sr, hop = 22050, 256
    t = np.arange(int(sr * 1.5)) / sr
    true = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.9 * t) + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(true) / sr
    x = sum(0.3 / k * np.sin(k * phase) for k in range(1, 12)).astype(np.float32)
    n = 1 + len(x) // hop
    frames = np.interp(np.arange(n) * hop / sr, t, true)
    errors = {}
    for speed in (1, 3):
        cfg = Pitch(f0_floor=60, f0_ceil=500, dio_speed=speed, continuous=False)
        lf0, vuv = extract_lf0(x, sr, hop, cfg, n)
        inner = slice(3, -3)
        assert vuv[inner].mean() > 0.97
        voiced = vuv[inner] > 0
        cents = 1200 / math.log(2) * np.abs(lf0[inner][voiced] - np.log(frames[inner][voiced]))
        errors[speed] = float(np.mean(cents))
    assert errors[1] < 3.0 and errors[3] < 3.0
    assert abs(errors[3] - errors[1]) < 0.5


def test_dio_speed_is_passed_on() -> None:
    x = harmonic(150.0, 1.0)
    n = 1 + len(x) // HOP
    a = extract_lf0(x, SR, HOP, Pitch(dio_speed=1, continuous=False), n)[0]
    b = extract_lf0(x, SR, HOP, Pitch(dio_speed=6, continuous=False), n)[0]
    assert not np.array_equal(a, b)


def test_silence_is_unvoiced_and_interpolated() -> None:
    gap = np.zeros(int(0.4 * SR), dtype=np.float32)
    x = np.concatenate([harmonic(120.0, 0.4), gap, harmonic(240.0, 0.4)])
    n = 1 + len(x) // HOP
    lf0, vuv = extract_lf0(x, SR, HOP, Pitch(continuous=False), n)
    middle = slice(50, 70)  # frames 50-69 lie well inside the 400-800 ms gap
    assert np.all(vuv[middle] == 0)
    assert np.all(lf0[vuv == 0] == UNVOICED_LF0)
    cont, vuv_c = extract_lf0(x, SR, HOP, Pitch(continuous=True), n)
    np.testing.assert_array_equal(vuv_c, vuv)
    np.testing.assert_array_equal(cont[vuv > 0], lf0[vuv > 0])
    # inside the gap: a straight line between the last and next voiced log-F0
    assert math.log(115) < cont[middle].min() and cont[middle].max() < math.log(250)
    assert np.all(np.diff(cont[middle]) > 0)
    assert np.allclose(np.diff(cont[middle], 2), 0, atol=1e-5)


def test_all_silent_signal() -> None:
    x = np.zeros(SR // 2, dtype=np.float32)
    n = 1 + len(x) // HOP
    lf0, vuv = extract_lf0(x, SR, HOP, Pitch(continuous=True), n)
    assert np.all(vuv == 0) and np.all(lf0 == 0)


def test_interpolation_by_hand() -> None:
    lf0 = np.array([0, 0, 4.0, 0, 0, 0, 5.0, 0], dtype=np.float32)
    vuv = (lf0 > 0).astype(np.float32)
    out = interpolate_unvoiced(lf0, vuv)
    np.testing.assert_allclose(out, [4, 4, 4, 4.25, 4.5, 4.75, 5, 5], rtol=1e-6)
    np.testing.assert_array_equal(interpolate_unvoiced(np.zeros(3), np.zeros(3)), np.zeros(3))


def test_contour_is_fitted_to_the_frame_count() -> None:
    x = harmonic(150.0, 0.5)
    natural = 1 + len(x) // HOP
    for n in (natural - 7, natural, natural + 9):
        lf0, vuv = extract_lf0(x, SR, HOP, Pitch(continuous=False), n)
        assert lf0.shape == vuv.shape == (n,)
    assert np.all(vuv[natural:] == 0)  # padding is unvoiced
    np.testing.assert_array_equal(fit_length(np.arange(5), 3), [0, 1, 2])
    np.testing.assert_array_equal(fit_length(np.arange(2), 4), [0, 1, 0, 0])
