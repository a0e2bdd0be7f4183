"""Vocoders: log-mel frames → waveform, behind one small interface.

Every vocoder takes a log-mel spectrogram of the spk's analysis (magnitude
STFT, hann window of ``win_length``, ``n_fft``, ``hop_length``, centred
frames with reflect padding, Slaney mel basis from ``fmin`` to ``fmax``,
``log(max(mel, clip))`` in base e or 10) as a ``(T, n_mels)`` array and
returns ``T * hop_length`` float32 samples.

* :class:`GriffinLim`: needs no training. The mel magnitude is un-logged and
  mapped back to a linear magnitude with the pseudo-inverse of the mel basis
  (negative values clipped to 0), raised to ``gl_power`` (> 1 sharpens
  harmonics), then its phase is recovered with the fast Griffin-Lim algorithm
  [Perraudin, Balazs & Søndergaard, "A fast Griffin-Lim algorithm", WASPAA
  2013], i.e. the alternating projections of [Griffin & Lim, "Signal
  estimation from modified short-time Fourier transform", IEEE TASSP 1984]
  with an inertial step. Deterministic: the initial phase comes from a fixed
  seed. Runs batched with ``torch.stft``/``torch.istft`` on any device.
* :class:`HiFiGAN`: a pretrained HiFi-GAN generator (see
  :mod:`vc_toolkit.infer.hifigan` for the checkpoint formats). Its sample
  rate, hop and mel bins must equal the spk's; a log-base difference is
  converted.

Example:
    >>> from vc_toolkit.config.spk import Mel
    >>> gl = GriffinLim(16000, Mel(n_fft=256, win_length=256, hop_length=64, n_mels=20),
    ...                 n_iter=2)
    >>> wav = gl(np.full((10, 20), -3.0))
    >>> wav.shape, wav.dtype
    ((640,), dtype('float32'))
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import librosa
import numpy as np
import torch
from torch import Tensor

from vc_toolkit.config.spk import Mel, SpkConfig
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.errors import UserError
from vc_toolkit.infer.hifigan import load_hifigan

log = logging.getLogger(__name__)


class Vocoder(ABC):
    """Log-mel → waveform.

    Attributes:
        sample_rate (int): Output sample rate, Hz.
        hop_length (int): Output samples per input frame.
        n_mels (int): Mel bins of the input.
    """

    sample_rate: int
    hop_length: int
    n_mels: int

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """log_mel (ndarray): (T, n_mels) → waveform, (T * hop_length,) float32."""
        return self.batch([log_mel])[0]

    def batch(self, log_mels: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Synthesise several utterances at once; each (T_i, n_mels) → (T_i * hop_length,).

        Shorter utterances are padded to the longest, so a waveform can differ slightly
        from a single call: HiFi-GAN near its end (receptive field), Griffin-Lim throughout
        (the iterations spread the changed boundary). Each result is still deterministic.
        """
        mels = [self._check(m) for m in log_mels]
        if not mels:
            return []
        return [np.ascontiguousarray(w, dtype=np.float32) for w in self._synthesize(mels)]

    def _check(self, log_mel: np.ndarray) -> np.ndarray:
        x = np.asarray(log_mel, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_mels or x.shape[0] == 0:
            raise ValueError(
                f"vocoder input must be a log-mel of shape (T, {self.n_mels}) with T >= 1, "
                f"got {x.shape}"
                + (" (transposed?)" if x.ndim == 2 and x.shape[0] == self.n_mels else "")
            )
        if not np.isfinite(x).all():
            raise ValueError("vocoder input has NaN or inf values; check the model output")
        return x

    @abstractmethod
    def _synthesize(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """Checked (T_i, n_mels) float32 log-mels → (T_i * hop_length,) waveforms."""


def _pad_stack(mels: list[np.ndarray], value: float) -> np.ndarray:
    """(T_i, D) arrays → (B, max T, D), padded with ``value``."""
    t_max = max(len(m) for m in mels)
    out = np.full((len(mels), t_max, mels[0].shape[1]), value, dtype=np.float32)
    for i, m in enumerate(mels):
        out[i, : len(m)] = m
    return out


class GriffinLim(Vocoder):
    """Mel pseudo-inverse + fast Griffin-Lim phase recovery.

    Args:
        sample_rate: Sample rate of the analysis, Hz.
        mel: Mel analysis settings of the spk.
        n_iter: Griffin-Lim iterations.
        power: Exponent applied to the linear magnitude before phase recovery.
        momentum: Inertia ``alpha`` of the fast Griffin-Lim step (0: plain Griffin-Lim).
        seed: Seed of the initial random phase.
        device: Where the STFTs run.
    """

    def __init__(
        self,
        sample_rate: int,
        mel: Mel,
        n_iter: int = 32,
        power: float = 1.2,
        momentum: float = 0.99,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.sample_rate = sample_rate
        self.hop_length = mel.hop_length
        self.n_mels = mel.n_mels
        self.n_fft = mel.n_fft
        self.win_length = mel.win_length
        self.log_base = mel.log_base
        self.n_iter = n_iter
        self.power = power
        self.momentum = momentum
        self.seed = seed
        self.device = torch.device(device)
        basis = librosa.filters.mel(
            sr=sample_rate,
            n_fft=mel.n_fft,
            n_mels=mel.n_mels,
            fmin=mel.fmin,
            fmax=mel.fmax,
            htk=False,
            norm="slaney",
        )
        self.inverse = torch.as_tensor(np.linalg.pinv(basis), dtype=torch.float32).to(self.device)
        self.window = torch.hann_window(mel.win_length, device=self.device)

    def magnitude(self, log_mel: Tensor) -> Tensor:
        """log_mel (Tensor): (B, T, n_mels) → linear magnitude ** power, (B, n_fft // 2 + 1, T)."""
        mel = torch.exp(log_mel) if self.log_base == "e" else torch.pow(10.0, log_mel)
        linear = torch.clamp(mel @ self.inverse.T, min=0.0)
        return linear.transpose(1, 2) ** self.power

    def _stft(self, x: Tensor) -> Tensor:
        return torch.stft(
            x,
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )

    def _istft(self, spec: Tensor, length: int) -> Tensor:
        return torch.istft(
            spec, self.n_fft, self.hop_length, self.win_length, self.window, True, length=length
        )

    def phase_recovery(self, mag: Tensor, phase: Tensor, length: int) -> Tensor:
        """Fast Griffin-Lim: magnitude (B, F, T + 1) → waveform (B, length), length = T * hop.

        ``c_n = P(mag · t_{n-1} / |t_{n-1}|)`` with ``P`` = STFT(iSTFT(·)), then
        ``t_n = c_n + alpha (c_n - c_{n-1})``, from ``t_0 = exp(i · phase)``.

        Args:
            mag (Tensor): Target magnitude, (B, F, T + 1).
            phase (Tensor): Initial phase, radians, (B, F, T + 1).
            length (int): Output samples.
        """
        t = torch.polar(torch.ones_like(mag), phase)
        prev = None
        for _ in range(self.n_iter):
            c = self._stft(self._istft(mag * t / (t.abs() + 1e-8), length))
            t = c if prev is None else c + self.momentum * (c - prev)
            prev = c
        return self._istft(mag * t / (t.abs() + 1e-8), length)

    def _initial_phase(self, mag: Tensor, lens: list[int]) -> Tensor:
        """Seeded uniform phase, drawn per utterance so it does not depend on the batch."""
        phase = torch.zeros(mag.shape)
        for i, n in enumerate(lens):
            gen = torch.Generator().manual_seed(self.seed)
            phase[i, :, : n + 1] = torch.rand((mag.shape[1], n + 1), generator=gen) * (2 * math.pi)
        return phase.to(mag.device)

    def _synthesize(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        lens = [len(m) for m in mels]
        floor = min(float(m.min()) for m in mels)
        x = torch.as_tensor(_pad_stack(mels, floor), device=self.device)
        with torch.inference_mode():
            mag = self.magnitude(x)
            for i, n in enumerate(lens):
                mag[i, :, n:] = 0.0
            # one more frame (a copy of the last) so that T + 1 centred frames span T * hop samples
            mag = torch.cat([mag, torch.zeros_like(mag[:, :, :1])], dim=2)
            for i, n in enumerate(lens):
                mag[i, :, n] = mag[i, :, n - 1]
            wav = self.phase_recovery(
                mag, self._initial_phase(mag, lens), max(lens) * self.hop_length
            )
        return [w[: n * self.hop_length].cpu().numpy() for w, n in zip(wav, lens)]


class HiFiGAN(Vocoder):
    """A pretrained HiFi-GAN generator.

    Args:
        checkpoint: Generator checkpoint (original ``g_XXXXXXXX`` or ParallelWaveGAN ``.pkl``).
        config: Its config (``config.json`` / ``config.yml``); None: next to the checkpoint.
        sample_rate: Sample rate of the spk, Hz (must equal the checkpoint's).
        mel: Mel analysis of the spk (hop and bins must equal the checkpoint's).
        device: Where the generator runs.
    """

    def __init__(
        self,
        checkpoint: str,
        config: str | None,
        sample_rate: int,
        mel: Mel,
        device: str | torch.device = "cpu",
    ) -> None:
        loaded = load_hifigan(checkpoint, config, device)
        for name, ours, theirs in (
            ("sample rate", sample_rate, loaded.sampling_rate),
            ("hop length", mel.hop_length, loaded.hop_size),
            ("mel bins", mel.n_mels, loaded.num_mels),
        ):
            if ours != theirs:
                raise UserError(
                    f"HiFi-GAN checkpoint {checkpoint} has {name} {theirs} but the spk features "
                    f"have {ours}; use a vocoder trained on the same analysis or griffin_lim"
                )
        ours = {
            "n_fft": mel.n_fft,
            "win_length": mel.win_length,
            "fmin": mel.fmin,
            "fmax": mel.fmax,
        }
        for key, value in ours.items():
            other = loaded.analysis.get(key)
            if other is not None and value is not None and float(other) != float(value):
                log.warning("HiFi-GAN was trained with %s=%s, the spk uses %s", key, other, value)
        self.sample_rate = sample_rate
        self.hop_length = mel.hop_length
        self.n_mels = mel.n_mels
        self.loaded = loaded
        spk_base = math.e if mel.log_base == "e" else 10.0
        self.log_scale = math.log(spk_base) / math.log(loaded.log_base)
        self.device = torch.device(device)

    def _synthesize(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        lens = [len(m) for m in mels]
        floor = min(float(m.min()) for m in mels)
        x = torch.as_tensor(_pad_stack(mels, floor), device=self.device) * self.log_scale
        if self.loaded.mean is not None:
            x = (x - self.loaded.mean) / self.loaded.scale
        with torch.inference_mode():
            wav = self.loaded.generator(x.transpose(1, 2))[:, 0]
        return [w[: n * self.hop_length].cpu().numpy() for w, n in zip(wav, lens)]


def build_vocoder(
    cfg: VocoderConfig, spk: SpkConfig, device: str | torch.device = "cpu"
) -> Vocoder:
    """The vocoder ``infer.vocoder`` asks for, matched to the spk's features.

    Args:
        cfg: ``infer.vocoder`` of the tag config.
        spk: The dataset version whose log-mels are vocoded.
        device: Where it runs.
    """
    if cfg.type == "griffin_lim":
        return GriffinLim(spk.sample_rate, spk.feats.mel, cfg.gl_iters, cfg.gl_power, device=device)
    if cfg.type == "hifigan":
        if not cfg.checkpoint:
            raise UserError("infer.vocoder.type hifigan needs infer.vocoder.checkpoint")
        return HiFiGAN(cfg.checkpoint, cfg.config, spk.sample_rate, spk.feats.mel, device)
    raise UserError(f"unknown infer.vocoder.type {cfg.type!r}")
