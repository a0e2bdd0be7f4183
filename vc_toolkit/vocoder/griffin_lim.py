"""Griffin-Lim vocoder: mel pseudo-inverse and fast Griffin-Lim phase recovery.

Needs no training. The mel magnitude is un-logged and mapped back to a linear
magnitude with the pseudo-inverse of the mel basis (negative values clipped to
0), raised to ``gl_power`` (> 1 sharpens harmonics), then its phase is
recovered with the fast Griffin-Lim algorithm [Perraudin, Balazs & Søndergaard,
"A fast Griffin-Lim algorithm", WASPAA 2013], i.e. the alternating projections
of [Griffin & Lim, "Signal estimation from modified short-time Fourier
transform", IEEE TASSP 1984] with an inertial step. Deterministic: the initial
phase comes from a fixed seed. Runs batched with ``torch.stft``/``torch.istft``
on any device.

Example:
    >>> from vc_toolkit.config.spk import Mel
    >>> gl = GriffinLim(16000, Mel(n_fft=256, win_length=256, hop_length=64, n_mels=20),
    ...                 n_iter=2)
    >>> wav = gl(np.full((10, 20), -3.0))
    >>> wav.shape, wav.dtype
    ((640,), dtype('float32'))
"""

from __future__ import annotations

import math

import librosa
import numpy as np
import torch
from torch import Tensor

from vc_toolkit.config.spk import Mel, SpkConfig
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.vocoder.base import VOCODERS, Vocoder, pad_stack


@VOCODERS.register("griffin_lim")
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

    @classmethod
    def from_config(
        cls, cfg: VocoderConfig, spk: SpkConfig, device: str | torch.device = "cpu"
    ) -> GriffinLim:
        """``infer.vocoder`` with ``gl_iters`` and ``gl_power``."""
        return cls(spk.sample_rate, spk.feats.mel, cfg.gl_iters, cfg.gl_power, device=device)

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

    def _synthesize(
        self, mels: list[np.ndarray], f0s: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        lens = [len(m) for m in mels]
        floor = min(float(m.min()) for m in mels)
        x = torch.as_tensor(pad_stack(mels, floor), device=self.device)
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
