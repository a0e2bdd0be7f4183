"""HiFi-GAN generator [Kong et al., "HiFi-GAN: Generative adversarial networks for
efficient and high fidelity speech synthesis", NeurIPS 2020].

A conv layer, then per upsampling stage a leaky ReLU (slope 0.1), a transposed
conv (stride ``u``, kernel ``k``, padding ``(k - u) // 2``) and the average of
``len(resblock_kernel_sizes)`` multi-receptive-field residual blocks, then a
leaky ReLU (slope 0.01), a conv to one channel and ``tanh``. Output samples
per input frame: ``prod(upsample_rates)``.

:data:`PRESETS` holds the paper's V1, V2 and V3 (for hop 256) and a ``tiny`` size
for CPU demos and tests; :func:`generator_config` adapts one to another hop and
mel count. For training, :meth:`Generator.apply_weight_norm` reparametrises every
conv as in the paper; a state dict saved that way loads back through
:func:`vc_toolkit.vocoder.hifigan.load_hifigan` (which folds the norm).

Example:
    >>> cfg = GeneratorConfig(num_mels=4, upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4),
    ...                       upsample_initial_channel=8, resblock="2",
    ...                       resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),))
    >>> Generator(cfg)(torch.zeros(1, 4, 5)).shape
    torch.Size([1, 1, 20])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from vc_toolkit.config.spk import Mel
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
        if self.upsample_initial_channel < 2 ** len(self.upsample_rates):
            raise UserError(
                f"HiFi-GAN upsample_initial_channel {self.upsample_initial_channel} is halved by "
                f"each of {len(self.upsample_rates)} stages; it must be at least "
                f"{2 ** len(self.upsample_rates)}"
            )

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

    def init_weights(self, std: float = 0.01) -> Generator:
        """Draw the upsampling and residual conv weights from N(0, std²) (before training).

        A small-normal start keeps the deep residual stacks from blowing up early in
        training; call it before :meth:`apply_weight_norm`. Returns ``self``.
        """
        for module in [*self.ups, *self.resblocks.modules()]:
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                nn.init.normal_(module.weight, 0.0, std)
        return self

    def apply_weight_norm(self) -> Generator:
        """Weight-normalise every conv [Salimans & Kingma, 2016], as HiFi-GAN trains.

        The state dict then holds ``<conv>.parametrizations.weight.original0/1``, which
        :func:`vc_toolkit.vocoder.hifigan.fold_weight_norm` folds when a checkpoint loads.
        Returns ``self``.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                weight_norm(module)
        return self

    def remove_weight_norm(self) -> Generator:
        """Fold every weight norm into a plain ``weight`` (same outputs). Returns ``self``."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return self


PRESETS: dict[str, dict] = {
    "v1": dict(
        upsample_rates=(8, 8, 2, 2),
        upsample_kernel_sizes=(16, 16, 4, 4),
        upsample_initial_channel=512,
        resblock="1",
        resblock_kernel_sizes=(3, 7, 11),
        resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    ),
    "v2": dict(
        upsample_rates=(8, 8, 2, 2),
        upsample_kernel_sizes=(16, 16, 4, 4),
        upsample_initial_channel=128,
        resblock="1",
        resblock_kernel_sizes=(3, 7, 11),
        resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    ),
    "v3": dict(
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=256,
        resblock="2",
        resblock_kernel_sizes=(3, 5, 7),
        resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    ),
    "tiny": dict(
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=32,
        resblock="2",
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1, 3),),
    ),
}
"""Generator shapes by name, all for hop 256 (``num_mels`` comes from the data).

