"""Silence trimming: hand-computed chunk multiples and pydub itself as the reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from vc_toolkit.config.spk import Trim
from vc_toolkit.features import trim

with warnings.catch_warnings():  # pydub warns about audioop and a missing ffmpeg on import
    warnings.simplefilter("ignore")
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence, detect_silence


def tone(ms: float, sr: int, amp: float = 0.5, f: float = 440.0) -> np.ndarray:
    t = np.arange(round(ms * sr / 1000)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def noise(ms: float, sr: int, db: float, seed: int = 0) -> np.ndarray:
    """White noise whose rms is ``db`` dBFS."""
    x = np.random.default_rng(seed).standard_normal(round(ms * sr / 1000))
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (db / 20)).astype(np.float32)


def zeros(ms: float, sr: int) -> np.ndarray:
    return np.zeros(round(ms * sr / 1000), dtype=np.float32)


def segment(x: np.ndarray, sr: int) -> AudioSegment:
    """The int16 pydub version of a float signal (same scale: full scale 32768)."""
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2")
    return AudioSegment(data=pcm.tobytes(), sample_width=2, frame_rate=sr, channels=1)


def cfg(**kw) -> Trim:
    return Trim(**{"silence_thresh_h": -50.0, "silence_thresh_t": -50.0, "chunk_size": 10, **kw})


def test_head_and_tail_are_chunk_multiples() -> None:
    sr = 16000
    x = np.concatenate([zeros(235, sr), tone(600, sr), zeros(183, sr)])
    # head: chunks of 10 ms stay silent up to 230 ms (the 230-240 chunk holds 5 ms of tone)
    assert trim.leading_silence_ms(x, sr, -50.0, 10) == 230
    # tail, scanned from the end: 180 ms of full zero chunks, then 3 ms of zeros + tone
    assert trim.leading_silence_ms(x[::-1], sr, -50.0, 10) == 180
    y, head, tail = trim.trim_silence(x, sr, cfg())
    assert (head, tail) == (230 * 16, 180 * 16)
    np.testing.assert_array_equal(y, x[230 * 16 : len(x) - 180 * 16])


def test_chunk_size_changes_the_multiple() -> None:
    sr = 16000
    x = np.concatenate([zeros(235, sr), tone(300, sr)])
    assert trim.leading_silence_ms(x, sr, -50.0, 50) == 200
    assert trim.leading_silence_ms(x, sr, -50.0, 7) == 231  # 33 * 7


@pytest.mark.parametrize("sr", [16000, 22050, 8000])
def test_leading_and_trailing_match_pydub(sr: int) -> None:
    rng = np.random.default_rng(sr)
    seen = set()
    for _ in range(4):
        head_ms, tail_ms = rng.uniform(0, 400, size=2)
        x = np.concatenate(
            [noise(head_ms, sr, -62, 1), tone(500, sr, 0.3), noise(tail_ms, sr, -45, 2)]
        )
        seg = segment(x, sr)
        for thresh in (-70.0, -55.0, -40.0):
            for chunk in (10, 25):
                ours = trim.leading_silence_ms(x, sr, thresh, chunk)
                assert ours == detect_leading_silence(seg, thresh, chunk)
                seen.add(ours > 0)
                ours_tail = trim.leading_silence_ms(x[::-1], sr, thresh, chunk)
                assert ours_tail == detect_leading_silence(seg.reverse(), thresh, chunk)
    assert seen == {True, False}  # both trimmed and untrimmed heads were compared


def test_all_silent_signal_is_trimmed_to_nothing() -> None:
    sr = 16000
    x = zeros(333, sr)
    assert trim.leading_silence_ms(x, sr, -50.0, 10) == 333  # capped at the length
    y, head, tail = trim.trim_silence(x, sr, cfg())
    assert len(y) == 0 and head + tail == len(x)


def test_head_and_tail_thresholds_act_independently() -> None:
    sr = 16000
    hum = noise(200, sr, -45.0)  # 200 ms = 20 whole chunks of 10 ms
    x = np.concatenate([hum, tone(400, sr), hum])
    y, head, tail = trim.trim_silence(x, sr, cfg(silence_thresh_h=-40.0, silence_thresh_t=-50.0))
    assert (head, tail) == (3200, 0)
    y, head, tail = trim.trim_silence(x, sr, cfg(silence_thresh_h=-50.0, silence_thresh_t=-40.0))
    assert (head, tail) == (0, 3200)
    y, head, tail = trim.trim_silence(x, sr, cfg(enabled=False, silence_thresh_h=-40.0))
    assert (head, tail, len(y)) == (0, 0, len(x))


def test_detect_silences_matches_pydub() -> None:
    sr = 16000
    x = np.concatenate(
        [
            zeros(120, sr),
            tone(300, sr),
            noise(260, sr, -70.0),
            tone(200, sr),
            zeros(90, sr),  # shorter than min_silence_len
            tone(150, sr),
            noise(333, sr, -65.0),
        ]
    )
    seg = segment(x, sr)
    length = len(seg)
    for min_len, thresh, seek in [(100, -60.0, 1), (150, -60.0, 7), (80, -68.0, 10)]:
        expected = [
            (a * sr // 1000, len(x) if b == length else b * sr // 1000)
            for a, b in detect_silence(seg, min_len, thresh, seek)
        ]
        assert expected, "the reference found no silence; the test signal is wrong"
        assert trim.detect_silences(x, sr, min_len, thresh, seek) == expected


def test_detect_silences_hand_computed() -> None:
    sr = 1000  # one sample per ms
    x = np.concatenate([np.full(300, 0.5), np.zeros(200), np.full(300, 0.5)]).astype(np.float32)
    # every 100-ms window starting in 300..400 is all zeros; the one at 299 holds a loud sample
    assert trim.detect_silences(x, sr, 100, -60.0, 1) == [(300, 500)]
    assert trim.detect_silences(x, sr, 250, -60.0, 1) == []


def test_internal_silences_are_zeroed_and_edges_are_not_internal() -> None:
    sr = 16000
    quiet = noise(200, sr, -70.0)
    x = np.concatenate([quiet, tone(300, sr), quiet, tone(300, sr), noise(50, sr, -70.0)])
    x = np.concatenate([x, tone(300, sr)])
    t = cfg(silence_thresh_t=-60.0, min_silence_len=100)
    inner = trim.internal_silences(x, sr, t)
    # the leading 200 ms touches the start (not internal); the 50 ms gap is too short
    assert inner == [(500 * 16, 700 * 16)]
    y = trim.zero_internal_silences(x, inner)
    assert np.all(y[8000:11200] == 0)
    np.testing.assert_array_equal(y[:8000], x[:8000])
    np.testing.assert_array_equal(y[11200:], x[11200:])
    assert np.any(x[8000:11200] != 0)  # the input is left untouched


def test_dbfs_of_a_full_scale_sine() -> None:
    x = tone(1000, 16000, amp=1.0, f=1000.0)
    assert trim.dbfs(x) == pytest.approx(-3.0103, abs=1e-3)
    assert trim.dbfs(np.zeros(10, np.float32)) == -np.inf


def test_ms_grid_maps_to_samples_by_floor() -> None:
    sr = 22050  # 10 ms = 220.5 samples: chunk 1 starts at sample floor(220.5) = 220
    x = np.zeros(2205, dtype=np.float32)
    x[220] = 0.5
    assert trim.leading_silence_ms(x, sr, -50.0, 10) == 10
    assert detect_leading_silence(segment(x, sr), -50.0, 10) == 10
    x[220], x[219] = 0.0, 0.5
    assert trim.leading_silence_ms(x, sr, -50.0, 10) == 0
