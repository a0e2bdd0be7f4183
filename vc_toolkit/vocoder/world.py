"""WORLD vocoder: speech from the log-mel and a given F0, no training.

The WORLD synthesiser [Morise, Yokomori & Ozawa, "WORLD: a vocoder-based
high-quality speech synthesis system for real-time applications", IEICE Trans.
Inf. & Syst. E99-D(7), 2016] (``pyworld.synthesize``) makes speech from three
streams on one frame grid: F0, a power spectral envelope and an aperiodicity.
Here they come from:

1. **F0**: given by the caller, (T,) Hz, 0 on unvoiced frames, so the F0 one hears
   is exactly the F0 given (a variance model's prediction, or a recording's own).
   WORLD frame ``t`` sits at sample ``t * hop_length`` like STFT frame ``t``
   (frame period ``1000 * hop_length / sample_rate`` ms).
2. **Spectral envelope** from the log-mel. The mel magnitude ``m = B |X|`` (``B``
   the spk's Slaney filterbank, (n_mels, F), ``F = n_fft // 2 + 1``) is inverted
   to a linear magnitude ``s >= 0`` by non-negative least squares,
   ``min ||B s - m||^2``, with the multiplicative updates of [Lee & Seung,
   "Algorithms for non-negative matrix factorization", NIPS 2001] for a fixed
   basis, ``s <- s * (B^T m) / (B^T B s)``, started from the pseudo-inverse
   solution clipped to be positive (:data:`NNLS_ITERS` updates). The power ``s^2``
   is then averaged along frequency over one harmonic spacing: a rectangular
   window F0 wide on voiced frames (:data:`UNVOICED_SMOOTH_HZ` on unvoiced ones).
   This removes the harmonic ripple that the narrow low mel bands keep and
   preserves the power of each band, the F0-adaptive smoothing idea of CheapTrick
   [Morise, "CheapTrick, a spectral envelope estimator for high-quality speech
   synthesis", Speech Communication 67, 2015]. WORLD's envelope is a power
   spectral density whose mean over frequency is the variance of the signal it
   synthesises, and a stationary signal of density ``sp`` has an expected STFT
   power ``sp * sum(w^2)`` (``w`` the analysis window), so
   ``sp = smoothed s^2 / sum(w^2)``, floored at :data:`SP_FLOOR`.
3. **Aperiodicity** from the voicing: the maximum voiced frequency of the
   harmonic-plus-noise model [Stylianou, "Applying the harmonic plus noise model
   in concatenative speech synthesis", IEEE Trans. Speech Audio Process. 9(1),
   2001] written as WORLD's band aperiodicity [Morise, "D4C, a band-aperiodicity
   estimator for high-quality speech synthesis", Speech Communication 84, 2016].
   On voiced frames ``ap(f) = 10^(ap_db * (1 - rise(f)) / 20)``, ``rise`` a
   logistic in log-frequency centred on ``max_voiced_hz`` that climbs from 10 %
   to 90 % over about half an octave: harmonics below it, noise above.
   Unvoiced frames are noise at every frequency (``ap = 1``).

WORLD treats an F0 below ``sample_rate / fft_size`` as unvoiced, so its FFT
length is the smallest power of two of at least ``n_fft`` with
``sample_rate / fft_size <= MIN_F0`` (40 Hz); when that differs from ``n_fft``
the envelope is interpolated linearly onto its bins. The output has exactly
``T * hop_length`` samples. Deterministic (WORLD seeds its noise on every call);
runs on the CPU, one utterance at a time.

Example:
    >>> from vc_toolkit.config.spk import Mel
    >>> voc = World(16000, Mel(n_fft=512, win_length=512, hop_length=160, n_mels=20))
    >>> wav = voc(np.full((10, 20), -3.0), f0=np.r_[np.zeros(3), np.full(7, 120.0)])
    >>> wav.shape, wav.dtype
    ((1600,), dtype('float32'))
"""

from __future__ import annotations

import math

import numpy as np
import pyworld
import scipy.signal
import scipy.sparse
import torch

from vc_toolkit.config.spk import Mel, SpkConfig
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.features import spectral
from vc_toolkit.vocoder.base import VOCODERS, Vocoder

NNLS_ITERS = 30
"""Multiplicative NNLS updates of the mel inversion."""
UNVOICED_SMOOTH_HZ = 300.0
"""Width of the frequency smoothing on unvoiced frames, Hz."""
SP_FLOOR = 1e-16
"""Smallest value of the power spectral envelope (WORLD takes its logarithm)."""
MIN_F0 = 40.0
"""Lowest F0 WORLD's FFT length must still synthesise as voiced, Hz."""
AP_RISE_OCTAVES = 0.125
"""Scale of the logistic rise of the voiced aperiodicity, octaves (10-90 %: 0.55 octave)."""
_TINY = 1e-30


