"""HiFi-GAN generator [Kong et al., "HiFi-GAN: Generative adversarial networks for
efficient and high fidelity speech synthesis", NeurIPS 2020].

A conv layer, then per upsampling stage a leaky ReLU (slope 0.1), a transposed
conv (stride ``u``, kernel ``k``, padding ``(k - u) // 2``) and the average of
``len(resblock_kernel_sizes)`` multi-receptive-field residual blocks, then a
leaky ReLU (slope 0.01), a conv to one channel and ``tanh``. Output samples
per input frame: ``prod(upsample_rates)``.

Example:
    >>> cfg = GeneratorConfig(num_mels=4, upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4),
    ...                       upsample_initial_channel=8, resblock="2",
    ...                       resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),))
    >>> Generator(cfg)(torch.zeros(1, 4, 5)).shape
    torch.Size([1, 1, 20])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vc_toolkit.errors import UserError

LRELU_SLOPE = 0.1


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a HiFi-GAN generator (names as in the original ``config.json``)."""

    num_mels: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    kernel_size: int = 7
    bias: bool = True
    slope: float = LRELU_SLOPE

    def __post_init__(self) -> None:
        if self.resblock not in ("1", "2"):
            raise UserError(f"HiFi-GAN resblock must be '1' or '2', got {self.resblock!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise UserError(
                f"HiFi-GAN upsample_rates {list(self.upsample_rates)} and upsample_kernel_sizes "
                f"{list(self.upsample_kernel_sizes)} differ in length"
            )
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            if (k - u) % 2:
                raise UserError(
                    f"HiFi-GAN upsample kernel {k} with rate {u}: k - u must be even "
                    "(otherwise the output is not frames * hop samples long)"
                )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise UserError("HiFi-GAN resblock_kernel_sizes and resblock_dilation_sizes differ")

    @property
    def hop_length(self) -> int:
        """Output samples per input frame."""
        return math.prod(self.upsample_rates)


class ResBlock(nn.Module):
    """Residual block of dilated convs (type "1": each followed by a plain conv).

    Args:
        channels: Channels in and out.
        kernel_size: Conv kernel (odd).
        dilations: One dilation per residual unit.
        two_convs: Type "1" block (``convs1`` + ``convs2``) or type "2" (``convs``).
        bias: Convs have a bias.
        slope: Leaky ReLU slope.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilations: tuple[int, ...],
        two_convs: bool,
        bias: bool = True,
        slope: float = LRELU_SLOPE,
    ) -> None:
        super().__init__()
        self.slope = slope
        self.two_convs = two_convs

        def conv(d: int) -> nn.Conv1d:
            pad = (kernel_size - 1) * d // 2
            return nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=pad, bias=bias)

        if two_convs:
            self.convs1 = nn.ModuleList(conv(d) for d in dilations)
            self.convs2 = nn.ModuleList(conv(1) for _ in dilations)
        else:
            self.convs = nn.ModuleList(conv(d) for d in dilations)

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor): (B, C, L) → (B, C, L)."""
        if self.two_convs:
            for c1, c2 in zip(self.convs1, self.convs2):
                h = c1(F.leaky_relu(x, self.slope))
                x = x + c2(F.leaky_relu(h, self.slope))
        else:
            for c in self.convs:
                x = x + c(F.leaky_relu(x, self.slope))
        return x


class Generator(nn.Module):
    """HiFi-GAN generator: log-mel (B, num_mels, T) → waveform (B, 1, T * hop)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.upsample_initial_channel
        k = cfg.kernel_size
        self.conv_pre = nn.Conv1d(cfg.num_mels, ch, k, padding=(k - 1) // 2, bias=cfg.bias)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, ku) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(
                nn.ConvTranspose1d(c_in, c_out, ku, u, padding=(ku - u) // 2, bias=cfg.bias)
            )
            for kr, dil in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(
                    ResBlock(c_out, kr, tuple(dil), cfg.resblock == "1", cfg.bias, cfg.slope)
                )
        c_last = ch // 2 ** len(cfg.upsample_rates)
        self.conv_post = nn.Conv1d(c_last, 1, k, padding=(k - 1) // 2, bias=cfg.bias)

    def forward(self, mel: Tensor) -> Tensor:
        """mel (Tensor): (B, num_mels, T) → waveform in [-1, 1], (B, 1, T * hop)."""
        x = self.conv_pre(mel)
        n = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, self.cfg.slope))
            blocks = self.resblocks[i * n : (i + 1) * n]
            x = sum(block(x) for block in blocks) / n
        x = self.conv_post(F.leaky_relu(x))  # slope 0.01, as in the original
        return torch.tanh(x)
