"""Shared by both kinds of spk at stage 0: the deterministic split and the audio check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from vc_toolkit.config.spk import Split
from vc_toolkit.features.audio import truncation


def make_split(utt_ids: list[str], split: Split) -> dict[str, list[str]]:
    """Deterministic split from ``split.seed``: same ids and seed → same split.

    Stage 0 splits sentence ids. ``split.train`` keeps only the first N ids of the
    shuffle after dev and eval, so a capped split has the same dev/eval as the uncapped.

    Example:
        >>> s = make_split([f"u{i}" for i in range(10)], Split(dev=2, eval=3, seed=0))
        >>> [len(s[k]) for k in ("train", "dev", "eval")]
        [5, 2, 3]
        >>> s == make_split([f"u{i}" for i in reversed(range(10))], Split(dev=2, eval=3, seed=0))
        True
    """
    ids = sorted(utt_ids)
    order = np.random.default_rng(split.seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    dev = shuffled[: split.dev]
    ev = shuffled[split.dev : split.dev + split.eval]
    train = shuffled[split.dev + split.eval :][: split.train]
    return {"train": sorted(train), "dev": sorted(dev), "eval": sorted(ev)}


def check_audio(path: Path) -> str | None:
    """Reason the file cannot be used, or None when its header reads and its data is complete."""
    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile raises several types
        return f"unreadable ({str(err).splitlines()[0][:120]})"
    if info.frames == 0:
        return "empty (0 samples)"
    cut = truncation(path, info.samplerate)
    return f"truncated ({cut.removeprefix('truncated: ')})" if cut else None
