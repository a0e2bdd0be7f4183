"""Shared fixtures: throw-away recipe roots, config writers and test audio.

The tiny configs live in :mod:`factories`; ``TINY_SPK``, ``TINY_TAG`` and ``tiny_hifigan``
are re-exported here for ``from conftest import ...``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from factories import TINY_SPK, TINY_TAG, TINY_VOC, tiny_hifigan  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(autouse=True)
def _console_logging_restored():
    """Every test leaves the root logger as it found it.

    The command-line entry points point logging at ``sys.stderr`` as they find it, which
    under pytest's capture is a stream closed after the test; a later test would then
    log into a closed file.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


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