``v1``/``v2``/``v3``: Kong et al. 2020, Sec. 2.1 and Appendix A (V1 and V2 differ only in
width); ``tiny``: a V3-like 3-stage net of 32 channels and one residual kernel, for CPU
demos and tests, not for listening.
"""


def upsample_kernel(rate: int) -> int:
    """Transposed-conv kernel for an upsampling ``rate``: ``2 * rate``, plus one when ``rate``
    is odd, so ``kernel - rate`` is even and a stage gives exactly ``rate`` samples per input.

    Example:
        >>> [upsample_kernel(u) for u in (8, 5, 2, 1)]
        [16, 11, 4, 3]
    """
    return 2 * rate + rate % 2


def _factorisations(n: int, parts: int, largest: int) -> Iterator[tuple[int, ...]]:
    """Non-increasing ``parts``-tuples of factors in [2, largest] whose product is ``n``."""
    if parts == 1:
        if 2 <= n <= largest:
            yield (n,)
        return
    for f in range(min(n, largest), 1, -1):
        if n % f == 0:
            for rest in _factorisations(n // f, parts - 1, f):
                yield (f, *rest)


def factorise_hop(hop_length: int, like: tuple[int, ...]) -> tuple[int, ...]:
    """Upsampling rates (each >= 2, largest first) whose product is ``hop_length``.

    Among the factorisations into ``len(like)`` rates, the one closest to ``like`` sorted
    largest first (least squared log-ratio) wins, so the stages keep the preset's profile;
    ties go to the more even split (smaller largest rate, then larger smallest rate).

    Args:
        hop_length: Samples per frame.
        like: The preset's rates.

    Raises:
        UserError: ``hop_length`` has no such factorisation (e.g. a large prime factor).

    Example:
        >>> factorise_hop(160, (8, 8, 2, 2)), factorise_hop(200, (8, 8, 4))
        ((8, 5, 2, 2), (8, 5, 5))
    """
    target = sorted(like, reverse=True)

    def distance(rates: tuple[int, ...]) -> tuple[float, int, int]:
        return (
            round(sum(math.log(r / t) ** 2 for r, t in zip(rates, target)), 9),
            rates[0],
            -rates[-1],
        )

    candidates = list(_factorisations(hop_length, len(like), hop_length))
    if not candidates:
        raise UserError(
            f"HiFi-GAN: hop_length {hop_length} is not a product of {len(like)} upsampling "
            f"rates >= 2; give upsample_rates explicitly (e.g. fewer stages)"
        )
    return min(candidates, key=distance)


def generator_config(
    preset: str,
    n_mels: int,
    hop_length: int,
    upsample_rates: tuple[int, ...] | None = None,
    *,
    upsample_initial_channel: int | None = None,
) -> GeneratorConfig:
    """A :data:`PRESETS` generator shape adapted to the spk's mel bins and hop.

    The preset's rates and kernels are kept when their product is ``hop_length``;
    otherwise ``hop_length`` is factorised into as many rates (:func:`factorise_hop`),
    each with kernel :func:`upsample_kernel`. Residual blocks are unchanged.

    Args:
        preset: ``v1``, ``v2``, ``v3`` or ``tiny`` (case-insensitive).
        n_mels: Mel bins of the input.
        hop_length: Samples per frame; the output has ``frames * hop_length`` samples.
        upsample_rates: Explicit rates (any number of stages) with product ``hop_length``;
            None: the preset's or a factorisation as above.
        upsample_initial_channel: Width override (e.g. a narrow V1 for tests); None: the
            preset's.

    Raises:
        UserError: unknown preset, rates whose product is not ``hop_length``, a hop with
            no factorisation, or too few channels for the stages.

    Example:
        >>> cfg = generator_config("v1", n_mels=80, hop_length=160)
        >>> cfg.upsample_rates, cfg.upsample_kernel_sizes, cfg.hop_length
        ((8, 5, 2, 2), (16, 11, 4, 4), 160)
    """
    name = preset.lower()
    if name not in PRESETS:
        raise UserError(f"unknown HiFi-GAN preset {preset!r}; choose one of {sorted(PRESETS)}")
    shape = dict(PRESETS[name])
    rates, kernels = shape["upsample_rates"], shape["upsample_kernel_sizes"]
    if upsample_rates is not None:
        rates = tuple(int(u) for u in upsample_rates)
        if not rates or min(rates) < 1 or math.prod(rates) != hop_length:
            raise UserError(
                f"HiFi-GAN upsample_rates {list(rates)} must be positive and multiply to "
                f"hop_length {hop_length}"
            )
        if rates != shape["upsample_rates"]:
            kernels = tuple(upsample_kernel(u) for u in rates)
    elif math.prod(rates) != hop_length:
        rates = factorise_hop(hop_length, rates)
        kernels = tuple(upsample_kernel(u) for u in rates)
    shape.update(upsample_rates=rates, upsample_kernel_sizes=kernels)
    if upsample_initial_channel is not None:
        shape["upsample_initial_channel"] = int(upsample_initial_channel)
    return GeneratorConfig(num_mels=int(n_mels), **shape)


def original_config(cfg: GeneratorConfig, sample_rate: int, mel: Mel) -> dict:
    """The ``config.json`` of the original HiFi-GAN format for a trained generator.

    With it next to a ``{"generator": state_dict}`` file,
    :func:`vc_toolkit.vocoder.hifigan.load_hifigan` (and ``infer.vocoder.type: hifigan``)
    loads the generator. That format means a **natural-log** mel input: train on the
    spk's log-mel in base e (times ``ln 10`` when ``feats.mel.log_base`` is 10).

    Args:
        cfg: The generator's shape.
        sample_rate: The spk's sample rate, Hz.
        mel: The spk's ``feats.mel`` (its hop must be ``cfg.hop_length``).

    Raises:
        UserError: the hop differs, or ``cfg`` has a conv kernel, bias or slope the
            format cannot express (it assumes 7, True, 0.1).
    """
    if mel.hop_length != cfg.hop_length:
        raise UserError(
            f"HiFi-GAN upsampling gives hop {cfg.hop_length}, the spk has {mel.hop_length}"
        )
    if (cfg.kernel_size, cfg.bias, cfg.slope) != (7, True, LRELU_SLOPE):
        raise UserError("the original HiFi-GAN config has kernel_size 7, bias and slope 0.1 only")
    return {
        "resblock": cfg.resblock,
        "upsample_rates": list(cfg.upsample_rates),
        "upsample_kernel_sizes": list(cfg.upsample_kernel_sizes),
        "upsample_initial_channel": cfg.upsample_initial_channel,
        "resblock_kernel_sizes": list(cfg.resblock_kernel_sizes),
        "resblock_dilation_sizes": [list(d) for d in cfg.resblock_dilation_sizes],
        "num_mels": cfg.num_mels,
        "sampling_rate": sample_rate,
        "hop_size": mel.hop_length,
        "n_fft": mel.n_fft,
        "win_size": mel.win_length,
        "fmin": mel.fmin,
        "fmax": mel.fmax,
    }
