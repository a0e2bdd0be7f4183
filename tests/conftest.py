"""Shared fixtures: throw-away recipe roots, config writers and test audio."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[1]

TINY_SPK = {
    "note": "tiny demo corpus for tests",
    "corpus": {"name": "demo", "num_utts": 10},
    "sample_rate": 16000,
    "reduction_factor": 2,
    "split": {"dev": 2, "eval": 2, "seed": 0},
    "trim": {
        "silence_thresh_h": -50,
        "silence_thresh_t": -60,
        "chunk_size": 10,
        "min_silence_len": 150,
    },
    "feats": {
        "mel": {"n_fft": 512, "win_length": 512, "hop_length": 160, "n_mels": 20, "fmax": 7600},
        "pitch": {"f0_floor": 60, "f0_ceil": 500},
    },
}


TINY_TAG = {
    "spk": "tiny",
    "note": "tiny model for tests",
    "model": {
        "hidden": 32,
        "encoder": {"layers": 1, "heads": 2, "ff_expansion": 2, "kernel_size": 3},
        "decoder": {"layers": 1, "heads": 2, "ff_expansion": 2, "kernel_size": 3},
        "duration_predictor": {"layers": 1, "channels": 32},
        "pitch_predictor": {"layers": 1, "channels": 32, "ar": {"lstm_hidden": 32, "zoneout": 0.0}},
        "energy_predictor": {"layers": 1, "channels": 32},
        "prosody": {"dim": 4, "num_gaussians": 2, "extractor_channels": 16, "gru_hidden": 16},
        "postnet": {"layers": 2, "channels": 32},
    },
    "train": {
        "batch_size": 2,
        "group_size": 2,
        "epochs": 2,
        "seed": 7,
        "num_threads": 1,
        "eval_interval": 1,
        "ckpt_interval": 1,
        "dev_images": 0,
        "scheduler": {"peak_lr": 2.0e-3, "warm_up_step": 4, "ref_batch_size": 2},
    },
}


def tiny_hifigan():
    """A HiFi-GAN generator shape for the tiny spk: 20 mels, hop 160 = 5 * 4 * 8."""
    from vc_toolkit.vocoder.hifigan_generator import GeneratorConfig

    return GeneratorConfig(
        num_mels=20,
        upsample_rates=(5, 4, 8),
        upsample_kernel_sizes=(11, 8, 16),
        upsample_initial_channel=16,
        resblock="2",
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1,),),
    )


def write_conf(root: Path, kind: str, name: str, data: dict | str) -> Path:
    """Write ``conf/<kind>/<name>.yaml`` under a recipe root."""
    path = root / "conf" / kind / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def new_root(base: Path) -> Path:
    """A recipe root with the shipped model presets and demo sentences, and empty spk/tag dirs."""
    root = base / "recipe"
    (root / "conf" / "spk").mkdir(parents=True)
    (root / "conf" / "tag").mkdir(parents=True)
    shutil.copytree(REPO / "conf" / "model", root / "conf" / "model")
    (root / "egs" / "demo").mkdir(parents=True)
    shutil.copy(REPO / "egs/demo/harvard_sentences.txt", root / "egs/demo/harvard_sentences.txt")
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh recipe root (conf/, egs/demo text) in a temporary directory."""
    return new_root(tmp_path)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recipe root whose spk 'tiny' (10 demo utterances at 16 kHz) has finished stage 0.

    Shared by the whole session: tests must not modify it (copy it first).
    """
    from vc_toolkit.paths import Layout
    from vc_toolkit.prepare import stage as prepare

    root = new_root(tmp_path_factory.mktemp("tiny"))
    write_conf(root, "spk", "tiny", TINY_SPK)
    prepare.run("tiny", Layout(root), nj=2)
    return root


@pytest.fixture(scope="session")
def tiny_features_root(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``tiny_root`` whose spk 'tiny' has finished stage 1 too (do not modify)."""
    from vc_toolkit.paths import Layout
    from vc_toolkit.preprocess import stage as preprocess

    root = tmp_path_factory.mktemp("tiny_feats") / "recipe"
    shutil.copytree(tiny_root, root, symlinks=True)
    preprocess.run("tiny", Layout(root), nj=1)
    return root


def copy_root(src: Path, dest_base: Path) -> Path:
    """A private copy of a shared recipe root (tests that write into it use this)."""
    dest = dest_base / "recipe"
    shutil.copytree(src, dest, symlinks=True)
    return dest


def make_wav(
    path: Path,
    sr: int = 16000,
    seconds: float = 1.0,
    channels: int = 1,
    subtype: str = "PCM_16",
    f0: float = 150.0,
    seed: int = 0,
) -> Path:
    """Write a harmonic test tone with a little noise (any channel count / subtype)."""
    t = np.arange(int(sr * seconds)) / sr
    x = sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    x = x + 0.003 * np.random.default_rng(seed).standard_normal(len(t))
    data = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, subtype=subtype)
    return path
