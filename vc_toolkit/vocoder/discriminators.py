"""HiFi-GAN discriminators [Kong et al., "HiFi-GAN: Generative adversarial networks for
efficient and high fidelity speech synthesis", NeurIPS 2020, Sec. 2.2 and Appendix A].

* **Multi-period** (MPD): one sub-discriminator per period ``p`` (2, 3, 5, 7, 11). The
  waveform, reflect-padded to a multiple of ``p``, is reshaped to 2-D (height ``N / p``,
  width ``p``) so each column holds every ``p``-th sample; a stack of 2-D convs with
  kernel ``(k, 1)`` and stride ``(s, 1)`` (the last of stride 1), each followed by a leaky
  ReLU, then a ``(3, 1)`` conv to one channel. Weight norm on every conv.
* **Multi-scale** (MSD, after MelGAN [Kumar et al., NeurIPS 2019]): three
  sub-discriminators on the raw waveform and on it average-pooled 2x and 4x; each a
  stack of strided, grouped 1-D convs with leaky ReLUs, then a 3-tap conv to one
  channel. Spectral norm on the first scale's convs, weight norm on the others.

Every sub-discriminator returns its logits flattened to ``(B, -1)`` and the list of its
intermediate feature maps (the leaky-ReLU outputs of each stack layer, not the logits),
which the feature-matching loss compares. Both ensembles, and :class:`HiFiGANDiscriminator`
(MPD then MSD), return ``(logits, features)``: one entry per sub-discriminator.

Widths are configurable (:class:`DiscriminatorConfig`); :data:`DISCRIMINATOR_PRESETS`
holds the paper's (``paper``) and a ``tiny`` one for CPU tests.

Example:
    >>> import torch
    >>> disc = HiFiGANDiscriminator(DISCRIMINATOR_PRESETS["tiny"])
    >>> logits, feats = disc(torch.zeros(2, 1, 512))
    >>> len(logits), disc.names[:2], tuple(logits[0].shape)
    (8, ['period2', 'period3'], (2, 20))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from vc_toolkit.errors import UserError

DiscOutput = tuple[list[Tensor], list[list[Tensor]]]
"""Logits ``(B, -1)`` per sub-discriminator, and per sub-discriminator its feature maps."""


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of the MPD and MSD ensembles (defaults: the paper's).

    Attributes:
        periods: One MPD sub-discriminator per period.
        period_channels: Output channels of each MPD conv layer.
        period_kernel: MPD kernel height ``k`` (kernel ``(k, 1)``).
        period_stride: MPD stride height of every layer but the last (stride 1).
        scales: MSD sub-discriminators: raw, then pooled 2x, 4x, ...
        scale_channels: Output channels of each MSD conv layer.
        scale_kernels: MSD kernel of each layer (odd).
        scale_strides: MSD stride of each layer.
        scale_groups: MSD groups of each layer (divide the layer's input and output channels).
        slope: Leaky ReLU slope.
    """

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    period_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    period_kernel: int = 5
    period_stride: int = 3
    scales: int = 3
    scale_channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024)
    scale_kernels: tuple[int, ...] = (15, 41, 41, 41, 41, 41, 5)
    scale_strides: tuple[int, ...] = (1, 2, 2, 4, 4, 1, 1)
    scale_groups: tuple[int, ...] = (1, 4, 16, 16, 16, 16, 1)
    slope: float = 0.1

    def __post_init__(self) -> None:
        if not self.periods and not self.scales:
            raise UserError("HiFi-GAN discriminator: no periods and no scales")
        if min(self.periods, default=1) < 1 or self.scales < 0:
            raise UserError("HiFi-GAN discriminator periods must be >= 1, scales >= 0")
        n = len(self.scale_channels)
        if not (len(self.scale_kernels) == len(self.scale_strides) == len(self.scale_groups) == n):
            raise UserError(
                "HiFi-GAN discriminator scale_channels, scale_kernels, scale_strides and "
                "scale_groups must have the same length"
            )
        if self.periods and not self.period_channels:
            raise UserError("HiFi-GAN discriminator: period_channels is empty")
        if self.scales and not n:
            raise UserError("HiFi-GAN discriminator: scale_channels is empty")
        c_in = 1
        for c_out, g in zip(self.scale_channels, self.scale_groups):
            if c_in % g or c_out % g:
                raise UserError(
                    f"HiFi-GAN discriminator: groups {g} must divide the layer's input "
                    f"({c_in}) and output ({c_out}) channels"
                )
            c_in = c_out


DISCRIMINATOR_PRESETS: dict[str, DiscriminatorConfig] = {
    "paper": DiscriminatorConfig(),
    "tiny": DiscriminatorConfig(
        period_channels=(4, 8, 16, 16),
        scale_channels=(4, 8, 16, 16),
        scale_kernels=(15, 41, 41, 5),
        scale_strides=(1, 4, 4, 1),
        scale_groups=(1, 4, 4, 1),
    ),
}
"""Discriminator shapes by name: ``paper`` (Kong et al. 2020) and ``tiny`` (tests, demos)."""


def discriminator_config(preset: str) -> DiscriminatorConfig:
    """The :data:`DISCRIMINATOR_PRESETS` entry ``preset`` (case-insensitive).

    Raises:
        UserError: unknown preset.
    """
    try:
        return DISCRIMINATOR_PRESETS[preset.lower()]
    except KeyError:
        raise UserError(
            f"unknown HiFi-GAN discriminator preset {preset!r}; choose one of "
            f"{sorted(DISCRIMINATOR_PRESETS)}"
        ) from None


