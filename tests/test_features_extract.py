"""extract_pair on generated wavs: shapes, trimming, every BadPair reason; audio loading."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from vc_toolkit.config import build
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.features.audio import AudioError, load_audio
from vc_toolkit.features.extract import BadPair, extract_pair, load_raw, save_raw

SR = 16000
CONF = {
    "corpus": {"name": "demo"},
    "sample_rate": SR,
    "reduction_factor": 2,
    "trim": {
        "silence_thresh_h": -50,
        "silence_thresh_t": -60,
        "chunk_size": 10,
        "min_silence_len": 150,
    },
    "feats": {
        "mel": {"n_fft": 512, "win_length": 512, "hop_length": 160, "n_mels": 20, "fmax": 7600},
        "pitch": {"f0_floor": 60, "f0_ceil": 500},
    },
}


def config(**changes) -> SpkConfig:
    data = {**CONF, **changes}
    return build(SpkConfig, data)


def voiced(ms: int, f0: float, sr: int = SR) -> np.ndarray:
    t = np.arange(ms * sr // 1000) / sr
    phase = 2 * np.pi * f0 * (t + 0.002 * np.sin(2 * np.pi * 3 * t))
    return sum(0.25 / k * np.sin(k * phase) for k in range(1, 6)).astype(np.float32)


def zeros(ms: int, sr: int = SR) -> np.ndarray:
    return np.zeros(ms * sr // 1000, dtype=np.float32)


def utterance(f0: float, parts: tuple[int, ...] = (200, 600, 250, 500, 300)) -> np.ndarray:
    """silence, speech, pause, speech, silence (ms)."""
    head, a, pause, b, tail = parts
    return np.concatenate([zeros(head), voiced(a, f0), zeros(pause), voiced(b, f0), zeros(tail)])


def wav(path: Path, x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    sf.write(path, x, sr, subtype=subtype)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    src = wav(tmp_path / "src.wav", utterance(120.0))
    tgt = wav(tmp_path / "tgt.wav", utterance(230.0, (100, 800, 300, 700, 400)))
    return src, tgt


def test_shapes_and_consistency(pair) -> None:
    timings: dict = {}
    item = extract_pair(*pair, config(), timings=timings)
    ts = (1 + (1350 * 16) // 160) // 2 * 2  # 1850 ms minus 200 + 300 ms trimmed
    tt = (1 + (1800 * 16) // 160) // 2 * 2  # 2300 ms minus 100 + 400 ms
    for side, t in (("src", ts), ("tgt", tt)):
        assert item[f"{side}_mel"].shape == (t, 20)
        for k in ("lf0", "vuv", "energy", "mel"):
            assert item[f"{side}_{k}"].dtype == np.float32
            assert len(item[f"{side}_{k}"]) == t
        assert 0.6 < item[f"{side}_voiced_fraction"] <= 1.0
    assert item["duration"].dtype == np.int32 and item["duration"].shape == (ts // 2,)
    assert item["duration"].sum() == tt // 2 and item["duration"].min() >= 0
    assert item["src_seg"].dtype == item["tgt_seg"].dtype == np.int32
    assert len(item["src_seg"]) == len(item["tgt_seg"]) == 2 and item["seg_fallback"] == 0
    assert item["src_seg"].sum() == ts // 2 and item["tgt_seg"].sum() == tt // 2
    assert item["src_seconds"] == pytest.approx(1.35)
    assert item["src_trimmed_seconds"] == pytest.approx(0.5)
    assert item["tgt_trimmed_seconds"] == pytest.approx(0.5)
    assert math.isfinite(item["dtw_cost"]) and item["dtw_cost"] > 0
    assert set(timings) == {"load", "trim", "mel", "f0", "dtw", "segments"}
    assert all(v >= 0 for v in timings.values())
    # the 250 ms pause (600-850 ms of the trimmed source) is zeroed: frames 65-80 are the floor
    np.testing.assert_allclose(item["src_mel"][65:81], math.log(1e-5), rtol=1e-6)
    mid_f0 = np.exp(np.median(item["tgt_lf0"][item["tgt_vuv"] > 0]))
    assert mid_f0 == pytest.approx(230.0, rel=0.03)


def test_switches_for_zeroing_and_segments(pair) -> None:
    item = extract_pair(*pair, config(sentence_duration=False))
    assert item["src_seg"].tolist() == [len(item["src_mel"]) // 2]
    assert item["tgt_seg"].tolist() == [len(item["tgt_mel"]) // 2]
    trim_cfg = {**CONF["trim"], "zero_internal_silence": False}
    item = extract_pair(*pair, config(trim=trim_cfg))
    assert np.all(item["src_mel"][65:81] == np.float32(math.log(1e-5)))  # digital zeros anyway
    noisy = utterance(120.0) + np.float32(3e-4) * np.random.default_rng(0).standard_normal(29600)
    src = wav(pair[0].with_name("noisy.wav"), noisy.astype(np.float32), subtype="FLOAT")
    kept = extract_pair(src, pair[1], config(trim=trim_cfg))
    zeroed = extract_pair(src, pair[1], config())
    assert np.all(kept["src_mel"][65:81] > math.log(1e-5) + 1)
    np.testing.assert_allclose(zeroed["src_mel"][65:81], math.log(1e-5), rtol=1e-6)


def test_resampled_stereo_target(tmp_path: Path, pair) -> None:
    x = utterance(230.0, (100, 800, 300, 700, 400))
    up = scipy.signal.resample_poly(x, 441, 320).astype(np.float32)
    tgt = wav(tmp_path / "t22.wav", np.stack([up, up], axis=1), 22050, "FLOAT")
    item = extract_pair(pair[0], tgt, config())
    assert abs(len(item["tgt_mel"]) - (1 + 1800 * 16 // 160)) <= 4
    assert item["duration"].sum() == len(item["tgt_mel"]) // 2


def expect(reason: str, src: Path, tgt: Path, side: str, path: Path, **cfg) -> None:
    with pytest.raises(BadPair) as info:
        extract_pair(src, tgt, config(**cfg))
    assert info.value.reason == reason
    assert side in info.value.detail and str(path) in info.value.detail


def test_bad_pair_reasons(tmp_path: Path, pair) -> None:
    src, tgt = pair
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + np.random.default_rng(0).bytes(300))
    expect("unreadable", corrupt, tgt, "source", corrupt)
    expect("unreadable", src, corrupt, "target", corrupt)
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    expect("unreadable", src, zero_bytes, "target", zero_bytes)
    expect("unreadable", src, tmp_path / "missing.wav", "target", tmp_path / "missing.wav")
    empty = wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    expect("empty", empty, tgt, "source", empty)
    silent = wav(tmp_path / "silent.wav", zeros(1000))
    expect("silent", src, silent, "target", silent)
    short = wav(tmp_path / "short.wav", np.concatenate([zeros(300), voiced(200, 150.0)]))
    expect("too_short", short, tgt, "source", short)
    b, a = scipy.signal.butter(6, 2500 / (SR / 2), "high")
    hiss = scipy.signal.lfilter(b, a, 0.1 * np.random.default_rng(1).standard_normal(SR * 2))
    unvoiced = wav(tmp_path / "hiss.wav", hiss.astype(np.float32))
    expect("unvoiced", src, unvoiced, "target", unvoiced)
    long = wav(tmp_path / "long.wav", voiced(4500, 150.0))
    expect("length_ratio", src, long, "target", long)


def test_raw_cache_round_trip(tmp_path: Path, pair) -> None:
    item = extract_pair(*pair, config())
    path = tmp_path / "raw" / "u1.npz"
    save_raw(path, {**item, "utt_id": "u1"})
    back = load_raw(path)
    assert set(back) == set(item) | {"utt_id"}
    for key, value in item.items():
        if isinstance(value, np.ndarray):
            assert back[key].dtype == value.dtype
            np.testing.assert_array_equal(back[key], value)
        else:
            assert back[key] == value and type(back[key]) is type(value)
    assert back["utt_id"] == "u1"
    assert [p.name for p in path.parent.iterdir()] == ["u1.npz"]  # no temporary left over
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="delete it to recompute"):
        load_raw(path)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_load_audio_formats(tmp_path: Path, subtype: str) -> None:
    x = (0.25 * np.sin(2 * np.pi * 300 * np.arange(800) / 8000)).astype(np.float32)
    y = load_audio(wav(tmp_path / "a.wav", x, 8000, subtype), 8000)
    assert y.dtype == np.float32 and y.shape == (800,)
    np.testing.assert_allclose(y, x, atol=1 / 32768)


def test_load_audio_downmix_resample_and_clip(tmp_path: Path) -> None:
    stereo = np.stack([np.full(4000, 0.5), np.full(4000, -0.1)], axis=1)
    y = load_audio(wav(tmp_path / "s.wav", stereo, 8000), 8000)
    np.testing.assert_allclose(y, 0.2, atol=1e-4)
    tone = np.sin(2 * np.pi * 1000 * np.arange(22050) / 22050).astype(np.float32) * 0.5
    y = load_audio(wav(tmp_path / "r.wav", tone, 22050, "FLOAT"), 16000)
    assert abs(len(y) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(len(y) - 2000)))
    assert np.argmax(spectrum) * 16000 / (len(y) - 2000) == pytest.approx(1000, abs=2)
    loud = load_audio(wav(tmp_path / "l.wav", np.array([1.5, -2.0, 0.3]), 8000, "FLOAT"), 8000)
    np.testing.assert_allclose(loud, [1.0, -1.0, 0.3], rtol=1e-6)


def test_load_audio_errors(tmp_path: Path) -> None:
    bad = wav(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2]), 8000, "FLOAT")
    with pytest.raises(AudioError, match="NaN") as info:
        load_audio(bad, 8000)
    assert info.value.reason == "unreadable"
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 50)
    with pytest.raises(AudioError) as info:
        load_audio(text, 8000)
    assert info.value.reason == "unreadable" and str(text) in str(info.value)


def cut(path: Path, fraction: float = 0.8) -> Path:
    """Keep the first ``fraction`` of the file's bytes (a copy stopped short)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
