"""FastSpeech2-style parallel voice conversion on mel spectrograms.

Source mel frames are stacked by the reduction factor ``r``, encoded by a
Conformer [Gulati et al., Interspeech 2020] or Transformer stack, and passed
through a variance adaptor [Ren et al., "FastSpeech 2", ICLR 2021]:
log-duration prediction and length regulation to the target length, then
pitch and energy prediction at the target frame rate (``r`` values per reduced
frame) with their embeddings added back. A decoder stack and a linear layer
give ``r`` target mel frames per reduced frame, refined by a residual conv
postnet [Shen et al., "Tacotron 2", ICASSP 2018]. Optional wGMM segment
prosody (:mod:`vc_toolkit.models.prosody`) is added to the encoder output.
Speaker/emotion embeddings (``model.conditioning``, :mod:`vc_toolkit.models.conditioning`)
are added at the encoder output, the predictor inputs and/or the decoder input, with one
row per name of the tag's speaker table.

The pitch predictor and the prosody module are chosen by name from their
registries (:mod:`vc_toolkit.models.registry`); the loss terms of a model are
composed in :mod:`vc_toolkit.models.loss` from those every model has
(:mod:`vc_toolkit.models.terms`) and those its parts declare. Every
reduced target frame gets the index of its sentence segment (the source
segments mapped through the durations) for the pitch predictor.

Example:
    >>> import torch
    >>> from vc_toolkit.config.tag import ModelConfig, Stack, Postnet
    >>> cfg = ModelConfig(hidden=8, encoder=Stack(layers=1, kernel_size=3),
    ...                   decoder=Stack(layers=1, kernel_size=3), postnet=Postnet(layers=0))
    >>> model = build_model(cfg, n_mels=4, reduction_factor=2)
    >>> out = model.infer(torch.randn(1, 6, 4), torch.zeros(1, 6), torch.zeros(1, 6),
    ...                   torch.tensor([6]))
    >>> out["mel"].shape[1] == int(out["tgt_lens"][0]) == 2 * int(out["duration"].sum())
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from vc_toolkit.config.tag import ModelConfig
from vc_toolkit.data.batch import Batch
from vc_toolkit.data.labels import SpeakerTable
from vc_toolkit.models.blocks import BlockStack
from vc_toolkit.models.conditioning import Cond
from vc_toolkit.models.frames import (
    check_multiple,
    lengths_to_mask,
    reduced_mask,
    stack_frames,
)
from vc_toolkit.models.fs2base import (
    ConvPostnet,
    FastSpeech2Base,
    check_scales,
    rescale_log,
    target_ids,
)
from vc_toolkit.models.prosody import segment_ids
from vc_toolkit.models.registry import MODEL_FAMILIES, PITCH_PREDICTORS, PROSODY, LossTerm
from vc_toolkit.models.terms import CORE_LOSS_TERMS
from vc_toolkit.models.variance import ValueEmbedding, regulate_length

__all__ = ["ConvPostnet", "FastSpeech2VC", "build_model", "rescale_log"]


@MODEL_FAMILIES.register("fastspeech2vc")
class FastSpeech2VC(FastSpeech2Base):
    """FastSpeech2-style VC model.

    ``input_parts`` names the state-dict prefixes of the speech input side (not shared with
    the text family; see :data:`~vc_toolkit.models.fs2base.SHARED_PARTS`).

    Args:
        cfg (ModelConfig): model settings.
        n_mels (int): mel bins.
        reduction_factor (int): frames per reduced frame ``r``.
        speakers (SpeakerTable | None): names of the conditioning rows (the tag's
            ``speakers.json``); None: ``src`` and ``tgt``. Unused with conditioning ``none``.
    """

    input_parts = ("input_proj", "src_pitch_embed", "src_energy_embed", "encoder")
    input_kind = "speech"

    def __init__(
        self,
        cfg: ModelConfig,
        n_mels: int,
        reduction_factor: int,
        speakers: SpeakerTable | None = None,
    ) -> None:
        super().__init__()
        cfg.validate()
        if reduction_factor < 1:
            raise ValueError(f"reduction_factor must be >= 1, got {reduction_factor}")
        h, r = cfg.hidden, reduction_factor
        self.cfg, self.n_mels, self.r = cfg, n_mels, r
        self.input_proj = nn.Linear(n_mels * r, h)
        self.src_pitch_embed = self.src_energy_embed = None
        if cfg.use_source_pitch_energy:
            self.src_pitch_embed = ValueEmbedding(r, h, cfg.pitch_predictor.embed_kernel_size)
            self.src_energy_embed = ValueEmbedding(r, h, cfg.energy_predictor.embed_kernel_size)
        self.encoder = BlockStack(cfg.encoder, h)
        self._build_adaptor(cfg, n_mels, r, speakers, values=r)
        self._init_weights()

    @classmethod
    def from_config(
        cls,
        cfg: ModelConfig,
        n_mels: int,
        reduction_factor: int,
        speakers: SpeakerTable | None = None,
        vocab_size: int | None = None,
    ) -> FastSpeech2VC:
        """Build from the tag's model block (``vocab_size`` is for text input: unused)."""
        return cls(cfg, n_mels, reduction_factor, speakers)

    @classmethod
    def own_loss_terms(cls) -> tuple[LossTerm, ...]:
        """The terms only this family has (none: every VC term is a part's or the core's)."""
        return ()

    @classmethod
    def loss_terms(cls, cfg: ModelConfig) -> tuple[LossTerm, ...]:
        """``mel``, ``post_mel``, ``duration``, the pitch predictor's (``pitch``), ``energy``,
        then the prosody module's (``gmm``, and ``global_gmm`` with ``use_global``)."""
        mel, post_mel, duration, energy = CORE_LOSS_TERMS
        pitch = PITCH_PREDICTORS.get(cfg.pitch_predictor.type).loss_terms(cfg.pitch_predictor)
        prosody = PROSODY.get(cfg.prosody.type).loss_terms(cfg.prosody)
        return (mel, post_mel, duration, *pitch, energy, *prosody)

    @classmethod
    def all_loss_terms(cls) -> tuple[LossTerm, ...]:
        """Every term a VC model of any choice of parts can produce, in canonical order."""
        mel, post_mel, duration, energy = CORE_LOSS_TERMS

        def terms(registry) -> list[LossTerm]:
            found = {t.name: t for _, part in registry for t in part.all_loss_terms()}
            return list(found.values())

        return (mel, post_mel, duration, *terms(PITCH_PREDICTORS), energy, *terms(PROSODY))

    def _encode(self, mel: Tensor, lf0: Tensor, energy: Tensor, lens: Tensor):
        """Source frames → (encoder output (B, Ls, hidden), reduced source mask (B, Ls))."""
        check_multiple(lens, self.r, "src_lens")
        x = stack_frames(mel, self.r)
        mask = reduced_mask(lens, self.r, x.shape[1])
        x = self.input_proj(x)
        if self.src_pitch_embed is not None:
            x = x + self.src_pitch_embed(stack_frames(lf0, self.r), mask)
            x = x + self.src_energy_embed(stack_frames(energy, self.r), mask)
        return self.encoder(x.masked_fill(~mask[..., None], 0.0), mask), mask

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        """Teacher-forced forward pass.

        Args:
            batch (Batch): padded batch (lengths multiples of ``r``).

        Returns:
            dict[str, Tensor]: ``mel`` and ``post_mel`` (B, Tt, n_mels); ``log_duration``
            (B, Ls) predicted ``log(d + 1)`` per reduced source frame; ``pitch`` and
            ``energy`` (B, Tt); ``src_mask`` (B, Ls) reduced and ``tgt_mask`` (B, Tt)
            frame-rate bool masks; and the prosody module's outputs (gmm: ``seg_mask``
            (B, K), ``prosody_target``, ``gmm_logits``, ``gmm_means``, ``gmm_log_scales``
            and, with ``use_global``, the ``global_`` versions; see
            :meth:`ProsodyModule.forward`).
        """
        r = self.r
        check_multiple(batch.tgt_lens, r, "tgt_lens")
        enc, src_mask = self._encode(batch.src_mel, batch.src_lf0, batch.src_energy, batch.src_lens)
        cond = batch.conditioning()
        enc = self.conditioning(enc, src_mask, "encoder", cond)
        n_frames = batch.tgt_mel.shape[1]
        tgt_mel = stack_frames(batch.tgt_mel, r)
        tgt_mask = reduced_mask(batch.tgt_lens, r, tgt_mel.shape[1])
        frame_mask = lengths_to_mask(batch.tgt_lens, n_frames)
        out: dict[str, Tensor] = {"src_mask": src_mask, "tgt_mask": frame_mask}
        src_ids, seg_mask = segment_ids(
            batch.src_seg, batch.n_seg, src_mask.sum(1), src_mask.shape[1]
        )
        tgt_ids, _ = segment_ids(batch.tgt_seg, batch.n_seg, tgt_mask.sum(1), tgt_mask.shape[1])
        enc, extra = self.prosody(
            enc, src_mask, src_ids, seg_mask.shape[1], tgt_mel, tgt_mask, tgt_ids, seg_mask
        )
        out.update(extra)
        out["log_duration"] = self._predict(self.duration_predictor, enc, src_mask, cond)[..., 0]
        durations = torch.zeros_like(src_mask, dtype=torch.long)
        width = min(batch.duration.shape[1], durations.shape[1])
        durations[:, :width] = batch.duration[:, :width]
        durations = durations.masked_fill(~src_mask, 0)
        x, _ = regulate_length(enc, durations, tgt_mel.shape[1])
        pitch_ids = target_ids(src_ids, durations, tgt_mel.shape[1])
        pitch_target = stack_frames(batch.tgt_lf0, r)
        energy_target = stack_frames(batch.tgt_energy, r)
        x, pitch, energy = self._variance(x, tgt_mask, pitch_ids, cond, pitch_target, energy_target)
        x = self.conditioning(x, tgt_mask, "decoder", cond)
        out["mel"], out["post_mel"] = self._decode(x, tgt_mask, frame_mask)
        out["pitch"], out["energy"] = self._frames(pitch, n_frames), self._frames(energy, n_frames)
        return out

    @torch.no_grad()
    def infer(
        self,
        src_mel: Tensor,
        src_lf0: Tensor,
        src_energy: Tensor,
        src_lens: Tensor,
        src_seg: Tensor | None = None,
        n_seg: Tensor | None = None,
        *,
        pitch_scale: float = 1.0,
        energy_scale: float = 1.0,
        duration_scale: float = 1.0,
        prosody: str = "mean",
        temperature: float = 1.0,
        stats: Mapping[str, float] | Any | None = None,
        cond: Cond | None = None,
    ) -> dict[str, Tensor]:
        """Convert a batch (the model runs in eval mode; its mode is restored afterwards).

        Args:
            src_mel (Tensor): normalised source log-mel, (B, Ts, n_mels).
            src_lf0 (Tensor): normalised source log-F0, (B, Ts).
            src_energy (Tensor): normalised source log energy, (B, Ts).
            src_lens (Tensor): source frames, (B,) long, multiples of ``r``.
            src_seg (Tensor | None): reduced source frames per segment, (B, K).
            n_seg (Tensor | None): real segments, (B,).
            pitch_scale (float): multiplies the predicted F0 in Hz (needs ``stats``).
            energy_scale (float): multiplies the predicted (linear) energy (needs ``stats``).
            duration_scale (float): multiplies the predicted durations before rounding.
            prosody (str): wGMM choice, ``mean`` or ``sample``.
            temperature (float): wGMM sampling temperature.
            stats: mapping or object with floats ``tgt_lf0_mean``, ``tgt_lf0_std``,
                ``tgt_energy_mean``, ``tgt_energy_std`` (the target normalisation).
            cond (Mapping[str, Tensor] | None): speaker/emotion ids (rows of the tag's
                speaker table), keys ``src_spk``, ``tgt_spk``, ``src_emo``, ``tgt_emo``, each
                (B,) long; a missing key (or None) is id 0. Ignored without conditioning.

        Returns:
            dict[str, Tensor]: ``mel`` (post-net) and ``mel_before`` (B, Tt, n_mels), ``pitch``
            and ``energy`` (B, Tt) normalised, ``duration`` (B, Ls) reduced frames,
            ``log_duration`` (B, Ls) as predicted, ``tgt_lens`` (B,) frames
            (``r * duration.sum(1)``), and the prosody module's outputs (gmm: ``prosody``
            (B, K, D), plus ``global_prosody`` (B, D)); those with one row per segment are
            named by :attr:`segment_outputs`.
        """
        check_scales(pitch_scale, energy_scale, duration_scale, stats)
        was_training = self.training
        self.eval()
        try:
            scales = (pitch_scale, energy_scale, duration_scale)
            features = (src_mel, src_lf0, src_energy, src_lens, src_seg, n_seg)
            return self._infer(*features, scales, prosody, temperature, stats, cond)
        finally:
            self.train(was_training)

    def _infer(self, mel, lf0, energy, lens, seg, n_seg, scales, mode, temperature, stats, cond):
        pitch_scale, energy_scale, duration_scale = scales
        r = self.r
        enc, src_mask = self._encode(mel, lf0, energy, lens)
        enc = self.conditioning(enc, src_mask, "encoder", cond)
        ids, seg_mask = segment_ids(seg, n_seg, src_mask.sum(1), src_mask.shape[1])
        enc, out = self.prosody.infer(enc, src_mask, ids, seg_mask.shape[1], mode, temperature)
        out = dict(out)
        log_duration = self._predict(self.duration_predictor, enc, src_mask, cond)[..., 0]
        durations = self._durations(log_duration, src_mask, duration_scale)
        x, lens_reduced = regulate_length(enc, durations)
        mask = lengths_to_mask(lens_reduced, x.shape[1])
        frame_mask = lengths_to_mask(lens_reduced * r, x.shape[1] * r)
        ids = target_ids(ids, durations, x.shape[1])
        x, pitch, energy = self._variance_infer(
            x, mask, ids, cond, (pitch_scale, energy_scale), stats
        )
        x = self.conditioning(x, mask, "decoder", cond)
        mel_before, mel_after = self._decode(x, mask, frame_mask)
        n_frames = frame_mask.shape[1]
        out.update(
            mel=mel_after,
            mel_before=mel_before,
            pitch=self._frames(pitch, n_frames),
            energy=self._frames(energy, n_frames),
            duration=durations,
            log_duration=log_duration,
            tgt_lens=lens_reduced * r,
        )
        return out


def build_model(
    cfg: ModelConfig,
    n_mels: int,
    reduction_factor: int,
    speakers: SpeakerTable | None = None,
    vocab_size: int | None = None,
) -> FastSpeech2Base:
    """Build the model of the family ``cfg.type`` names (:data:`MODEL_FAMILIES`).

    Args:
        cfg (ModelConfig): model settings.
        n_mels (int): mel bins.
        reduction_factor (int): frames per reduced frame ``r``.
        speakers (SpeakerTable | None): the tag's speaker table (``exp/<TAG>/speakers.json``,
            :meth:`SpeakerTable.load`), sizing the conditioning tables; None: ``src``/``tgt``.
        vocab_size (int | None): text input (``fastspeech2tts``): symbols incl. padding.

    Returns:
        FastSpeech2Base: a :class:`FastSpeech2VC` or a
        :class:`~vc_toolkit.models.fastspeech2tts.FastSpeech2TTS`.
    """
    family = MODEL_FAMILIES.get(cfg.type)
    return family.from_config(cfg, n_mels, reduction_factor, speakers, vocab_size)