def _as_batch(wav: Tensor) -> Tensor:
    """(B, N) or (B, 1, N) → (B, 1, N)."""
    if wav.dim() == 2:
        return wav.unsqueeze(1)
    if wav.dim() == 3 and wav.shape[1] == 1:
        return wav
    raise ValueError(f"discriminator input must be (B, N) or (B, 1, N), got {tuple(wav.shape)}")


class PeriodDiscriminator(nn.Module):
    """One MPD sub-discriminator: every ``period``-th sample, as 2-D columns.

    Args:
        period: Reshape width ``p``.
        cfg: Channels, kernel, stride and slope.
    """

    def __init__(self, period: int, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.period = period
        self.slope = cfg.slope
        k, pad = cfg.period_kernel, (cfg.period_kernel - 1) // 2
        layers, c_in = [], 1
        for i, c_out in enumerate(cfg.period_channels):
            stride = 1 if i == len(cfg.period_channels) - 1 else cfg.period_stride
            layers.append(weight_norm(nn.Conv2d(c_in, c_out, (k, 1), (stride, 1), (pad, 0))))
            c_in = c_out
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), 1, (1, 0)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        """wav (Tensor): (B, 1, N) → logits (B, -1) and feature maps (B, C_l, H_l, period)."""
        b, c, n = wav.shape
        rest = -n % self.period
        if rest:
            wav = F.pad(wav, (0, rest), mode="reflect" if n > rest else "constant")
        x = wav.view(b, c, -1, self.period)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.slope)
            feats.append(x)
        return self.post(x).flatten(1), feats


class ScaleDiscriminator(nn.Module):
    """One MSD sub-discriminator: strided, grouped 1-D convs on a (pooled) waveform.

    Args:
        cfg: Channels, kernels, strides, groups and slope.
        norm: ``weight_norm`` or ``spectral_norm`` (from ``torch.nn.utils.parametrizations``).
    """

    def __init__(
        self, cfg: DiscriminatorConfig, norm: Callable[[nn.Module], nn.Module] = weight_norm
    ) -> None:
        super().__init__()
        self.slope = cfg.slope
        layers, c_in = [], 1
        for c_out, k, s, g in zip(
            cfg.scale_channels, cfg.scale_kernels, cfg.scale_strides, cfg.scale_groups
        ):
            layers.append(norm(nn.Conv1d(c_in, c_out, k, s, padding=(k - 1) // 2, groups=g)))
            c_in = c_out
        self.convs = nn.ModuleList(layers)
        self.post = norm(nn.Conv1d(c_in, 1, 3, 1, padding=1))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        """wav (Tensor): (B, 1, N) → logits (B, -1) and feature maps (B, C_l, N_l)."""
        x, feats = wav, []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.slope)
            feats.append(x)
        return self.post(x).flatten(1), feats


class MultiPeriodDiscriminator(nn.Module):
    """MPD: one :class:`PeriodDiscriminator` per ``cfg.periods`` entry, weight-normed."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, cfg) for p in cfg.periods)
        self.names = [f"period{p}" for p in cfg.periods]

    def forward(self, wav: Tensor) -> DiscOutput:
        """wav (Tensor): (B, N) or (B, 1, N) → :data:`DiscOutput`, one entry per period."""
        wav = _as_batch(wav)
        outs = [d(wav) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class MultiScaleDiscriminator(nn.Module):
    """MSD: ``cfg.scales`` :class:`ScaleDiscriminator` s on the waveform average-pooled
    1x, 2x, 4x, ... (kernel 4, stride 2, padding 2); spectral norm on the first, weight
    norm on the others."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(cfg, spectral_norm if i == 0 else weight_norm)
            for i in range(cfg.scales)
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)
        self.names = [f"scale{2**i}" for i in range(cfg.scales)]

    def forward(self, wav: Tensor) -> DiscOutput:
        """wav (Tensor): (B, N) or (B, 1, N) → :data:`DiscOutput`, one entry per scale."""
        x = _as_batch(wav)
        logits, feats = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                x = self.pool(x)
            out, fmaps = d(x)
            logits.append(out)
            feats.append(fmaps)
        return logits, feats


class HiFiGANDiscriminator(nn.Module):
    """MPD and MSD together: what HiFi-GAN's losses sum over.

    Args:
        cfg: Shape of both ensembles (default: the paper's).

    Attributes:
        mpd (MultiPeriodDiscriminator): The multi-period ensemble.
        msd (MultiScaleDiscriminator): The multi-scale ensemble.
        names (list[str]): Sub-discriminator names in output order (``period2``, ...,
            ``scale1``, ``scale2``, ``scale4``), for logging.
    """

    def __init__(self, cfg: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or DiscriminatorConfig()
        self.cfg = cfg
        self.mpd = MultiPeriodDiscriminator(cfg)
        self.msd = MultiScaleDiscriminator(cfg)
        self.names = self.mpd.names + self.msd.names

    def forward(self, wav: Tensor) -> DiscOutput:
        """wav (Tensor): (B, N) or (B, 1, N) → :data:`DiscOutput`, MPD entries then MSD."""
        logits_p, feats_p = self.mpd(wav)
        logits_s, feats_s = self.msd(wav)
        return logits_p + logits_s, feats_p + feats_s
