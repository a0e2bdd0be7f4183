"""What every FastSpeech2-style model family shares: variance adaptor, decoder, postnet.

Both families (:class:`~vc_toolkit.models.fastspeech2vc.FastSpeech2VC` from speech,
:class:`~vc_toolkit.models.fastspeech2tts.FastSpeech2TTS` from text) encode their input
into a hidden sequence and hand it to the same parts, built by
:meth:`FastSpeech2Base._build_adaptor` under the same state-dict names, so weights move
between the families (TTS → VC pretraining, :mod:`vc_toolkit.train.pretrain`):

- segment prosody (``prosody``, wGMM, :mod:`vc_toolkit.models.prosody`);
- the log-duration predictor (``duration_predictor``) [Ren et al., "FastSpeech 2", ICLR
  2021];
- pitch (``pitch_predictor``, a registered choice) and energy (``energy_predictor``)
  predictors with their value embeddings (``pitch_embed``, ``energy_embed``), applied by
  :meth:`FastSpeech2Base._variance` (teacher forced) and
  :meth:`FastSpeech2Base._variance_infer`;
- the decoder stack, ``mel_proj`` (``r`` frames per reduced frame) and the conv postnet;
- speaker/emotion ``conditioning`` (:mod:`vc_toolkit.models.conditioning`).

:data:`SHARED_PARTS` names them. The families are registered in
:data:`~vc_toolkit.models.registry.MODEL_FAMILIES` (``model.type``) and declare their
loss terms (:meth:`loss_terms`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vc_toolkit.config.tag import ModelConfig, Postnet
from vc_toolkit.data.labels import SpeakerTable
from vc_toolkit.models.blocks import BlockStack
from vc_toolkit.models.conditioning import Cond, default_table
from vc_toolkit.models.frames import unstack_frames
from vc_toolkit.models.layers import MaskedConv, RelPositionAttention
from vc_toolkit.models.registry import CONDITIONING, PITCH_PREDICTORS, PROSODY, Choice
from vc_toolkit.models.variance import ValueEmbedding, VariancePredictor, regulate_length

SHARED_PARTS = (
    "prosody",
    "duration_predictor",
    "pitch_predictor",
    "pitch_embed",
    "energy_predictor",
    "energy_embed",
    "decoder",
    "mel_proj",
    "postnet",
    "conditioning",
)
"""State-dict prefixes of the parts every family builds alike (:meth:`_build_adaptor`)."""


class ConvPostnet(nn.Module):
    """Residual conv postnet: (conv → LayerNorm → tanh → dropout) × (layers-1), then a conv.

    Args:
        n_mels (int): mel bins.
        cfg (Postnet): layers (0: identity), channels, kernel, dropout.
    """

    def __init__(self, n_mels: int, cfg: Postnet) -> None:
        super().__init__()
        dims = [n_mels] + [cfg.channels] * (cfg.layers - 1) + [n_mels]
        self.convs = nn.ModuleList(
            MaskedConv(a, b, cfg.kernel_size) for a, b in zip(dims, dims[1:])
        )
        self.norms = nn.ModuleList(nn.LayerNorm(c) for c in dims[1:-1])
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, mel: Tensor, mask: Tensor) -> Tensor:
        """(B, T, n_mels), mask (B, T) → refined mel ``mel + residual``, (B, T, n_mels)."""
        y = mel
        for k, conv in enumerate(self.convs):
            y = conv(y, mask)
            if k < len(self.norms):
                y = self.dropout(torch.tanh(self.norms[k](y)))
        return (mel + y).masked_fill(~mask[..., None], 0.0)


def _stat(stats: Any, name: str) -> float:
    value = stats.get(name) if isinstance(stats, Mapping) else getattr(stats, name, None)
    if value is None:
        raise ValueError(f"stats lacks {name!r}; give tgt_lf0_mean/std and tgt_energy_mean/std")
    return float(value)


def rescale_log(x: Tensor, scale: float, mean: float, std: float) -> Tensor:
    """Multiply a normalised log-feature's linear value by ``scale``.

    Un-normalises (``x * std + mean``), multiplies ``exp`` of it by ``scale`` (adds
    ``log scale``) and normalises again.

    Example:
        >>> y = rescale_log(torch.tensor([0.0]), 2.0, math.log(100.0), 0.5)
        >>> round(math.exp(float(y) * 0.5 + math.log(100.0)), 3)
        200.0
    """
    return ((x * std + mean + math.log(scale)) - mean) / std


def target_ids(ids: Tensor, durations: Tensor, max_len: int | None = None) -> Tensor:
    """Source segment ids (B, Ls) repeated by the durations → target segment ids (B, Lt)."""
    return regulate_length(ids[..., None], durations, max_len)[0][..., 0]


def check_scales(
    pitch_scale: float, energy_scale: float, duration_scale: float, stats: Any
) -> None:
    """Refuse inference scales that cannot be applied (``ValueError`` naming the argument)."""
    for name, value in (("pitch_scale", pitch_scale), ("energy_scale", energy_scale)):
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
        if value != 1.0 and stats is None:
            raise ValueError(f"{name}={value} needs stats (target log-F0/energy mean and std)")
    if duration_scale < 0:
        raise ValueError(f"duration_scale must be >= 0, got {duration_scale}")


class FastSpeech2Base(Choice, nn.Module):
    """The parts and steps the model families share (see the module docstring).

    A family's ``__init__`` builds its input side (state-dict prefixes ``input_parts``,
    input ``input_kind``: ``speech`` or ``text``), then calls :meth:`_build_adaptor` and
    :meth:`_init_weights`. ``values`` pitch/energy values per position of the
    sequence the predictors run on: ``r`` at reduced frames, 1 per token.
    """

    input_parts: ClassVar[tuple[str, ...]] = ()
    input_kind: ClassVar[str] = ""

    def _build_adaptor(
        self,
        cfg: ModelConfig,
        n_mels: int,
        r: int,
        speakers: SpeakerTable | None,
        values: int,
    ) -> None:
        h = cfg.hidden
        self.prosody = PROSODY.get(cfg.prosody.type)(h, n_mels * r, cfg.prosody)
        self.duration_predictor = VariancePredictor(h, cfg.duration_predictor, 1)
        pitch_cfg = cfg.pitch_predictor
        self.pitch_predictor = PITCH_PREDICTORS.get(pitch_cfg.type)(h, pitch_cfg, values)
        self.pitch_embed = ValueEmbedding(values, h, pitch_cfg.embed_kernel_size)
        self.energy_predictor = VariancePredictor(h, cfg.energy_predictor, values)
        self.energy_embed = ValueEmbedding(values, h, cfg.energy_predictor.embed_kernel_size)
        self.decoder = BlockStack(cfg.decoder, h)
        self.mel_proj = nn.Linear(h, n_mels * r)
        self.postnet = ConvPostnet(n_mels, cfg.postnet) if cfg.postnet.layers else None
        self.speakers = speakers or default_table()
        cond_cls = CONDITIONING.get(cfg.conditioning.type)
        self.conditioning = cond_cls(h, cfg.conditioning, self.speakers)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, RelPositionAttention):
                nn.init.xavier_uniform_(module.bias_u)
                nn.init.xavier_uniform_(module.bias_v)

    @property
    def segment_outputs(self) -> tuple[str, ...]:
        """Names of the :meth:`infer` outputs with one row per source segment, (B, K, ...)."""
        return self.prosody.segment_outputs

    def embedding_tables(self) -> dict[str, str]:
        """State-dict names of the conditioning tables → ``speakers`` or ``emotions`` (the
        :class:`SpeakerTable` list naming their rows); empty without conditioning."""
        return {f"conditioning.{k}": v for k, v in self.conditioning.tables().items()}

    def num_params(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` if ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def set_step(self, step: int) -> None:
        """The optimizer steps taken so far (the trainer calls this before every step).

        Parts with a schedule read it (the TTS binarisation loss); the default keeps it only.
        """
        self.step = int(step)

    def _decode(self, x: Tensor, mask: Tensor, frame_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Reduced hidden (B, Lt, hidden) → mel before and after the postnet, (B, Tt, n_mels)."""
        n_frames = frame_mask.shape[1]
        mel = unstack_frames(self.mel_proj(self.decoder(x, mask)), self.r)[:, :n_frames]
        mel = mel.masked_fill(~frame_mask[..., None], 0.0)
        post = mel if self.postnet is None else self.postnet(mel, frame_mask)
        return mel, post

    def _frames(self, values: Tensor, n_frames: int) -> Tensor:
        """Reduced values (B, L, r) → frame values (B, n_frames)."""
        return unstack_frames(values, self.r)[:, :n_frames, 0]

    def _predict(self, predictor: nn.Module, x: Tensor, mask: Tensor, cond: Cond | None) -> Tensor:
        """A variance predictor on ``x`` (B, L, hidden) with the ``adaptor`` conditioning."""
        return predictor(self.conditioning(x, mask, "adaptor", cond), mask)

    def _durations(self, log_duration: Tensor, mask: Tensor, scale: float) -> Tensor:
        """Rounded durations (B, Ls) >= 0, zero on padding, at least one frame per row."""
        d = torch.round((torch.exp(log_duration) - 1.0) * scale).clamp(min=0).long()
        d = d.masked_fill(~mask, 0)
        first = log_duration.masked_fill(~mask, float("-inf")).argmax(dim=1)
        empty = d.sum(dim=1) == 0
        bump = nn.functional.one_hot(first, d.shape[1]) * empty[:, None]
        return d + bump

    def _variance(
        self,
        x: Tensor,
        mask: Tensor,
        ids: Tensor,
        cond: Cond | None,
        pitch_target: Tensor,
        energy_target: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced pitch and energy: predict, then add the targets' embeddings.

        Args:
            x (Tensor): hidden sequence, (B, L, hidden).
            mask (Tensor): real positions, (B, L) bool.
            ids (Tensor): segment of every position, (B, L) long.
            cond (Cond | None): speaker/emotion ids.
            pitch_target (Tensor): normalised log-F0, (B, L, values).
            energy_target (Tensor): normalised log energy, (B, L, values).

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``x`` with both embeddings added, predicted pitch
            and energy, (B, L, values).
        """
        adapted = self.conditioning(x, mask, "adaptor", cond)
        pitch = self.pitch_predictor(adapted, mask, pitch_target, ids)
        x = x + self.pitch_embed(pitch_target, mask)
        energy = self._predict(self.energy_predictor, x, mask, cond)
        x = x + self.energy_embed(energy_target, mask)
        return x, pitch, energy

    def _variance_infer(
        self,
        x: Tensor,
        mask: Tensor,
        ids: Tensor,
        cond: Cond | None,
        scales: tuple[float, float],
        stats: Any,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """As :meth:`_variance` with the predictions embedded, scaled by ``(pitch_scale,
        energy_scale)`` in the linear domain (``stats``: the target normalisation)."""
        pitch_scale, energy_scale = scales
        adapted = self.conditioning(x, mask, "adaptor", cond)
        pitch = self.pitch_predictor.infer(adapted, mask, ids)
        if pitch_scale != 1.0:
            mean, std = _stat(stats, "tgt_lf0_mean"), _stat(stats, "tgt_lf0_std")
            pitch = rescale_log(pitch, pitch_scale, mean, std).masked_fill(~mask[..., None], 0)
        x = x + self.pitch_embed(pitch, mask)
        energy = self._predict(self.energy_predictor, x, mask, cond)
        if energy_scale != 1.0:
            mean, std = _stat(stats, "tgt_energy_mean"), _stat(stats, "tgt_energy_std")
            energy = rescale_log(energy, energy_scale, mean, std).masked_fill(~mask[..., None], 0)
        x = x + self.energy_embed(energy, mask)
        return x, pitch, energy
