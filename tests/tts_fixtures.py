"""Tiny TTS configs, random text batches and a tiny text dump, for the TTS tests.

Example:
    >>> cfg = tiny_tts_config(level="token", pitch="ar")
    >>> cfg.type, cfg.variance_level, cfg.pitch_predictor.type
    ('fastspeech2tts', 'token', 'ar')
    >>> b = random_text_batch(n_mels=4, r=2, tokens=[5, 3], frames=[16, 8], n_segs=[2, 1])
    >>> b.tokens.shape, b.tok_seg.sum(1).tolist(), b.duration
    (torch.Size([2, 5]), [5, 3], None)
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
from factories import TINY_SPK, TINY_TAG, tiny_config

from vc_toolkit.config.aligner import Aligner
from vc_toolkit.config.tag import Conditioning, ModelConfig
from vc_toolkit.data.text_batch import TextBatch, collate_text

VOCAB = 12


def tiny_tts_config(
    level: str = "frame",
    pitch: str = "conv",
    prosody: str = "none",
    conditioning: Conditioning | None = None,
    aligner_input: str = "embedding",
    bin_start: int = 0,
) -> ModelConfig:
    """:func:`factories.tiny_config` as a ``fastspeech2tts`` model with a tiny aligner."""
    from vc_toolkit.config.tts import TextModel

    base = tiny_config(pitch=pitch, prosody=prosody, conditioning=conditioning)
    return dataclasses.replace(
        base,
        type="fastspeech2tts",
        variance_level=level,
        text=TextModel(aligner_input=aligner_input),
        aligner=Aligner(hidden=8, bin_start_steps=bin_start, bin_warmup_steps=0),
    )


def text_items(
    n_mels: int,
    r: int,
    tokens: list[int],
    frames: list[int],
    n_segs: list[int] | None = None,
    seed: int = 0,
    durations: bool = False,
    ids: dict[str, list[int]] | None = None,
) -> list[dict]:
    """Random contract-1 items: ``tokens[k]`` symbols over ``frames[k]`` frames."""
    rng = np.random.default_rng(seed)
    n_segs = n_segs or [1] * len(tokens)
    items = []
    for k, (n, t, ns) in enumerate(zip(tokens, frames, n_segs)):
        if t % r or t // r < n:
            raise ValueError(f"need frames a multiple of r={r} and >= r * tokens, got {t}")
        seg = 1 + rng.multinomial(n - ns, np.ones(ns) / ns)
        item = dict(
            utt_id=f"utt{k}",
            tokens=rng.integers(1, VOCAB, n),
            tgt_mel=rng.standard_normal((t, n_mels)).astype("f4"),
            tgt_lf0=rng.standard_normal(t).astype("f4"),
            tgt_vuv=(rng.random(t) > 0.3).astype("f4"),
            tgt_energy=rng.standard_normal(t).astype("f4"),
            tok_seg=seg.astype(np.int64),
            **{key: values[k] for key, values in (ids or {}).items()},
        )
        if durations:
            item["duration"] = 1 + rng.multinomial(t // r - n, np.ones(n) / n)
        items.append(item)
    return items


def random_text_batch(*args, **kwargs) -> TextBatch:
    """:func:`collate_text` of :func:`text_items`."""
    return collate_text(text_items(*args, **kwargs))


def tts_tag(epochs: int = 2, spk: str = "tinytts") -> dict:
    """The tiny tag (``TINY_TAG``) as a TTS tag on ``spk``: tiny aligner, binarisation from
    step 2."""
    data = copy.deepcopy(TINY_TAG)
    data["spk"] = spk
    data["model"].update(
        type="fastspeech2tts",
        aligner={"hidden": 16, "bin_start_steps": 2, "bin_warmup_steps": 2},
    )
    data["train"]["epochs"] = epochs
    return data


TINY_TEXT_SPK = {
    **TINY_SPK,
    "note": "tiny demo TTS corpus for tests",
    "corpus": {"name": "demo_tts", "num_utts": 10},
    "text": {"frontend": "espeak", "language": "en-us"},
}
"""A text spk with the tiny spk's features (16 kHz, r 2): 6 train / 2 dev / 2 eval sentences."""


def make_text_spk(root: Path, name: str = "tinytts") -> None:
    """Write ``conf/spk/<name>.yaml`` (:data:`TINY_TEXT_SPK`) and run its stages 0 and 1."""
    from conftest import write_conf

    from vc_toolkit.paths import Layout
    from vc_toolkit.prepare import stage as prepare
    from vc_toolkit.preprocess import stage as preprocess

    write_conf(root, "spk", name, TINY_TEXT_SPK)
    prepare.run(name, Layout(root), nj=2)
    preprocess.run(name, Layout(root), nj=1)
