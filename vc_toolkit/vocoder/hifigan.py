"""HiFi-GAN vocoder: a pretrained generator (:mod:`vc_toolkit.vocoder.hifigan_generator`)
loaded from a released checkpoint.

Its sample rate, hop and mel bins must equal the spk's; a log-base difference
is converted.

Two checkpoint formats load:

* **Original** (jik876/hifi-gan ``g_XXXXXXXX`` files): a torch file
  ``{"generator": state_dict}`` and a ``config.json`` with ``upsample_rates``,
  ``upsample_kernel_sizes``, ``upsample_initial_channel``, ``resblock``
  (``"1"``: three dilated + three plain convs per block; ``"2"``: dilated convs
  only), ``resblock_kernel_sizes``, ``resblock_dilation_sizes``, ``num_mels``,
  ``sampling_rate``, ``hop_size`` (and ``n_fft``, ``win_size``, ``fmin``,
  ``fmax``). Features: natural-log mel.
* **ParallelWaveGAN** (kan-bayashi/ParallelWaveGAN ``checkpoint-XXXsteps.pkl``):
  ``{"model": {"generator": state_dict}, ...}`` and a ``config.yml`` with
  ``generator_type: HiFiGANGenerator`` and ``generator_params``. Features:
  log mel in ``log_base`` (default 10), z-normalised with the training
  statistics, read from ``mean``/``scale`` buffers in the state dict or from
  ``stats.npy`` next to the checkpoint (``stats.h5`` needs ``h5py``). Only
  single-band models (``out_channels: 1``) with LeakyReLU activations load.

Weight normalisation [Salimans & Kingma, NeurIPS 2016] is folded into plain
weights at load time: ``w = g * v / ||v||``, the norm taken over every axis
but the one ``g`` spans. Both the ``weight_g``/``weight_v`` naming and the
``parametrizations.weight.original0/1`` naming are understood.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import yaml
from torch import Tensor, nn

from vc_toolkit.config.spk import Mel, SpkConfig
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.errors import UserError
from vc_toolkit.vocoder.base import VOCODERS, Vocoder, pad_stack
from vc_toolkit.vocoder.hifigan_generator import Generator, GeneratorConfig

log = logging.getLogger(__name__)


@dataclass
class LoadedHiFiGAN:
    """A generator with what its features must look like.

    Attributes:
        generator: The generator, eval mode, on the requested device.
        sampling_rate: Sample rate it was trained at, Hz.
        hop_size: Samples per frame.
        num_mels: Mel bins.
        log_base: Base of the log mel it expects (``math.e`` or e.g. 10).
        mean: Per-bin mean subtracted before the generator, (num_mels,), or None.
        scale: Per-bin scale dividing after the mean, (num_mels,), or None.
        analysis: Other analysis settings found in the config (n_fft, win_length, fmin, fmax).
    """

    generator: Generator
    sampling_rate: int
    hop_size: int
    num_mels: int
    log_base: float
    mean: Tensor | None = None
    scale: Tensor | None = None
    analysis: dict[str, Any] = field(default_factory=dict)


def fold_weight_norm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Replace weight-norm pairs ``(g, v)`` by plain ``weight = g * v / ||v||``.

    Example:
        >>> v = torch.tensor([[3.0, 4.0]]); g = torch.tensor([[10.0]])
        >>> fold_weight_norm({"c.weight_g": g, "c.weight_v": v})["c.weight"].tolist()
        [[6.0, 8.0]]
    """
    pairs = {
        ".weight_g": ".weight_v",
        ".parametrizations.weight.original0": ".parametrizations.weight.original1",
    }
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        for g_suffix, v_suffix in pairs.items():
            if key.endswith(g_suffix):
                stem = key[: -len(g_suffix)]
                out[stem + ".weight"] = _weight_from_norm(value, state[stem + v_suffix])
                break
            if key.endswith(v_suffix):
                break
        else:
            out[key] = value
    return out


