"""Log-mel spectrogram and log energy from one magnitude STFT.

Analysis: periodic Hann window of ``win_length`` centred in ``n_fft``, hop
``hop_length``, the signal reflect-padded by ``n_fft // 2`` on the left and
``n_fft - n_fft // 2`` on the right (``center=True``), so ``T = 1 + n // hop``
frames, frame ``t`` centred on sample ``t * hop``. The mel filterbank is
librosa's Slaney-normalised one (``htk=False, norm="slaney"``).

* log-mel: ``log(max(mel_basis @ |STFT|, clip))`` in base e or 10
  (``feats.mel.log_base``), as in Tacotron 2 / HiFi-GAN front ends.
* energy: ``log(max(||STFT frame||_2, clip))`` (same base), the L2 norm of each magnitude
  frame, as the energy target of FastSpeech 2 [Ren et al., "FastSpeech 2: Fast
  and High-Quality End-to-End Text to Speech", ICLR 2021].

A ``clip`` of 0 floors at the smallest positive float32, so zeroed silence stays finite.

Example:
    >>> from vc_toolkit.config.spk import Mel
    >>> cfg = Mel(n_fft=256, win_length=256, hop_length=64, n_mels=20, fmax=None)
    >>> mel, energy = log_mel_energy(np.zeros(1000, "f4"), 8000, cfg)
    >>> mel.shape, energy.shape, num_frames(1000, 64)
    ((16, 20), (16,), 16)
    >>> bool(np.allclose(mel, np.log(1e-5)))
    True
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np
import scipy.fft
import scipy.signal

from vc_toolkit.config.spk import Mel


def num_frames(n_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT: ``1 + n_samples // hop_length``."""
    return 1 + n_samples // hop_length


@lru_cache(maxsize=16)
def _window(n_fft: int, win_length: int) -> np.ndarray:
    win = np.zeros(n_fft, dtype=np.float32)
    left = (n_fft - win_length) // 2
    win[left : left + win_length] = scipy.signal.get_window("hann", win_length, fftbins=True)
    win.setflags(write=False)
    return win


@lru_cache(maxsize=16)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    basis = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney"
    ).astype(np.float32)
    basis.setflags(write=False)
    return basis


def mel_basis(sr: int, mel_cfg: Mel) -> np.ndarray:
    """Cached, read-only mel filterbank, (n_mels, n_fft // 2 + 1) float32."""
    fmax = sr / 2 if mel_cfg.fmax is None else float(mel_cfg.fmax)
    return _mel_basis(sr, mel_cfg.n_fft, mel_cfg.n_mels, float(mel_cfg.fmin), fmax)


def stft_magnitude(x: np.ndarray, mel_cfg: Mel) -> np.ndarray:
    """Magnitude STFT of the analysis described in the module docstring.

    Args:
        x: Signal, (n,).
        mel_cfg: ``feats.mel`` (uses ``n_fft``, ``win_length``, ``hop_length``).

    Returns:
        (1 + n // hop_length, n_fft // 2 + 1) float32.
    """
    n_fft, hop = mel_cfg.n_fft, mel_cfg.hop_length
    x = np.asarray(x, dtype=np.float32)
    pad = (n_fft // 2, n_fft - n_fft // 2)
    mode = "reflect" if len(x) > max(pad) else "constant"
    padded = np.pad(x, pad, mode=mode)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    frames = frames[: num_frames(len(x), hop)]
    spec = scipy.fft.rfft(frames * _window(n_fft, mel_cfg.win_length), axis=-1)
    return np.abs(spec).astype(np.float32, copy=False)


def _floor(mel_cfg: Mel) -> float:
    return max(float(mel_cfg.clip), float(np.finfo(np.float32).tiny))


def to_log(x: np.ndarray, mel_cfg: Mel) -> np.ndarray:
    """``log(max(x, clip))`` in the base ``feats.mel.log_base``."""
    floored = np.maximum(x, _floor(mel_cfg))
    return np.log10(floored) if mel_cfg.log_base == "10" else np.log(floored)


def from_log(y: np.ndarray, mel_cfg: Mel) -> np.ndarray:
    """Inverse of :func:`to_log` above the floor: ``e**y`` or ``10**y``."""
    return np.power(10.0, y) if mel_cfg.log_base == "10" else np.exp(y)


def log_mel_energy(x: np.ndarray, sr: int, mel_cfg: Mel) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel spectrogram and log energy of one signal, from a single STFT.

    Args:
        x: Signal in [-1, 1], (n,).
        sr: Sample rate, Hz.
        mel_cfg: ``feats.mel``.

    Returns:
        ``(mel, energy)``: (T, n_mels) and (T,) float32, ``T = 1 + n // hop_length``.
    """
    mag = stft_magnitude(x, mel_cfg)
    mel = to_log(mag @ mel_basis(sr, mel_cfg).T, mel_cfg)
    energy = to_log(np.sqrt(np.einsum("tf,tf->t", mag, mag)), mel_cfg)
    return mel.astype(np.float32, copy=False), energy.astype(np.float32, copy=False)