def mel_to_linear(
    mel: np.ndarray, basis: np.ndarray, iters: int = NNLS_ITERS, inverse: np.ndarray | None = None
) -> np.ndarray:
    """Non-negative least-squares inversion of a mel filterbank (module docstring, step 2).

    Args:
        mel (ndarray): (T, n_mels) mel magnitudes, >= 0.
        basis (ndarray): (n_mels, F) filterbank ``B`` with ``mel = |X| @ B.T``.
        iters (int): Multiplicative updates after the clipped pseudo-inverse start.
        inverse (ndarray | None): (F, n_mels) pseudo-inverse of ``basis`` if already known.

    Returns:
        ndarray: (T, F) float64 linear magnitudes >= 0; 0 where no filter reaches.

    Example:
        >>> B = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
        >>> s = mel_to_linear(np.array([[2.0, 2.0]]), B, iters=200)
        >>> bool(np.allclose(s @ B.T, [[2.0, 2.0]], atol=1e-6)), bool((s >= 0).all())
        (True, True)
    """
    B = np.asarray(basis, dtype=np.float64)
    m = np.asarray(mel, dtype=np.float64).T  # (n_mels, T): frames as columns from here on
    s = np.maximum((np.linalg.pinv(B) if inverse is None else inverse) @ m, _TINY)
    sparse = scipy.sparse.csr_matrix(B)  # each bin meets at most two triangular filters
    sparse_t = sparse.T.tocsr()
    numerator = sparse_t @ m
    for _ in range(iters):
        s *= numerator / np.maximum(sparse_t @ (sparse @ s), _TINY)
    return s.T