def _weight_from_norm(g: Tensor, v: Tensor) -> Tensor:
    dim = next((d for d, n in enumerate(g.shape) if n > 1), 0)
    # the kernel weight-normed modules run, so folded weights match them bit for bit
    return torch._weight_norm(v, g, dim)


_PWG_RENAMES = [
    (r"^input_conv\.", "conv_pre."),
    (r"^upsamples\.(\d+)\.(?:1\.)?", r"ups.\1."),
    (r"^blocks\.(\d+)\.convs([12])\.(\d+)\.(?:1\.)?", r"resblocks.\1.convs\2.\3."),
    (r"^output_conv\.(?:1\.)?", "conv_post."),
]


def _from_pwg_names(state: dict[str, Tensor], two_convs: bool) -> dict[str, Tensor]:
    out = {}
    for key, value in state.items():
        for pattern, repl in _PWG_RENAMES:
            key = re.sub(pattern, repl, key)
        if not two_convs:
            key = re.sub(r"^(resblocks\.\d+\.)convs1\.", r"\1convs.", key)
        out[key] = value
    return out


def _analysis(cfg: dict, **names: str) -> dict[str, Any]:
    """n_fft, win_length, fmin, fmax of a vocoder config (None where absent)."""
    names = {**names, "fmin": "fmin", "fmax": "fmax"}
    return {ours: cfg.get(theirs) for ours, theirs in names.items()}


def _original_config(cfg: dict, where: Path) -> tuple[GeneratorConfig, dict]:
    gen = GeneratorConfig(
        num_mels=int(cfg["num_mels"]),
        upsample_rates=tuple(cfg["upsample_rates"]),
        upsample_kernel_sizes=tuple(cfg["upsample_kernel_sizes"]),
        upsample_initial_channel=int(cfg["upsample_initial_channel"]),
        resblock=str(cfg["resblock"]),
        resblock_kernel_sizes=tuple(cfg["resblock_kernel_sizes"]),
        resblock_dilation_sizes=tuple(tuple(d) for d in cfg["resblock_dilation_sizes"]),
    )
    meta = {
        "sampling_rate": int(cfg["sampling_rate"]),
        "hop_size": int(cfg["hop_size"]),
        "log_base": math.e,
        "analysis": _analysis(cfg, n_fft="n_fft", win_length="win_size"),
    }
    return gen, meta


def _pwg_config(cfg: dict, where: Path) -> tuple[GeneratorConfig, dict]:
    kind = cfg.get("generator_type", "ParallelWaveGANGenerator")
    if kind != "HiFiGANGenerator":
        raise UserError(f"{where}: generator_type {kind!r} is not supported, only HiFiGANGenerator")
    p = {k.replace("kernal", "kernel"): v for k, v in cfg["generator_params"].items()}
    if p.get("out_channels", 1) != 1:
        raise UserError(f"{where}: multi-band HiFi-GAN (out_channels > 1) is not supported")
    if p.get("nonlinear_activation", "LeakyReLU") != "LeakyReLU":
        raise UserError(f"{where}: only LeakyReLU activations are supported")
    act = p.get("nonlinear_activation_params") or {}
    dilations = p.get("resblock_dilations", [(1, 3, 5)] * 3)
    gen = GeneratorConfig(
        num_mels=int(p.get("in_channels", cfg.get("num_mels", 80))),
        upsample_rates=tuple(p.get("upsample_scales", (8, 8, 2, 2))),
        upsample_kernel_sizes=tuple(p.get("upsample_kernel_sizes", (16, 16, 4, 4))),
        upsample_initial_channel=int(p.get("channels", 512)),
        resblock="1" if p.get("use_additional_convs", True) else "2",
        resblock_kernel_sizes=tuple(p.get("resblock_kernel_sizes", (3, 7, 11))),
        resblock_dilation_sizes=tuple(tuple(d) for d in dilations),
        kernel_size=int(p.get("kernel_size", 7)),
        bias=bool(p.get("bias", True)),
        slope=float(act.get("negative_slope", 0.1)),
    )
    base = cfg.get("log_base", 10.0)
    meta = {
        "sampling_rate": int(cfg["sampling_rate"]),
        "hop_size": int(cfg["hop_size"]),
        "log_base": math.e if base is None else float(base),
        "analysis": _analysis(cfg, n_fft="fft_size", win_length="win_length"),
    }
    return gen, meta


