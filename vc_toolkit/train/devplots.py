"""Dev examples for TensorBoard: mel and pitch images, converted audio (Griffin-Lim)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from vc_toolkit import plots
from vc_toolkit.data.batch import collate
from vc_toolkit.features.pitch import output_voicing, voiced_f0
from vc_toolkit.features.stats import denormalize_lf0, denormalize_mel
from vc_toolkit.train.reporting import RunLog
from vc_toolkit.train.setup import Experiment


def _f0(lf0: np.ndarray, vuv: np.ndarray | None, stats: dict) -> np.ndarray:
    f0 = np.exp(denormalize_lf0(lf0, stats, side="tgt"))
    return f0 if vuv is None else np.where(vuv > 0.5, f0, 0.0)


@torch.no_grad()
def log_dev_examples(exp: Experiment, runlog: RunLog, step: int) -> None:
    """Draw the first ``train.dev_images`` dev utterances (target vs prediction)."""
    from vc_toolkit.vocoder import build_vocoder
    from vc_toolkit.vocoder.base import locate

    n = min(exp.cfg.train.dev_images, len(exp.dev_set))
    if n == 0:
        return
    model = exp.core
    was_training = model.training
    model.eval()
    batch = collate([exp.dev_set[i] for i in range(n)]).to(exp.device)
    forced = model(batch)
    conv = model.infer(
        batch.src_mel, batch.src_lf0, batch.src_energy, batch.src_lens, batch.src_seg, batch.n_seg
    )
    model.train(was_training)
    voc_cfg = copy.deepcopy(exp.cfg.infer.vocoder)
    locate(voc_cfg, exp.layout)
    vocoder = build_vocoder(voc_cfg, exp.spk_cfg, device=exp.device)
    frame_s = exp.spk_cfg.feats.mel.hop_length / exp.spk_cfg.sample_rate
    for i, utt in enumerate(batch.utt_ids):
        tl, sl, cl = int(batch.tgt_lens[i]), int(batch.src_lens[i]), int(conv["tgt_lens"][i])
        tgt = batch.tgt_mel[i, :tl].cpu().numpy()
        fig = plots.mel_figure(
            [
                ("source", batch.src_mel[i, :sl].cpu().numpy()),
                ("target", tgt),
                ("predicted (teacher-forced durations)", forced["post_mel"][i, :tl].cpu().numpy()),
                ("converted (predicted durations)", conv["mel"][i, :cl].cpu().numpy()),
            ],
            title=utt,
        )
        runlog.figure(f"dev_mel/{utt}", fig, step)
        vuv = batch.tgt_vuv[i, :tl].cpu().numpy()
        fig = plots.f0_figure(
            [
                ("target", _f0(batch.tgt_lf0[i, :tl].cpu().numpy(), vuv, exp.stats)),
                ("predicted", _f0(forced["pitch"][i, :tl].cpu().numpy(), vuv, exp.stats)),
            ],
            frame_s,
            title=f"{utt} (target voicing)",
        )
        runlog.figure(f"dev_f0/{utt}", fig, step)
        mel = denormalize_mel(conv["mel"][i, :cl].cpu().numpy(), exp.stats, side="tgt")
        f0 = None
        if vocoder.uses_f0:  # the predicted F0, voiced where the source was (as stage 3 does)
            lf0 = denormalize_lf0(conv["pitch"][i, :cl].cpu().numpy(), exp.stats, side="tgt")
            n_src = sl // exp.spk_cfg.reduction_factor
            duration = conv["duration"][i, :n_src].cpu().numpy()
            vuv = output_voicing(batch.src_vuv[i, :sl].cpu().numpy(), duration, model.r)
            f0 = voiced_f0(lf0, vuv)
        runlog.audio(f"dev_audio/{utt}", vocoder(mel, f0), exp.spk_cfg.sample_rate, step)
