"""Figure 3: training throughput per model preset and predictor type.

Each variant is set up exactly as stage 2 sets up a tag
(:func:`vc_toolkit.train.setup.setup`, into a temporary folder, nothing
written) and runs real optimizer steps (:meth:`vc_toolkit.train.loop.Trainer._step`)
on batches from the tag's own data loader, in the training order of epoch 0.
Per step it records the time spent waiting for the batch (data loader) and the
time of the step, as the training loop logs them. The first ``warmup`` steps
are not counted (allocator and thread-pool start-up).

Seconds per epoch are extrapolated from the measured throughput:
``target frames of the train split / target frames per second``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from timing import summarize

from vc_toolkit.config import TagConfig, build, load_tag, to_dict
from vc_toolkit.config.resolve import deep_merge, load_raw
from vc_toolkit.paths import Layout

PREDICTORS = {
    "conv": {"pitch_predictor": {"type": "conv"}, "prosody": {"type": "none"}},
    "ar": {"pitch_predictor": {"type": "ar"}, "prosody": {"type": "none"}},
    "arnar": {"pitch_predictor": {"type": "arnar"}, "prosody": {"type": "none"}},
    "gmm": {"pitch_predictor": {"type": "conv"}, "prosody": {"type": "gmm", "use_global": True}},
}
"""Model overrides of each predictor variant (``gmm``: wGMM segment prosody, conv pitch)."""


def variant_config(
    layout: Layout, tag: str, predictor: str, preset: str | None = None, threads: int | None = None
) -> TagConfig:
    """``tag``'s resolved config with another predictor type and optionally another preset.

    Args:
        layout: Recipe root.
        tag: Base experiment, e.g. ``demo_conv``.
        predictor: ``conv``, ``ar``, ``arnar`` or ``gmm`` (see :data:`PREDICTORS`).
        preset: ``conf/model/<preset>.yaml`` replacing the tag's model block (None: keep it).
        threads: ``train.num_threads`` (None: keep the tag's).

    Raises:
        ValueError: unknown predictor.
    """
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}; use one of {', '.join(PREDICTORS)}")
    data = to_dict(load_tag(tag, layout.root))
    if preset is not None:
        model, _ = load_raw(layout, "model", preset)
        data["model"] = {**model, "preset": preset}
    data["model"] = deep_merge(data["model"], PREDICTORS[predictor])
    if threads is not None:
        data["train"]["num_threads"] = threads
    return build(TagConfig, data, where=f"bench variant of tag {tag} ({preset}, {predictor})")


def _batches(exp):
    """Endless batches in training order (epoch 0, 1, ...), each with its waiting time."""
    epoch = 0
    while True:
        exp.sampler.set_epoch(epoch)
        gen = torch.Generator()
        gen.manual_seed(exp.cfg.train.seed * 1000003 + epoch)
        loader = iter(exp.train_loader(gen))
        while True:
            start = time.perf_counter()
            try:
                batch = next(loader)
            except StopIteration:
                break
            yield batch, time.perf_counter() - start
        epoch += 1


def bench_training(layout: Layout, tag: str, cfg: TagConfig, steps: int, warmup: int = 2) -> dict:
    """Throughput of ``steps`` training steps of ``cfg`` (after ``warmup`` uncounted steps).

    Args:
        layout: Recipe root (the spk's features built).
        tag: Name used for the run (nothing is written under it).
        cfg: Resolved tag config, e.g. from :func:`variant_config`.
        steps: Measured steps (>= 1).
        warmup: Steps run first and not counted.

    Returns:
        ``params``, ``threads``, ``batch_size``, ``steps``, and summarised per-step
        ``frames_per_second`` (target frames), ``step_seconds`` (wait + step),
        ``loader_share`` (wait / (wait + step)) and ``epoch_seconds`` (extrapolated).
    """
    from vc_toolkit.train.loop import Trainer
    from vc_toolkit.train.setup import setup

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    with tempfile.TemporaryDirectory(prefix="vc-bench-train-") as tmp:
        exp = setup(tag, layout, "cpu", cfg=cfg, exp_dir=Path(tmp), write=False)
        trainer = Trainer(exp, save_checkpoints=False)
        epoch_frames = float(exp.train_set.tgt_frames.sum())
        fps, total, share = [], [], []
        batches = _batches(exp)
        for k in range(warmup + steps):
            batch, wait = next(batches)
            start = time.perf_counter()
            trainer._step(batch.to(exp.device))
            compute = time.perf_counter() - start
            if k < warmup:
                continue
            frames = float(batch.tgt_lens.sum())
            fps.append(frames / (wait + compute))
            total.append(wait + compute)
            share.append(wait / (wait + compute))
        return {
            "params": exp.core.num_params(),
            "threads": torch.get_num_threads(),
            "batch_size": cfg.train.batch_size,
            "steps": steps,
            "warmup_steps": warmup,
            "frames_per_second": summarize(fps),
            "step_seconds": summarize(total),
            "loader_share": summarize(share),
            "epoch_seconds": summarize([epoch_frames / f for f in fps]),
        }