def smooth_along_frequency(power: np.ndarray, width_bins: np.ndarray) -> np.ndarray:
    """Mean of ``power`` over a rectangular window centred on each bin, one width per frame.

    Bin ``k`` covers ``[k - 1/2, k + 1/2)``; the window is cut at the band edges and
    fractional bins count in proportion, so a ripple with a period of ``width_bins``
    bins is removed exactly (away from the edges).

    Args:
        power (ndarray): (T, F) non-negative spectra.
        width_bins (ndarray): (T,) window widths in bins, > 0.

    Returns:
        ndarray: (T, F) float64 smoothed spectra.

    Example:
        >>> p = np.array([[0.0, 2.0, 0.0, 2.0, 0.0, 2.0]])
        >>> smooth_along_frequency(p, np.array([2.0]))[0, 1:5].tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    p = np.asarray(power, dtype=np.float64)
    n_frames, n_bins = p.shape
    cum = np.zeros((n_frames, n_bins + 1))
    np.cumsum(p, axis=1, out=cum[:, 1:])
    half = np.asarray(width_bins, dtype=np.float64)[:, None] / 2
    centre = np.arange(n_bins)[None, :] + 0.5  # bin k spans [k, k + 1) on this axis
    lo = np.clip(centre - half, 0.0, n_bins)
    hi = np.clip(centre + half, 0.0, n_bins)

    def integral(x: np.ndarray) -> np.ndarray:
        i = np.minimum(np.floor(x).astype(np.int64), n_bins - 1)
        left = np.take_along_axis(cum, i, axis=1)
        return left + (x - i) * np.take_along_axis(p, i, axis=1)

    return (integral(hi) - integral(lo)) / np.maximum(hi - lo, _TINY)


def band_aperiodicity(
    f0: np.ndarray, freqs: np.ndarray, ap_db: float, max_voiced_hz: float
) -> np.ndarray:
    """WORLD aperiodicity from the voicing (module docstring, step 3).

    Args:
        f0 (ndarray): (T,) F0 in Hz, 0 on unvoiced frames.
        freqs (ndarray): (F,) bin frequencies, Hz.
        ap_db (float): Aperiodicity of voiced frames well below ``max_voiced_hz``, dB (<= 0).
        max_voiced_hz (float): Where voiced frames are halfway (in dB) from ``ap_db`` to noise.

    Returns:
        ndarray: (T, F) float64 aperiodicity in (0, 1].

    Example:
        >>> ap = band_aperiodicity(np.array([0.0, 100.0]), np.array([100.0, 4000.0, 8000.0]),
        ...                        -40.0, 4000.0)
        >>> ap.round(3).tolist()
        [[1.0, 1.0, 1.0], [0.01, 0.1, 0.998]]
    """
    octaves = np.log2(np.maximum(np.asarray(freqs, dtype=np.float64), 1.0) / max_voiced_hz)
    rise = 0.5 * (1.0 + np.tanh(octaves / (2 * AP_RISE_OCTAVES)))  # logistic, overflow-free
    voiced = 10.0 ** (ap_db * (1.0 - rise) / 20.0)
    return np.where(np.asarray(f0)[:, None] > 0, voiced[None, :], 1.0)


def world_fft_size(sample_rate: int, n_fft: int) -> int:
    """WORLD's FFT length: the smallest power of two >= ``n_fft`` resolving :data:`MIN_F0`.

    Example:
        >>> world_fft_size(22050, 1024), world_fft_size(16000, 256), world_fft_size(8000, 300)
        (1024, 512, 512)
    """
    size = 1 << max(0, math.ceil(math.log2(n_fft)))
    while sample_rate / size > MIN_F0:
        size *= 2
    return size


@VOCODERS.register("world")
class World(Vocoder):
    """WORLD synthesis from the log-mel, a given F0 and a voicing-based aperiodicity.

    Args:
        sample_rate: Sample rate of the analysis, Hz.
        mel: Mel analysis settings of the spk.
        ap_db: Aperiodicity of voiced frames below ``max_voiced_hz``, dB (<= 0).
        max_voiced_hz: Frequency around which voiced frames turn to noise, Hz.
        nnls_iters: Updates of the mel inversion.
    """

    uses_f0 = True

    def __init__(
        self,
        sample_rate: int,
        mel: Mel,
        ap_db: float = -40.0,
        max_voiced_hz: float = 6000.0,
        nnls_iters: int = NNLS_ITERS,
    ) -> None:
        self.sample_rate = sample_rate
        self.hop_length = mel.hop_length
        self.n_mels = mel.n_mels
        self.n_fft = mel.n_fft
        self.log_base = mel.log_base
        self.ap_db = float(ap_db)
        self.max_voiced_hz = float(max_voiced_hz)
        self.nnls_iters = nnls_iters
        self.frame_period = 1000.0 * mel.hop_length / sample_rate
        self.basis = spectral.mel_basis(sample_rate, mel).astype(np.float64)
        self.inverse = np.linalg.pinv(self.basis)
        window = scipy.signal.get_window("hann", mel.win_length, fftbins=True)
        self.window_energy = float(np.sum(np.square(window, dtype=np.float64)))
        self.fft_size = world_fft_size(sample_rate, mel.n_fft)
        self.freqs = np.arange(self.fft_size // 2 + 1) * sample_rate / self.fft_size

    @classmethod
    def from_config(
        cls, cfg: VocoderConfig, spk: SpkConfig, device: str | torch.device = "cpu"
    ) -> World:
        """``infer.vocoder`` with ``world_ap_db`` and ``world_max_voiced_hz`` (CPU only)."""
        return cls(spk.sample_rate, spk.feats.mel, cfg.world_ap_db, cfg.world_max_voiced_hz)

    def envelope(self, log_mel: np.ndarray, f0: np.ndarray) -> np.ndarray:
        """Power spectral envelope for WORLD (module docstring, step 2).

        Args:
            log_mel (ndarray): (T, n_mels) log-mel.
            f0 (ndarray): (T,) F0 in Hz, 0 on unvoiced frames (sets the smoothing width).

        Returns:
            ndarray: (T, fft_size // 2 + 1) float64, >= :data:`SP_FLOOR`.
        """
        log_mel = np.asarray(log_mel, dtype=np.float64)
        mel = np.power(10.0, log_mel) if self.log_base == "10" else np.exp(log_mel)
        power = np.square(mel_to_linear(mel, self.basis, self.nnls_iters, self.inverse))
        bin_hz = self.sample_rate / self.n_fft
        width = np.where(np.asarray(f0) > 0, f0, UNVOICED_SMOOTH_HZ) / bin_hz
        sp = smooth_along_frequency(power, np.maximum(width, 1.0)) / self.window_energy
        if self.fft_size != self.n_fft:
            analysis = np.arange(sp.shape[1]) * bin_hz
            sp = np.stack([np.interp(self.freqs, analysis, frame) for frame in sp])
        return np.maximum(sp, SP_FLOOR)

    def aperiodicity(self, f0: np.ndarray) -> np.ndarray:
        """(T,) F0 → (T, fft_size // 2 + 1) aperiodicity (module docstring, step 3)."""
        return band_aperiodicity(f0, self.freqs, self.ap_db, self.max_voiced_hz)

    def synthesize_one(self, log_mel: np.ndarray, f0: np.ndarray) -> np.ndarray:
        """(T, n_mels) log-mel and (T,) F0 in Hz → (T * hop_length,) float64 waveform."""
        f0 = np.ascontiguousarray(f0, dtype=np.float64)
        sp = np.ascontiguousarray(self.envelope(log_mel, f0))
        ap = np.ascontiguousarray(self.aperiodicity(f0))
        y = pyworld.synthesize(f0, sp, ap, self.sample_rate, self.frame_period)
        n = len(f0) * self.hop_length
        return np.pad(y[:n], (0, max(0, n - len(y))))

    def _synthesize(
        self, mels: list[np.ndarray], f0s: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        assert f0s is not None  # checked by Vocoder.batch
        return [self.synthesize_one(m, f) for m, f in zip(mels, f0s, strict=True)]