@pytest.mark.parametrize("channels", [1, 2])
def test_load_audio_refuses_a_truncated_file(tmp_path: Path, subtype: str, channels: int) -> None:
    x = np.repeat(utterance(150.0)[:, None], channels, axis=1)
    path = cut(wav(tmp_path / "a.wav", x, SR, subtype))
    with pytest.raises(AudioError, match=r"header declares 29600 frames") as info:
        load_audio(path, SR)
    assert info.value.reason == "truncated" and str(path) in str(info.value)


def test_complete_files_with_odd_headers_are_not_truncated(tmp_path: Path) -> None:
    x = utterance(150.0)
    aiff = tmp_path / "a.aiff"
    sf.write(aiff, x, SR, subtype="PCM_16", format="AIFF")
    assert len(load_audio(aiff, SR)) == len(x)
    with pytest.raises(AudioError) as info:
        load_audio(cut(aiff), SR)
    assert info.value.reason == "truncated"
    # a chunk after the audio data is not missing audio
    path = wav(tmp_path / "list.wav", x)
    data = bytearray(path.read_bytes()) + b"LIST\x04\x00\x00\x00INFO"
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert len(load_audio(path, SR)) == len(x)
    # a header written while streaming (sizes unknown) is not a truncation either
    stream = wav(tmp_path / "stream.wav", x)
    data = bytearray(stream.read_bytes())
    at = data.index(b"data")
    data[at + 4 : at + 8] = b"\xff\xff\xff\xff"
    data[4:8] = b"\xff\xff\xff\xff"
    stream.write_bytes(bytes(data))
    assert len(load_audio(stream, SR)) == len(x)


def test_a_truncated_side_drops_the_pair(tmp_path: Path, pair) -> None:
    src, tgt = pair
    short = cut(wav(tmp_path / "cut.wav", utterance(230.0)))
    expect("truncated", src, short, "target", short)
