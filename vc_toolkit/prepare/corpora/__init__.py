"""Corpus recipes: each turns one ``corpus:`` block of a spk into labeled utterances.

The recipe folder ``egs/<name>/`` holds the corpus' assets and notes; the code
that prepares it lives here, registered under the same name. A recipe is called
as ``prepare(corpus_block, layout, nj)`` and returns a :class:`Prepared`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora import (
    demo,
    demo_multi,
    demo_tts,
    jsut,
    jsut_jsss,
    jvs,
    labeled,
    ljspeech,
    parallel,
)
from vc_toolkit.prepare.corpora.base import CorpusError, Pair, Prepared, Utterance

RECIPES: dict[str, Callable[[Any, Layout, int], Prepared]] = {
    "demo": demo.prepare,
    "demo_multi": demo_multi.prepare,
    "parallel": parallel.prepare,
    "jvs": jvs.prepare,
    "jsut_jsss": jsut_jsss.prepare,
    "labeled": labeled.prepare,
    "demo_tts": demo_tts.prepare,
    "ljspeech": ljspeech.prepare,
    "jsut": jsut.prepare,
}

__all__ = ["RECIPES", "CorpusError", "Pair", "Prepared", "Utterance"]