def _pwg_stats(state: dict[str, Tensor], checkpoint: Path) -> tuple[Tensor, Tensor]:
    if "mean" in state and "scale" in state:
        return state.pop("mean").reshape(-1), state.pop("scale").reshape(-1)
    npy, h5 = checkpoint.parent / "stats.npy", checkpoint.parent / "stats.h5"
    if npy.exists():
        stats = np.load(npy)
        return torch.as_tensor(stats[0]).reshape(-1), torch.as_tensor(stats[1]).reshape(-1)
    if h5.exists():
        try:
            import h5py
        except ImportError:
            raise UserError(
                f"{h5} needs h5py (not installed); install it or save the statistics as "
                f"{npy} with numpy.save(path, [mean, scale])"
            ) from None
        with h5py.File(h5, "r") as f:
            mean, scale = f["mean"][()], f["scale"][()]
        return torch.as_tensor(mean).reshape(-1), torch.as_tensor(scale).reshape(-1)
    raise UserError(
        f"{checkpoint}: a ParallelWaveGAN checkpoint needs its feature statistics; put "
        f"stats.npy or stats.h5 (from its training) next to it"
    )


def _read_state(
    checkpoint: Path, original: bool, two_convs: bool
) -> tuple[dict[str, Tensor], Tensor | None, Tensor | None]:
    """Generator state dict under the original names, plus ParallelWaveGAN's statistics."""
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:
        first_line = str(err).strip().split("\n")[0]
        raise UserError(f"cannot read HiFi-GAN checkpoint {checkpoint}: {first_line}") from None
    if original:
        if not isinstance(ckpt, dict) or "generator" not in ckpt:
            raise UserError(f"{checkpoint}: expected a dict with key 'generator' (original format)")
        return dict(ckpt["generator"]), None, None
    if not isinstance(ckpt, dict) or "generator" not in ckpt.get("model", {}):
        raise UserError(f"{checkpoint}: expected ['model']['generator'] (ParallelWaveGAN format)")
    state = dict(ckpt["model"]["generator"])
    mean, scale = _pwg_stats(state, checkpoint)
    return _from_pwg_names(state, two_convs), mean, scale


def find_config(checkpoint: Path) -> Path:
    """The config next to ``checkpoint``: config.json, config.yml or config.yaml."""
    for name in ("config.json", "config.yml", "config.yaml"):
        if (checkpoint.parent / name).exists():
            return checkpoint.parent / name
    raise UserError(f"no config.json / config.yml next to {checkpoint}; set infer.vocoder.config")


