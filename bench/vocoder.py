"""Figure 6: vocoder training speed and memory per generator/discriminator size.

HiFi-GAN training steps (discriminator then generator update, as
:class:`vc_toolkit.train.voc_loop.VocoderTrainer` runs them) on the spk's training
pairs, without writing anything under ``exp/``: seconds per step, audio samples per
second, and the steps the 15-minute CPU budget of a voc would allow. Vocoding
real-time factors per preset are in the conversion figure
(:func:`conversion.bench_conversion`); peak memory of a training step in the memory
figure (``memory.py voc``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from timing import summarize

from vc_toolkit.config import VocConfig, build, load_spk
from vc_toolkit.paths import Layout

SIZES = {"tiny": ("tiny", "tiny"), "v1": ("v1", "paper")}
"""Generator preset and discriminator preset of each measured size."""


def voc_config(spk: str, size: str, batch_size: int = 8, frames: int = 32) -> VocConfig:
    """A voc of ``size`` (:data:`SIZES`) on ``spk`` with the demo voc's batch shape."""
    gen, disc = SIZES[size]
    data = {
        "spk": spk,
        "generator": {"preset": gen},
        "discriminator": {"preset": disc},
        "train": {"batch_size": batch_size, "segment_frames": frames, "num_threads": 2},
    }
    return build(VocConfig, data, where=f"bench voc {size}")


def trainer(layout: Layout, cfg: VocConfig, folder: Path):
    """A :class:`VocoderTrainer` that writes nothing (pairs are cached in the spk's dump)."""
    from vc_toolkit.train.ddp import World
    from vc_toolkit.train.voc_loop import VocoderTrainer
    from vc_toolkit.train.voc_setup import (
        VocExperiment,
        _optimizers,
        build_generator,
        prepare_pairs,
    )
    from vc_toolkit.vocoder.discriminators import HiFiGANDiscriminator, discriminator_config

    spk_cfg = load_spk(cfg.spk, layout.root)
    torch.manual_seed(0)
    gen = build_generator(cfg, spk_cfg).init_weights().apply_weight_norm()
    disc = HiFiGANDiscriminator(discriminator_config(cfg.discriminator.preset))
    pairs = prepare_pairs(layout, cfg, spk_cfg, folder, nj=2)
    exp = VocExperiment(
        "bench", cfg, spk_cfg, layout, folder, torch.device("cpu"), World(), gen, disc,
        *_optimizers(cfg, gen, disc), pairs=pairs, fingerprint={"fingerprint": None},
        write=False,
    )  # fmt: skip
    return VocoderTrainer(exp)


def bench_vocoder_training(layout: Layout, spk: str, size: str, steps: int, warmup: int) -> dict:
    """Seconds per step and audio samples per second of ``steps`` timed steps of ``size``."""
    torch.set_num_threads(2)
    cfg = voc_config(spk, size)
    with tempfile.TemporaryDirectory(prefix="vc-bench-voc-") as tmp:
        tr = trainer(layout, cfg, Path(tmp))
        batches = iter(tr._loader())
        secs = []
        batch = next(batches)
        for k in range(warmup + steps):
            start = time.perf_counter()
            tr._step(batch)
            if k >= warmup:
                secs.append(time.perf_counter() - start)
        samples = float(batch.audio.numel())
        shape = tuple(batch.audio.shape)
        g = sum(p.numel() for p in tr.exp.core_generator.parameters())
        d = sum(p.numel() for p in tr.exp.core_discriminator.parameters())
    return {
        "generator": SIZES[size][0],
        "discriminator": SIZES[size][1],
        "generator_params": g,
        "discriminator_params": d,
        "batch_size": shape[0],
        "segment_samples": shape[1],
        "step_seconds": summarize(secs),
        "samples_per_second": summarize([samples / s for s in secs]),
        "steps_in_15_min": int(900 / max(sorted(secs)[len(secs) // 2], 1e-9)),
    }
