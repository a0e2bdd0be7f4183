"""JVS parallel100: the same 100 sentences read by two of the 100 JVS speakers.

Layout expected under ``corpus.root``:
``jvsNNN/parallel100/wav24kHz16bit/VOICEACTRESS100_XXX.wav``.
JVS is distributed through a web form, so by default nothing is downloaded:
fetch ``jvs_ver1.zip`` from the corpus page, unpack it, and set ``corpus.root``.
"""

from __future__ import annotations

from vc_toolkit.config.spk import JvsCorpus, SpkConfig
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import CorpusError, Prepared, match_by_stem
from vc_toolkit.prepare.corpora.download import fetch_and_extract

CORPUS_PAGE = "https://sites.google.com/site/shinnosuketakamichi/research-topics/jvs_corpus"


def prepare(cfg: SpkConfig, layout: Layout, nj: int = 1) -> Prepared:
    """Pair ``src_speaker`` and ``tgt_speaker`` parallel100 files by stem."""
    corpus = cfg.corpus
    assert isinstance(corpus, JvsCorpus)
    root = layout.resolve(corpus.root)
    if not root.is_dir():
        fetch_and_extract(corpus.url, root, f"JVS (see {CORPUS_PAGE})")
    files, folders = {}, []
    for side, spk in (("src", corpus.src_speaker), ("tgt", corpus.tgt_speaker)):
        folder = root / spk / "parallel100"
        folders.append((folder, "*.wav"))
        files[side] = sorted(folder.rglob("*.wav")) if folder.is_dir() else []
        if not files[side]:
            raise CorpusError(
                f"no parallel100 wavs for speaker '{spk}' under {folder}; "
                f"check corpus.root and corpus.{side}_speaker"
            )
    prepared = match_by_stem(files["src"], files["tgt"])
    prepared.roots = folders
    return prepared
