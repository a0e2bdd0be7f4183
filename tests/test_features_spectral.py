"""Log-mel / energy: frame counts, a sinusoid's bin, magnitudes from first principles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from vc_toolkit.config import build
from vc_toolkit.config.spk import Mel, Pitch, SpkConfig
from vc_toolkit.features import spectral
from vc_toolkit.features.extract import extract_pair
from vc_toolkit.features.pitch import extract_lf0

SR = 16000
MEL = Mel(n_fft=512, win_length=512, hop_length=160, n_mels=40, fmin=0.0, fmax=8000.0)


def sine(freq: float, n: int, amp: float = 0.5, sr: int = SR) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def slaney_mel(f: float) -> float:
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    if f < 1000:
        return f / (200 / 3)
    return 15 + math.log(f / 1000) / (math.log(6.4) / 27)


def slaney_hz(m: float) -> float:
    return m * 200 / 3 if m < 15 else 1000 * math.exp((m - 15) * math.log(6.4) / 27)


def mel_centres(cfg: Mel) -> list[float]:
    lo, hi = slaney_mel(cfg.fmin), slaney_mel(cfg.fmax)
    points = [lo + (hi - lo) * i / (cfg.n_mels + 1) for i in range(cfg.n_mels + 2)]
    return [slaney_hz(m) for m in points[1:-1]]


@pytest.mark.parametrize("n", [1, 159, 160, 1000, 4801, 16000])
@pytest.mark.parametrize("hop", [160, 256])
def test_frame_counts_agree(n: int, hop: int) -> None:
    cfg = Mel(n_fft=512, win_length=400, hop_length=hop, n_mels=20, fmax=8000.0)
    x = sine(200.0, n)
    mel, energy = spectral.log_mel_energy(x, SR, cfg)
    assert mel.shape == (1 + n // hop, 20)
    assert energy.shape == (1 + n // hop,)
    assert spectral.stft_magnitude(x, cfg).shape == (1 + n // hop, 257)
    if n >= 1000:
        lf0, vuv = extract_lf0(x, SR, hop, Pitch(), 1 + n // hop)
        assert lf0.shape == vuv.shape == (1 + n // hop,)


@pytest.mark.parametrize("r", [1, 2, 3])
@pytest.mark.parametrize("seconds", [0.73, 1.0])
def test_streams_share_a_multiple_of_r_frames(tmp_path, r: int, seconds: float) -> None:
    n = int(SR * seconds)
    t = np.arange(n) / SR
    x = sum(0.2 / k * np.sin(2 * np.pi * 140 * k * t) for k in range(1, 5))
    sf.write(tmp_path / "a.wav", x, SR, subtype="PCM_16")
    sf.write(tmp_path / "b.wav", np.concatenate([x, x[: n // 3]]), SR, subtype="PCM_16")
    cfg = build(
        SpkConfig,
        {
            "corpus": {"name": "demo"},
            "sample_rate": SR,
            "reduction_factor": r,
            "trim": {"enabled": False, "zero_internal_silence": False},
            "feats": {"mel": {"n_fft": 512, "win_length": 512, "hop_length": 160, "n_mels": 20}},
        },
    )
    item = extract_pair(tmp_path / "a.wav", tmp_path / "b.wav", cfg)
    for side, samples in (("src", n), ("tgt", n + n // 3)):
        t_frames = (1 + samples // 160) // r * r
        assert item[f"{side}_mel"].shape == (t_frames, 20)
        for stream in ("lf0", "vuv", "energy"):
            assert item[f"{side}_{stream}"].shape == (t_frames,)
    assert len(item["duration"]) == len(item["src_mel"]) // r
    assert item["duration"].sum() == len(item["tgt_mel"]) // r


@pytest.mark.parametrize("bin_index", [5, 17, 33])
def test_sinusoid_peaks_at_its_mel_bin(bin_index: int) -> None:
    freq = mel_centres(MEL)[bin_index]
    mel, _ = spectral.log_mel_energy(sine(freq, SR), SR, MEL)
    assert int(np.argmax(mel[10:-10].mean(axis=0))) == bin_index


def test_magnitude_and_energy_of_a_bin_centred_sinusoid() -> None:
    n_fft, amp = 512, 0.5
    k = 40  # exactly on FFT bin 40
    x = sine(k * SR / n_fft, SR, amp)
    mag = spectral.stft_magnitude(x, MEL)[10:-10]
    assert np.all(np.argmax(mag, axis=1) == k)
    # periodic Hann sums to n_fft / 2, so a bin-centred sine gives amp * n_fft / 4
    np.testing.assert_allclose(mag[:, k], amp * n_fft / 4, rtol=1e-3)
    # Parseval over the half spectrum: ||X||^2 = n_fft * sum((x w)^2) / 2 = 3 n_fft^2 amp^2 / 32
    _, energy = spectral.log_mel_energy(x, SR, MEL)
    expected = 0.5 * math.log(3 * n_fft**2 * amp**2 / 32)
    np.testing.assert_allclose(energy[10:-10], expected, atol=2e-3)


def test_log_base_and_clip_floor() -> None:
    x = sine(440.0, 4000)
    e_cfg = Mel(n_fft=512, win_length=512, hop_length=160, n_mels=20, log_base="e")
    ten_cfg = Mel(n_fft=512, win_length=512, hop_length=160, n_mels=20, log_base="10")
    mel_e, energy_e = spectral.log_mel_energy(x, SR, e_cfg)
    mel_10, energy_10 = spectral.log_mel_energy(x, SR, ten_cfg)
    np.testing.assert_allclose(mel_10, mel_e / math.log(10), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(energy_10, energy_e / math.log(10), rtol=1e-5, atol=1e-5)
    silent, energy = spectral.log_mel_energy(np.zeros(1000, np.float32), SR, ten_cfg)
    np.testing.assert_allclose(silent, -5.0, rtol=1e-6)  # log10(clip = 1e-5)
    np.testing.assert_allclose(energy, -5.0, rtol=1e-6)
    np.testing.assert_allclose(spectral.from_log(mel_10, ten_cfg), 10.0**mel_10, rtol=1e-6)


def test_mel_basis_defaults_to_nyquist_and_is_cached() -> None:
    cfg = Mel(n_fft=512, win_length=512, hop_length=160, n_mels=20, fmax=None)
    basis = spectral.mel_basis(SR, cfg)
    assert basis.shape == (20, 257)
    assert basis is spectral.mel_basis(SR, cfg)
    assert not basis.flags.writeable
    # the top filter reaches the last bins only when fmax is the Nyquist frequency
    assert basis[-1, 250] > 0
    assert spectral.mel_basis(SR, Mel(n_fft=512, n_mels=20, fmax=4000.0))[-1, 250] == 0
