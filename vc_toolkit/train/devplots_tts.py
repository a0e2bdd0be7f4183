"""Dev examples of a TTS tag for TensorBoard: mels, F0, the alignment, synthesised audio.

For the first ``train.dev_images`` dev sentences: the recording's mel against the
teacher-forced prediction (the aligner's durations) and the synthesis (predicted
durations); the F0 of the recording against the teacher-forced prediction; the soft
alignment with its hard (MAS) alignment (``dev_align/<utt>``); and the synthesis through
the tag's vocoder. A vocoder that needs F0 gets the predicted F0, voiced on the tokens
that are mostly voiced in the recording (a preview; stage 3 decides voicing its own way).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from vc_toolkit import plots
from vc_toolkit.features.pitch import voiced_f0
from vc_toolkit.features.stats import denormalize_lf0, denormalize_mel
from vc_toolkit.models.aligner import attention_image
from vc_toolkit.models.frames import lengths_to_mask
from vc_toolkit.models.token_values import expand_tokens, token_average


def _f0(lf0: np.ndarray, vuv: np.ndarray, stats: dict) -> np.ndarray:
    return np.where(vuv > 0.5, np.exp(denormalize_lf0(lf0, stats, side="tgt")), 0.0)


@torch.no_grad()
def log_tts_dev_examples(exp, runlog, step: int) -> None:
    """Draw the first ``train.dev_images`` dev sentences (see the module docstring).

    Args:
        exp: The :class:`~vc_toolkit.train.setup.Experiment` of a ``fastspeech2tts`` tag.
        runlog: Its :class:`~vc_toolkit.train.reporting.RunLog`.
        step: The TensorBoard step.
    """
    from vc_toolkit.vocoder import build_vocoder
    from vc_toolkit.vocoder.base import locate

    n = min(exp.cfg.train.dev_images, len(exp.dev_set))
    if n == 0:
        return
    model, r = exp.core, exp.spk_cfg.reduction_factor
    was_training = model.training
    model.eval()
    batch = exp.family.collate([exp.dev_set[i] for i in range(n)]).to(exp.device)
    forced = model(batch)
    synth = model.infer(batch.tokens, batch.token_lens, batch.tok_seg, batch.n_seg)
    model.train(was_training)
    frame_mask = lengths_to_mask(batch.tgt_lens, batch.tgt_mel.shape[1]).float()
    durations = forced["duration_target"]
    token_voiced = token_average(batch.tgt_vuv, frame_mask, durations, r) > 0.5
    synth_voiced = expand_tokens(token_voiced.float(), synth["duration"], r)
    voc_cfg = copy.deepcopy(exp.cfg.infer.vocoder)
    locate(voc_cfg, exp.layout)
    vocoder = build_vocoder(voc_cfg, exp.spk_cfg, device=exp.device)
    frame_s = exp.spk_cfg.feats.mel.hop_length / exp.spk_cfg.sample_rate
    for i, utt in enumerate(batch.utt_ids):
        tl, sl = int(batch.tgt_lens[i]), int(synth["tgt_lens"][i])
        n_tok = int(batch.token_lens[i])
        panels = [
            ("recording", batch.tgt_mel[i, :tl].cpu().numpy()),
            ("predicted (aligner durations)", forced["post_mel"][i, :tl].cpu().numpy()),
            ("synthesised (predicted durations)", synth["mel"][i, :sl].cpu().numpy()),
        ]
        runlog.figure(f"dev_mel/{utt}", plots.mel_figure(panels, title=utt), step)
        vuv = batch.tgt_vuv[i, :tl].cpu().numpy()
        pitch = forced["pitch"][i : i + 1]
        if pitch.shape[1] != batch.tgt_mel.shape[1]:  # token level: per token → frames
            pitch = expand_tokens(pitch, durations[i : i + 1], r, batch.tgt_mel.shape[1])
        curves = [
            ("recording", _f0(batch.tgt_lf0[i, :tl].cpu().numpy(), vuv, exp.stats)),
            ("predicted", _f0(pitch[0, :tl].cpu().numpy(), vuv, exp.stats)),
        ]
        title = f"{utt} (recording's voicing)"
        runlog.figure(f"dev_f0/{utt}", plots.f0_figure(curves, frame_s, title=title), step)
        lt = tl // r
        fig = attention_image(forced["log_attn"][i], forced["attn_hard"][i], n_tok, lt, utt)
        runlog.figure(f"dev_align/{utt}", fig, step)
        mel = denormalize_mel(synth["mel"][i, :sl].cpu().numpy(), exp.stats, side="tgt")
        f0 = None
        if vocoder.uses_f0:
            lf0 = denormalize_lf0(synth["pitch"][i, :sl].cpu().numpy(), exp.stats, side="tgt")
            f0 = voiced_f0(lf0, synth_voiced[i, :sl].cpu().numpy() > 0.5)
        runlog.audio(f"dev_audio/{utt}", vocoder(mel, f0), exp.spk_cfg.sample_rate, step)