def load_hifigan(
    checkpoint: str | Path, config: str | Path | None = None, device: str | torch.device = "cpu"
) -> LoadedHiFiGAN:
    """Load a HiFi-GAN generator from an original or ParallelWaveGAN checkpoint.

    Args:
        checkpoint: Torch file (``g_XXXXXXXX`` or ``checkpoint-XXXsteps.pkl``).
        config: Its ``config.json`` (original) or ``config.yml`` (ParallelWaveGAN);
            None: looked up next to the checkpoint.
        device: Where the generator runs.

    Returns:
        The generator (weight norm folded, eval mode) and its feature settings.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise UserError(f"HiFi-GAN checkpoint {checkpoint} does not exist")
    config = find_config(checkpoint) if config is None else Path(config)
    if not config.is_file():
        raise UserError(f"HiFi-GAN config {config} does not exist")
    text = config.read_text(encoding="utf-8")
    is_json = config.suffix == ".json"
    raw = json.loads(text) if is_json else yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise UserError(f"{config}: expected a mapping of HiFi-GAN settings")
    try:
        gen_cfg, meta = (_original_config if is_json else _pwg_config)(raw, config)
    except KeyError as err:
        raise UserError(f"{config}: HiFi-GAN config lacks key {err}") from None
    if gen_cfg.hop_length != meta["hop_size"]:
        raise UserError(
            f"{config}: hop_size {meta['hop_size']} != product of upsample rates "
            f"{gen_cfg.hop_length}"
        )
    state, mean, scale = _read_state(checkpoint, is_json, two_convs=gen_cfg.resblock == "1")
    generator = Generator(gen_cfg)
    missing, unexpected = _load_state(generator, fold_weight_norm(state))
    if missing or unexpected:
        raise UserError(
            f"{checkpoint} does not fit {config}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    generator.eval().to(device)
    return LoadedHiFiGAN(
        generator=generator,
        sampling_rate=meta["sampling_rate"],
        hop_size=meta["hop_size"],
        num_mels=gen_cfg.num_mels,
        log_base=meta["log_base"],
        mean=None if mean is None else mean.float().to(device),
        scale=None if scale is None else scale.float().to(device),
        analysis=meta["analysis"],
    )


def _load_state(model: nn.Module, state: dict[str, Tensor]) -> tuple[list[str], list[str]]:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad = [k for k in own if k in state and own[k].shape != state[k].shape]
    if not (missing or unexpected or bad):
        model.load_state_dict(state)
    return missing + [f"{k} (shape)" for k in bad], unexpected


@VOCODERS.register("hifigan")
class HiFiGAN(Vocoder):
    """A pretrained HiFi-GAN generator.

    Args:
        checkpoint: Generator checkpoint (original ``g_XXXXXXXX`` or ParallelWaveGAN ``.pkl``).
        config: Its config (``config.json`` / ``config.yml``); None: next to the checkpoint.
        sample_rate: Sample rate of the spk, Hz (must equal the checkpoint's).
        mel: Mel analysis of the spk (hop and bins must equal the checkpoint's).
        device: Where the generator runs.
    """

    required: ClassVar[dict[str, str]] = {"checkpoint": "a generator file"}

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

    @classmethod
    def from_config(
        cls, cfg: VocoderConfig, spk: SpkConfig, device: str | torch.device = "cpu"
    ) -> HiFiGAN:
        """``infer.vocoder`` with ``checkpoint`` (and optionally ``config``)."""
        if not cfg.checkpoint:
            raise UserError("infer.vocoder.type hifigan needs infer.vocoder.checkpoint")
        return cls(cfg.checkpoint, cfg.config, spk.sample_rate, spk.feats.mel, device)

    @classmethod
    def export(cls, cfg: VocoderConfig, folder: Path, copy: bool = True) -> dict[str, str]:
        """The generator file, its config and feature statistics next to it, if any."""
        checkpoint = Path(cfg.checkpoint or "")
        if not checkpoint.is_file():
            raise UserError(f"HiFi-GAN checkpoint {checkpoint} does not exist; fix infer.vocoder")
        config = Path(cfg.config) if cfg.config else find_config(checkpoint)
        if not copy:
            return {"checkpoint": str(checkpoint.resolve()), "config": str(config.resolve())}
        folder.mkdir(parents=True, exist_ok=True)
        name = checkpoint.name
        shutil.copy2(checkpoint, folder / name)
        shutil.copy2(config, folder / config.name)
        for extra in ("stats.npy", "stats.h5"):
            if (checkpoint.parent / extra).is_file():
                shutil.copy2(checkpoint.parent / extra, folder / extra)
        return {"checkpoint": f"{folder.name}/{name}", "config": f"{folder.name}/{config.name}"}

    def _synthesize(
        self, mels: list[np.ndarray], f0s: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        lens = [len(m) for m in mels]
        floor = min(float(m.min()) for m in mels)
        x = torch.as_tensor(pad_stack(mels, floor), device=self.device) * self.log_scale
        if self.loaded.mean is not None:
            x = (x - self.loaded.mean) / self.loaded.scale
        with torch.inference_mode():
            wav = self.loaded.generator(x.transpose(1, 2))[:, 0]
        return [w[: n * self.hop_length].cpu().numpy() for w, n in zip(wav, lens)]
