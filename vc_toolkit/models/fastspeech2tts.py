"""FastSpeech2-style text-to-speech with a learned aligner (``model.type: fastspeech2tts``).

Symbol ids are embedded (``token_embed``, id 0 is padding) and encoded by the same
Conformer/Transformer stack as VC (``encoder``). The durations come from a learned
aligner (``aligner``, :data:`~vc_toolkit.models.registry.ALIGNERS`): a soft alignment of
the reduced target mel frames over the tokens, trained with the forward-sum loss, and
turned into integer durations by monotonic alignment search [Badlani et al., "One TTS
Alignment To Rule Them All", ICASSP 2022; MAS: Kim et al., "Glow-TTS", NeurIPS 2020]; a
batch with fixed durations (``vc-align``) uses those instead. The binarisation loss
starts at ``model.aligner.bin_start_steps`` (the trainer tells the model its step by
:meth:`set_step`).

Everything after the encoder is the VC model's (:class:`~vc_toolkit.models.fs2base.
FastSpeech2Base`, same state-dict names): wGMM segment prosody over the token segments
(``tok_seg``; target segments through the durations), the log-duration predictor on the
tokens (target ``log(d + 1)`` of the aligner's durations), length regulation, pitch and
energy predictors with their embeddings, decoder, ``mel_proj`` and postnet [Ren et al.,
"FastSpeech 2", ICLR 2021]. ``model.variance_level`` places pitch and energy:

- ``frame``: on the length-regulated sequence, ``r`` values per reduced frame, exactly
  as VC (so these parts load into a VC model, :mod:`vc_toolkit.train.pretrain`);
- ``token``: one value per token, the mean over its frames (voiced frames for pitch),
  predicted and embedded before length regulation [Łańcucki, "FastPitch", ICASSP 2021].

Example:
    >>> from vc_toolkit.config.aligner import Aligner
    >>> from vc_toolkit.config.tag import ModelConfig, Postnet, Stack
    >>> cfg = ModelConfig(type="fastspeech2tts", hidden=8, encoder=Stack(layers=1,
    ...     kernel_size=3), decoder=Stack(layers=1, kernel_size=3), postnet=Postnet(layers=0),
    ...     aligner=Aligner(hidden=8))
    >>> model = FastSpeech2TTS(cfg, n_mels=4, reduction_factor=2, vocab_size=10)
    >>> out = model.infer(torch.tensor([[3, 4, 5]]), torch.tensor([3]))
    >>> out["mel"].shape[1] == int(out["tgt_lens"][0]) == 2 * int(out["duration"].sum())
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from vc_toolkit.config.tag import ModelConfig
from vc_toolkit.data.labels import SpeakerTable
from vc_toolkit.data.text_batch import TextBatch
from vc_toolkit.models.aligner import (
    binarization_loss,
    durations_from_alignment,
    forward_sum_loss,
    monotonic_alignment_search,
)
from vc_toolkit.models.blocks import BlockStack
from vc_toolkit.models.conditioning import Cond
from vc_toolkit.models.frames import check_multiple, lengths_to_mask, reduced_mask, stack_frames
from vc_toolkit.models.fs2base import FastSpeech2Base, check_scales, target_ids
from vc_toolkit.models.prosody import segment_ids
from vc_toolkit.models.registry import ALIGNERS, MODEL_FAMILIES, PITCH_PREDICTORS, PROSODY, LossTerm
from vc_toolkit.models.token_values import expand_tokens, hard_alignment, token_average
from vc_toolkit.models.tts_terms import ALIGNER_TERMS, tts_terms
from vc_toolkit.models.variance import regulate_length


@MODEL_FAMILIES.register("fastspeech2tts")
class FastSpeech2TTS(FastSpeech2Base):
    """FastSpeech2-style TTS model with a learned aligner.

    Args:
        cfg (ModelConfig): model settings (``type: fastspeech2tts``; ``aligner``, ``text``
            and ``variance_level`` apply; ``use_source_pitch_energy`` does not).
        n_mels (int): mel bins.
        reduction_factor (int): frames per reduced frame ``r``.
        vocab_size (int): symbols including the padding id 0 (``len(SymbolTable)``).
        speakers (SpeakerTable | None): names of the conditioning rows.

    ``input_parts``: the state-dict prefixes of the text side (token embedding, text encoder,
    aligner), which no VC model has with this meaning.
    """

    input_parts = ("token_embed", "encoder", "aligner")
    input_kind = "text"

    def __init__(
        self,
        cfg: ModelConfig,
        n_mels: int,
        reduction_factor: int,
        vocab_size: int,
        speakers: SpeakerTable | None = None,
    ) -> None:
        super().__init__()
        cfg.validate()
        if reduction_factor < 1:
            raise ValueError(f"reduction_factor must be >= 1, got {reduction_factor}")
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (padding 0 and a symbol), got {vocab_size}")
        h, r = cfg.hidden, reduction_factor
        self.cfg, self.n_mels, self.r, self.vocab_size = cfg, n_mels, r, vocab_size
        self.token_level = cfg.variance_level == "token"
        self.token_embed = nn.Embedding(vocab_size, h, padding_idx=0)
        self.encoder = BlockStack(cfg.encoder, h)
        self.aligner = ALIGNERS.get(cfg.aligner.type)(h, n_mels * r, cfg.aligner)
        self._build_adaptor(cfg, n_mels, r, speakers, values=1 if self.token_level else r)
        self._init_weights()
        self.step = 0

    @classmethod
    def from_config(
        cls,
        cfg: ModelConfig,
        n_mels: int,
        reduction_factor: int,
        speakers: SpeakerTable | None = None,
        vocab_size: int | None = None,
    ) -> FastSpeech2TTS:
        """Build from the tag's model block (:func:`vc_toolkit.models.build_model`).

        Raises:
            ValueError: no ``vocab_size`` (the spk's symbol table size).
        """
        if vocab_size is None:
            raise ValueError(
                "model.type fastspeech2tts needs vocab_size: the size of the spk's symbol "
                "table (dump/<SPK>/symbols.json)"
            )
        return cls(cfg, n_mels, reduction_factor, vocab_size, speakers)

    @classmethod
    def loss_terms(cls, cfg: ModelConfig) -> tuple[LossTerm, ...]:
        """:func:`~vc_toolkit.models.tts_terms.tts_terms` with the prosody module's terms."""
        PITCH_PREDICTORS.get(cfg.pitch_predictor.type)  # an unknown choice fails here too
        return tts_terms(PROSODY.get(cfg.prosody.type).loss_terms(cfg.prosody))

    @classmethod
    def all_loss_terms(cls) -> tuple[LossTerm, ...]:
        """Every term a TTS model of any choice of parts can produce."""
        found = {t.name: t for _, part in PROSODY for t in part.all_loss_terms()}
        return tts_terms(tuple(found.values()))

    @classmethod
    def own_loss_terms(cls) -> tuple[LossTerm, ...]:
        """The terms no VC model has (``forward_sum``, ``bin``)."""
        return ALIGNER_TERMS

    def _encode(self, tokens: Tensor, lens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Symbol ids (B, N) → (embeddings, encoder output (B, N, hidden), mask (B, N))."""
        mask = lengths_to_mask(lens, tokens.shape[1])
        emb = self.token_embed(tokens.masked_fill(~mask, 0)).masked_fill(~mask[..., None], 0.0)
        return emb, self.encoder(emb, mask), mask

    def _align(self, text: Tensor, tok_mask: Tensor, mel: Tensor, mel_mask: Tensor, fixed):
        """Soft and hard alignment, durations (B, N) long and the two aligner losses."""
        tok_lens, mel_lens = tok_mask.sum(1), mel_mask.sum(1)
        log_attn, _ = self.aligner(text, tok_mask, mel, mel_mask)
        if fixed is None:
            with torch.no_grad():
                hard = monotonic_alignment_search(log_attn.detach(), tok_lens, mel_lens)
            durations = durations_from_alignment(hard)
        else:
            durations = torch.zeros_like(tok_mask, dtype=torch.long)
            width = min(fixed.shape[1], durations.shape[1])
            durations[:, :width] = fixed[:, :width]
            durations = durations.masked_fill(~tok_mask, 0)
            if not torch.equal(durations.sum(1), mel_lens):
                raise ValueError(
                    f"fixed durations sum to {durations.sum(1).tolist()} reduced frames, the "
                    f"mels have {mel_lens.tolist()}; rewrite them with vc-align"
                )
            hard = hard_alignment(durations, mel.shape[1]).to(log_attn.dtype)
        blank = self.cfg.aligner.blank_logprob
        fsum = forward_sum_loss(log_attn, tok_lens, mel_lens, blank_logprob=blank)
        scale = self.cfg.aligner.bin_scale(self.step)
        binary = fsum.new_zeros(())
        if scale:
            binary = scale * binarization_loss(hard, log_attn, mel_mask)
        out = {"log_attn": log_attn, "attn_hard": hard, "forward_sum": fsum, "bin": binary}
        return out, durations

    def _aligned(self, batch: TextBatch, cond: Cond | None):
        """Encoder output (conditioned), token mask, reduced target mel and mask, the
        aligner's outputs and the durations (B, N) long of ``batch``."""
        check_multiple(batch.tgt_lens, self.r, "tgt_lens")
        emb, enc, tok_mask = self._encode(batch.tokens, batch.token_lens)
        enc = self.conditioning(enc, tok_mask, "encoder", cond)
        tgt_mel = stack_frames(batch.tgt_mel, self.r)
        tgt_mask = reduced_mask(batch.tgt_lens, self.r, tgt_mel.shape[1])
        text = emb if self.cfg.text.aligner_input == "embedding" else enc
        out, durations = self._align(text, tok_mask, tgt_mel, tgt_mask, batch.duration)
        return enc, tok_mask, tgt_mel, tgt_mask, out, durations

    @torch.no_grad()
    def align(self, batch: TextBatch) -> dict[str, Tensor]:
        """The aligner's durations of sentences with their recordings (``vc-align``).

        Runs in eval mode (restored afterwards); fixed durations in ``batch`` are ignored.

        Args:
            batch (TextBatch): sentences and their target features.

        Returns:
            dict[str, Tensor]: ``duration`` (B, N) long reduced frames per token (MAS, sums
            to ``tgt_lens // r``), ``log_attn`` and ``attn_hard`` (B, Lt, N).
        """
        was_training = self.training
        self.eval()
        try:
            free = dataclasses.replace(batch, duration=None)
            _, _, _, _, out, durations = self._aligned(free, batch.conditioning())
        finally:
            self.train(was_training)
        return {"duration": durations, "log_attn": out["log_attn"], "attn_hard": out["attn_hard"]}

    def forward(self, batch: TextBatch) -> dict[str, Tensor]:
        """Teacher-forced forward pass (durations from the aligner, or the batch's).

        Args:
            batch (TextBatch): padded batch (``tgt_lens`` multiples of ``r``; every sentence
                needs at least as many reduced frames as tokens).

        Returns:
            dict[str, Tensor]: ``mel``, ``post_mel`` (B, Tt, n_mels); ``log_duration`` (B, N)
            predicted, ``duration_target`` (B, N) the aligner's durations; ``pitch``,
            ``energy`` with their ``pitch_target``, ``energy_target`` and ``variance_mask``
            ((B, Tt) at frame level, (B, N) at token level); ``src_mask`` (B, N) tokens,
            ``tgt_mask`` (B, Tt) frames, ``align_mask`` (B, Lt) reduced frames;
            ``log_attn`` (B, Lt, N) soft and ``attn_hard`` (B, Lt, N) hard alignment;
            ``forward_sum`` and ``bin`` (scalars); and the prosody module's outputs.
        """
        r, cond = self.r, batch.conditioning()
        enc, tok_mask, tgt_mel, tgt_mask, out, durations = self._aligned(batch, cond)
        n_frames = batch.tgt_mel.shape[1]
        frame_mask = lengths_to_mask(batch.tgt_lens, n_frames)
        out.update(src_mask=tok_mask, tgt_mask=frame_mask, align_mask=tgt_mask)
        src_ids, seg_mask = segment_ids(
            batch.tok_seg, batch.n_seg, batch.token_lens, tok_mask.shape[1]
        )
        tgt_ids = target_ids(src_ids, durations, tgt_mel.shape[1])
        enc, extra = self.prosody(
            enc, tok_mask, src_ids, seg_mask.shape[1], tgt_mel, tgt_mask, tgt_ids, seg_mask
        )
        out.update(extra)
        out["log_duration"] = self._predict(self.duration_predictor, enc, tok_mask, cond)[..., 0]
        out["duration_target"] = durations
        if self.token_level:
            voiced = batch.tgt_vuv * frame_mask
            pitch_t = token_average(batch.tgt_lf0, voiced, durations, r)
            unvoiced = token_average(batch.tgt_lf0, frame_mask.float(), durations, r)
            has_voiced = token_average(voiced, frame_mask.float(), durations, r) > 0
            pitch_t = torch.where(has_voiced, pitch_t, unvoiced)
            energy_t = token_average(batch.tgt_energy, frame_mask.float(), durations, r)
            x, pitch, energy = self._variance(
                enc, tok_mask, src_ids, cond, pitch_t[..., None], energy_t[..., None]
            )
            x, _ = regulate_length(x, durations, tgt_mel.shape[1])
            out.update(pitch=pitch[..., 0], energy=energy[..., 0])
            out.update(pitch_target=pitch_t, energy_target=energy_t)
            out["variance_mask"] = tok_mask & (durations > 0)
        else:
            x, _ = regulate_length(enc, durations, tgt_mel.shape[1])
            pitch_t, energy_t = stack_frames(batch.tgt_lf0, r), stack_frames(batch.tgt_energy, r)
            x, pitch, energy = self._variance(x, tgt_mask, tgt_ids, cond, pitch_t, energy_t)
            out.update(pitch=self._frames(pitch, n_frames), energy=self._frames(energy, n_frames))
            out.update(pitch_target=batch.tgt_lf0, energy_target=batch.tgt_energy)
            out["variance_mask"] = frame_mask
        x = self.conditioning(x, tgt_mask, "decoder", cond)
        out["mel"], out["post_mel"] = self._decode(x, tgt_mask, frame_mask)
        return out

    @torch.no_grad()
    def infer(
        self,
        tokens: Tensor,
        token_lens: Tensor,
        tok_seg: Tensor | None = None,
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
        """Synthesise a batch of sentences (eval mode; the mode is restored afterwards).

        Args:
            tokens (Tensor): symbol ids, (B, N) long, 0-padded.
            token_lens (Tensor): tokens per sentence, (B,) long.
            tok_seg (Tensor | None): tokens per segment, (B, K) (None: one segment).
            n_seg (Tensor | None): real segments, (B,).
            pitch_scale, energy_scale, duration_scale, prosody, temperature, stats, cond:
                as :meth:`vc_toolkit.models.fastspeech2vc.FastSpeech2VC.infer`.

        Returns:
            dict[str, Tensor]: as :meth:`FastSpeech2VC.infer`: ``mel`` and ``mel_before``
            (B, Tt, n_mels), ``pitch`` and ``energy`` (B, Tt) normalised (token values
            repeated over their frames at token level), ``duration`` and ``log_duration``
            (B, N) per token, ``tgt_lens`` (B,) frames (``r * duration.sum(1)``), and the
            prosody module's outputs (:attr:`segment_outputs` per segment).
        """
        check_scales(pitch_scale, energy_scale, duration_scale, stats)
        was_training = self.training
        self.eval()
        try:
            scales = (pitch_scale, energy_scale, duration_scale)
            args = (tokens, token_lens, tok_seg, n_seg, scales, prosody, temperature, stats)
            return self._infer(*args, cond)
        finally:
            self.train(was_training)

    def _infer(self, tokens, lens, seg, n_seg, scales, mode, temperature, stats, cond):
        r, (pitch_scale, energy_scale, duration_scale) = self.r, scales
        _, enc, tok_mask = self._encode(tokens, lens)
        enc = self.conditioning(enc, tok_mask, "encoder", cond)
        ids, seg_mask = segment_ids(seg, n_seg, tok_mask.sum(1), tok_mask.shape[1])
        enc, out = self.prosody.infer(enc, tok_mask, ids, seg_mask.shape[1], mode, temperature)
        out = dict(out)
        log_duration = self._predict(self.duration_predictor, enc, tok_mask, cond)[..., 0]
        durations = self._durations(log_duration, tok_mask, duration_scale)
        vscales = (pitch_scale, energy_scale)
        if self.token_level:
            x, pitch, energy = self._variance_infer(enc, tok_mask, ids, cond, vscales, stats)
            x, lens_reduced = regulate_length(x, durations)
            n_frames = x.shape[1] * r
            pitch = expand_tokens(pitch[..., 0], durations, r, n_frames)
            energy = expand_tokens(energy[..., 0], durations, r, n_frames)
            mask = lengths_to_mask(lens_reduced, x.shape[1])
        else:
            x, lens_reduced = regulate_length(enc, durations)
            mask = lengths_to_mask(lens_reduced, x.shape[1])
            ids = target_ids(ids, durations, x.shape[1])
            x, pitch, energy = self._variance_infer(x, mask, ids, cond, vscales, stats)
            n_frames = x.shape[1] * r
            pitch, energy = self._frames(pitch, n_frames), self._frames(energy, n_frames)
        frame_mask = lengths_to_mask(lens_reduced * r, n_frames)
        x = self.conditioning(x, mask, "decoder", cond)
        mel_before, mel_after = self._decode(x, mask, frame_mask)
        out.update(
            mel=mel_after,
            mel_before=mel_before,
            pitch=pitch.masked_fill(~frame_mask, 0.0),
            energy=energy.masked_fill(~frame_mask, 0.0),
            duration=durations,
            log_duration=log_duration,
            tgt_lens=lens_reduced * r,
        )
        return out
