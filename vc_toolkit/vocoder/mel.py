"""A differentiable log-mel of waveform batches: the spk's analysis in torch.

:class:`LogMel` computes exactly what
:func:`vc_toolkit.features.spectral.log_mel_energy` computes with numpy (same periodic
Hann window centred in ``n_fft``, centred frames with reflect padding of ``n_fft // 2``
left and ``n_fft - n_fft // 2`` right, magnitude STFT, Slaney mel basis, floor
``max(clip, float32 tiny)``, log base e or 10), for a batch ``(B, N)`` at once and with
gradients, as the HiFi-GAN mel loss needs [Kong et al., NeurIPS 2020, Sec. 2.3].

For the mel loss, compute both sides with it, on the real segment and on the generated
one (``T = 1 + N // hop`` frames each), rather than comparing with the cached mel: the
segment's edge frames see different padding than in the whole utterance.

Example:
    >>> import torch
    >>> from vc_toolkit.config.spk import Mel
    >>> log_mel = LogMel(Mel(n_fft=64, win_length=64, hop_length=16, n_mels=8, fmax=None), 8000)
    >>> tuple(log_mel(torch.zeros(2, 160)).shape)
    (2, 11, 8)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vc_toolkit.config.spk import Mel
from vc_toolkit.features import spectral


class LogMel(nn.Module):
    """Log-mel spectrogram of waveform batches, equal to the numpy features.

    Args:
        mel_cfg: The spk's ``feats.mel``.
        sample_rate: The spk's sample rate, Hz.

    The window and mel basis are non-persistent buffers (they follow ``.to(device)`` and
    stay out of state dicts).
    """

    window: Tensor
    basis: Tensor

    def __init__(self, mel_cfg: Mel, sample_rate: int) -> None:
        super().__init__()
        self.n_fft = mel_cfg.n_fft
        self.hop_length = mel_cfg.hop_length
        self.n_mels = mel_cfg.n_mels
        self.floor = max(float(mel_cfg.clip), float(np.finfo(np.float32).tiny))
        self.log_scale = 1 / math.log(10) if mel_cfg.log_base == "10" else 1.0
        # the very arrays the numpy analysis uses, so both agree to float32 rounding
        window = spectral._window(mel_cfg.n_fft, mel_cfg.win_length)
        basis = spectral.mel_basis(sample_rate, mel_cfg)
        self.register_buffer("window", torch.tensor(window), persistent=False)
        self.register_buffer("basis", torch.tensor(basis), persistent=False)

    def num_frames(self, n_samples: int) -> int:
        """Frames of ``n_samples`` samples: ``1 + n_samples // hop_length``."""
        return spectral.num_frames(n_samples, self.hop_length)

    def magnitude(self, wav: Tensor) -> Tensor:
        """wav (Tensor): (B, N) or (B, 1, N) → magnitude STFT, (B, T, n_fft // 2 + 1)."""
        if wav.dim() == 3 and wav.shape[1] == 1:
            wav = wav[:, 0]
        if wav.dim() != 2:
            raise ValueError(f"LogMel input must be (B, N) or (B, 1, N), got {tuple(wav.shape)}")
        n = wav.shape[-1]
        left, right = self.n_fft // 2, self.n_fft - self.n_fft // 2
        mode = "reflect" if n > right else "constant"
        padded = F.pad(wav[:, None], (left, right), mode=mode)[:, 0]
        frames = padded.unfold(-1, self.n_fft, self.hop_length)[:, : self.num_frames(n)]
        return torch.fft.rfft(frames * self.window, dim=-1).abs()

    def forward(self, wav: Tensor) -> Tensor:
        """wav (Tensor): (B, N) or (B, 1, N) in [-1, 1] → log-mel (B, 1 + N // hop, n_mels)."""
        mel = self.magnitude(wav) @ self.basis.T
        return torch.log(torch.clamp(mel, min=self.floor)) * self.log_scale
