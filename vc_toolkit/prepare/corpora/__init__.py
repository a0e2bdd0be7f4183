"""Corpus recipes: each turns a spk's ``corpus:`` block into parallel pairs.

The recipe folder ``egs/<name>/`` holds the corpus' assets and notes; the code
that prepares it lives here, registered under the same name.
"""

from __future__ import annotations

from collections.abc import Callable

from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora import demo, jsut_jsss, jvs, parallel
from vc_toolkit.prepare.corpora.base import CorpusError, Pair, Prepared

RECIPES: dict[str, Callable[[SpkConfig, Layout, int], Prepared]] = {
    "demo": demo.prepare,
    "parallel": parallel.prepare,
    "jvs": jvs.prepare,
    "jsut_jsss": jsut_jsss.prepare,
}

__all__ = ["RECIPES", "CorpusError", "Pair", "Prepared"]
