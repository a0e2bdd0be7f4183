"""JSUT → JSSS: the voiceactress100 sentences read by the JSUT and JSSS speakers.

Both corpora name these files ``VOICEACTRESS100_XXX.wav``; they are found
anywhere under ``jsut_root`` and ``jsss_root`` and matched by stem. JSUT can
be downloaded when the network allows; JSSS needs its own download. The sides
are labeled with the speaker names ``jsut`` and ``jsss``.
"""

from __future__ import annotations

from vc_toolkit.config.spk import JsutJsssCorpus
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import CorpusError, Prepared, Side, match_by_stem
from vc_toolkit.prepare.corpora.download import fetch_and_extract

PATTERN = "VOICEACTRESS100_*.wav"


def prepare(corpus: JsutJsssCorpus, layout: Layout, nj: int = 1) -> Prepared:
    """Pair JSUT and JSSS voiceactress100 files by stem."""
    files, folders = {}, []
    for side, root_key, url, what in (
        ("src", "jsut_root", corpus.jsut_url, "JSUT"),
        ("tgt", "jsss_root", corpus.jsss_url, "JSSS"),
    ):
        root = layout.resolve(getattr(corpus, root_key))
        if not root.is_dir():
            fetch_and_extract(url, root, what)
        files[side] = sorted(root.rglob(PATTERN))
        folders.append((root, PATTERN))
        if not files[side]:
            raise CorpusError(f"no {PATTERN} files under corpus.{root_key} {root}; check the path")
    prepared = match_by_stem(files["src"], files["tgt"], Side("jsut"), Side("jsss"))
    prepared.roots = folders
    return prepared
