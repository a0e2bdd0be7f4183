"""Figure 4: conversion speed as real-time factors (compute seconds / output audio seconds).

The acoustic model runs :meth:`FastSpeech2VC.infer` with random weights on real
source utterances of the spk's dev split (padding included, as stage 3 times
it). Speed does not depend on training except through the predicted
durations, so the duration predictor's output layer is set to predict one
reduced target frame per reduced source frame: the output is exactly as long
as the source, whatever the weights. The autoregressive pitch loop
(:meth:`ARPitchPredictor.generate`) is also timed on its own.

Vocoders get the dev utterances' target log-mels: Griffin-Lim with the tag's
settings (:class:`vc_toolkit.vocoder.base.GriffinLim`) and a HiFi-GAN generator
of V1 size [Kong et al., NeurIPS 2020] with random weights, loaded through
:class:`vc_toolkit.vocoder.base.HiFiGAN` from a temporary checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from timing import interleave, ratios, summarize

from vc_toolkit.config import SpkConfig, TagConfig
from vc_toolkit.data.batch import collate_sources
from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.features.stats import denormalize_mel, load_stats
from vc_toolkit.models import FastSpeech2VC, build_model
from vc_toolkit.paths import Layout
from vc_toolkit.vocoder import GriffinLim, HiFiGAN, Vocoder
from vc_toolkit.vocoder.hifigan_generator import Generator, GeneratorConfig, generator_config

HIFIGAN_V1 = GeneratorConfig(
    num_mels=80,
    upsample_rates=(8, 8, 2, 2),
    upsample_kernel_sizes=(16, 16, 4, 4),
    upsample_initial_channel=512,
    resblock="1",
    resblock_kernel_sizes=(3, 7, 11),
    resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
)
"""HiFi-GAN V1 (hop 256, 80 mel bins) as in the original ``config_v1.json``."""


def acoustic_model(cfg: TagConfig, spk: SpkConfig, seed: int = 0) -> FastSpeech2VC:
    """A randomly initialised model whose durations are all one reduced frame (eval mode)."""
    torch.manual_seed(seed)
    model = build_model(cfg.model, spk.feats.mel.n_mels, spk.reduction_factor).eval()
    with torch.no_grad():
        proj = model.duration_predictor.proj
        proj.weight.zero_()
        proj.bias.fill_(math.log(2.0))  # exp(log_duration) - 1 = 1
    return model


def pick_items(split: DumpSplit, n: int) -> list[dict]:
    """``n`` utterances of ``split`` whose lengths are closest to the median (shortest first)."""
    order = np.argsort(split.src_frames, kind="stable")
    mid = len(order) // 2
    start = max(0, min(mid - n // 2, len(order) - n))
    return [split[int(i)] for i in order[start : start + n]]


@contextlib.contextmanager
def _timed_ar_loop(model: FastSpeech2VC, out: dict) -> Iterator[None]:
    """Add the seconds of the AR pitch loop (if the model has one) to ``out["ar"]``."""
    pred = model.pitch_predictor
    if not hasattr(pred, "generate"):
        yield
        return
    original = pred.generate

    def generate(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            out["ar"] = out.get("ar", 0.0) + time.perf_counter() - start

    pred.generate = generate
    try:
        yield
    finally:
        del pred.generate


def time_acoustic(model: FastSpeech2VC, items: list[dict], spk: SpkConfig) -> dict:
    """One timed conversion of ``items``: ``seconds``, ``audio_seconds``, ``ar_seconds``."""
    loop: dict[str, float] = {}
    with _timed_ar_loop(model, loop):
        start = time.perf_counter()
        x = collate_sources(items)
        out = model.infer(
            x["src_mel"], x["src_lf0"], x["src_energy"], x["src_lens"], x["src_seg"], x["n_seg"]
        )
        seconds = time.perf_counter() - start
    frames = float(out["tgt_lens"].sum())
    audio = frames * spk.feats.mel.hop_length / spk.sample_rate
    return {"seconds": seconds, "audio_seconds": audio, "ar_seconds": loop.get("ar", 0.0)}


def bench_acoustic(
    models: dict[str, FastSpeech2VC], items: list[dict], spk: SpkConfig, reps: int
) -> dict:
    """RTF of each model on ``items`` (interleaved), the AR loop's RTF, and ratios to conv.

    Args:
        models: Variant name (``conv``, ``ar``, ``arnar``, ``gmm``) → model from
            :func:`acoustic_model`.
        items: Dump items converted as one batch.
        spk: The spk config (hop and sample rate of the output).
        reps: Repetitions after one uncounted warm-up round.

    Returns:
        ``utterances``, ``audio_seconds`` and per variant ``rtf`` (and for the
        autoregressive ones ``ar_loop_rtf`` and ``ar_loop_share``), plus ``<variant>_over_conv``
        (per-repetition time ratio) for every variant beside ``conv``.
    """
    for model in models.values():
        time_acoustic(model, items, spk)
    runs = interleave(
        {k: (lambda m=m: time_acoustic(m, items, spk)) for k, m in models.items()}, reps
    )
    out: dict = {
        "utterances": len(items),
        "audio_seconds": next(iter(runs.values()))[0]["audio_seconds"],
    }
    for name, rs in runs.items():
        rec = {"rtf": summarize([r["seconds"] / r["audio_seconds"] for r in rs])}
        if any(r["ar_seconds"] for r in rs):
            rec["ar_loop_rtf"] = summarize([r["ar_seconds"] / r["audio_seconds"] for r in rs])
            rec["ar_loop_share"] = summarize([r["ar_seconds"] / r["seconds"] for r in rs])
        out[name] = rec
    if "conv" in runs:
        conv = [r["seconds"] for r in runs["conv"]]
        for name in runs:
            if name != "conv":
                secs = [r["seconds"] for r in runs[name]]
                out[f"{name}_over_conv"] = summarize(ratios(secs, conv))
    return out


def random_hifigan(spk: SpkConfig, folder: Path, cfg: GeneratorConfig = HIFIGAN_V1) -> HiFiGAN:
    """A randomly initialised HiFi-GAN of shape ``cfg``, saved and loaded as a checkpoint.

    Raises:
        ValueError: the generator's hop or mel bins differ from the spk's.
    """
    mel = spk.feats.mel
    if cfg.hop_length != mel.hop_length or cfg.num_mels != mel.n_mels:
        raise ValueError(
            f"HiFi-GAN hop {cfg.hop_length} / {cfg.num_mels} mels do not fit the spk's hop "
            f"{mel.hop_length} / {mel.n_mels} mels; give a GeneratorConfig that does"
        )
    torch.manual_seed(0)
    ckpt = folder / "g_random"
    torch.save({"generator": Generator(cfg).state_dict()}, ckpt)
    config = {**asdict(cfg), "sampling_rate": spk.sample_rate, "hop_size": mel.hop_length}
    (folder / "config.json").write_text(json.dumps(config))
    return HiFiGAN(str(ckpt), None, spk.sample_rate, mel)


def bench_vocoders(vocoders: dict[str, Vocoder], mels: list[np.ndarray], reps: int) -> dict:
    """RTF of each vocoder synthesising ``mels`` as one batch (interleaved, after a warm-up).

    Args:
        vocoders: Name → vocoder.
        mels: Log-mels, each (T_i, n_mels).
        reps: Repetitions.
    """
    first = next(iter(vocoders.values()))
    audio = sum(len(m) for m in mels) * first.hop_length / first.sample_rate

    def run(voc: Vocoder) -> float:
        start = time.perf_counter()
        voc.batch(mels)
        return time.perf_counter() - start

    for voc in vocoders.values():
        run(voc)
    runs = interleave({k: (lambda v=v: run(v)) for k, v in vocoders.items()}, reps)
    out: dict = {"utterances": len(mels), "audio_seconds": audio}
    for name, secs in runs.items():
        out[name] = {"rtf": summarize([s / audio for s in secs])}
    return out


def bench_conversion(
    layout: Layout,
    spk: SpkConfig,
    spk_name: str,
    configs: dict[str, dict[str, TagConfig]],
    reps: int,
    batch_sizes: tuple[int, ...] = (1, 8),
    threads: int = 2,
    gen_cfg: GeneratorConfig | None = HIFIGAN_V1,
    presets: tuple[str, ...] = (),
    vocoder_reps: int | None = None,
) -> dict:
    """Figure 4: acoustic-model RTF per preset and predictor, and vocoder RTF.

    Args:
        layout: Recipe root (stage 1 of the spk done).
        spk: Its config.
        spk_name: Its name (``dump/<spk_name>/dev``).
        configs: Preset name → predictor variant → tag config.
        reps: Repetitions of the acoustic models.
        batch_sizes: Utterances per conversion call.
        threads: Torch CPU threads.
        gen_cfg: HiFi-GAN shape (None: Griffin-Lim only).
        presets: Also HiFi-GAN generator presets (``v1``, ``v2``, ``v3``, ``tiny``) refit to
            the spk's hop, as ``vc-train-vocoder`` builds them (rows ``hifigan_<preset>``).
        vocoder_reps: Repetitions of the vocoders (default ``reps``).

    Returns:
        ``threads``, ``acoustic`` (preset → ``batch_<n>`` → :func:`bench_acoustic` record) and
        ``vocoder`` (``batch_<n>`` → :func:`bench_vocoders` record).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dev = DumpSplit(layout.dump(spk_name) / "dev")
        stats = load_stats(layout.dump(spk_name) / "stats.npz")
        acoustic: dict = {}
        for preset, variants in configs.items():
            models = {name: acoustic_model(cfg, spk) for name, cfg in variants.items()}
            acoustic[preset] = {
                f"batch_{n}": bench_acoustic(models, pick_items(dev, n), spk, reps)
                for n in batch_sizes
            }
        any_cfg = next(iter(next(iter(configs.values())).values()))
        gl = any_cfg.infer.vocoder
        vocoder: dict = {}
        with tempfile.TemporaryDirectory(prefix="vc-bench-voc-") as tmp:
            vocs: dict[str, Vocoder] = {
                "griffin_lim": GriffinLim(spk.sample_rate, spk.feats.mel, gl.gl_iters, gl.gl_power)
            }
            if gen_cfg is not None:
                vocs["hifigan"] = random_hifigan(spk, Path(tmp), gen_cfg)
            mel = spk.feats.mel
            for preset in presets:
                shape = generator_config(preset, mel.n_mels, mel.hop_length)
                folder = Path(tmp) / preset
                folder.mkdir()
                vocs[f"hifigan_{preset}"] = random_hifigan(spk, folder, shape)
            for n in batch_sizes:
                mels = [
                    denormalize_mel(it["tgt_mel"], stats, side="tgt") for it in pick_items(dev, n)
                ]
                vocoder[f"batch_{n}"] = bench_vocoders(vocs, mels, vocoder_reps or reps)
        return {"threads": threads, "acoustic": acoustic, "vocoder": vocoder}
    finally:
        torch.set_num_threads(previous)
