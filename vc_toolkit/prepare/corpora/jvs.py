"""JVS parallel100: the same 100 sentences read by the 100 JVS speakers.

Layout expected under ``corpus.root``:
``jvsNNN/parallel100/wav24kHz16bit/VOICEACTRESS100_XXX.wav``.
Without ``corpus.speakers`` the spk is the one-to-one pair ``src_speaker`` →
``tgt_speaker``; with ``speakers: [jvs001, jvs002, ...]`` (or ``["*"]``: every
``jvsNNN`` folder under the root) every ordered pair of those speakers is a
candidate, on the sentences both read. Speaker names are the JVS ids.
JVS is distributed through a web form, so by default nothing is downloaded:
fetch ``jvs_ver1.zip`` from the corpus page, unpack it, and set ``corpus.root``.
"""

from __future__ import annotations

import re
from pathlib import Path

from vc_toolkit.config.spk import JvsCorpus
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import (
    CorpusError,
    Prepared,
    Side,
    Utterance,
    by_stem,
    match_by_stem,
)
from vc_toolkit.prepare.corpora.download import fetch_and_extract

CORPUS_PAGE = "https://sites.google.com/site/shinnosuketakamichi/research-topics/jvs_corpus"
SPEAKER_DIR = re.compile(r"jvs\d{3}")


def _wavs(root: Path, spk: str, key: str) -> tuple[Path, list[Path]]:
    folder = root / spk / "parallel100"
    files = sorted(folder.rglob("*.wav")) if folder.is_dir() else []
    if not files:
        raise CorpusError(
            f"no parallel100 wavs for speaker '{spk}' under {folder}; "
            f"check corpus.root and corpus.{key}"
        )
    return folder, files


def _speakers(root: Path, wanted: list[str]) -> list[str]:
    if wanted != ["*"]:
        if "*" in wanted:
            raise CorpusError("corpus.speakers: use ['*'] alone or a list of jvsNNN ids")
        return list(dict.fromkeys(wanted))
    found = sorted(p.name for p in root.iterdir() if SPEAKER_DIR.fullmatch(p.name) and p.is_dir())
    found = [s for s in found if (root / s / "parallel100").is_dir()]
    if len(found) < 2:
        raise CorpusError(
            f"corpus.speakers ['*'] found {len(found)} jvsNNN folders with parallel100 under "
            f"{root}; check corpus.root"
        )
    return found


def prepare(corpus: JvsCorpus, layout: Layout, nj: int = 1) -> Prepared:
    """Label the parallel100 files of the configured speakers."""
    root = layout.resolve(corpus.root)
    if not root.is_dir():
        fetch_and_extract(corpus.url, root, f"JVS (see {CORPUS_PAGE})")
    if not corpus.speakers:
        (src_dir, src), (tgt_dir, tgt) = (
            _wavs(root, corpus.src_speaker, "src_speaker"),
            _wavs(root, corpus.tgt_speaker, "tgt_speaker"),
        )
        prepared = match_by_stem(src, tgt, Side(corpus.src_speaker), Side(corpus.tgt_speaker))
        prepared.roots = [(src_dir, "*.wav"), (tgt_dir, "*.wav")]
        return prepared
    prepared = Prepared(candidates=None)
    for spk in _speakers(root, corpus.speakers):
        folder, files = _wavs(root, spk, "speakers")
        prepared.roots.append((folder, "*.wav"))
        for sentence, path in by_stem(files, f"speaker {spk}").items():
            prepared.utterances.append(Utterance(sentence, path, spk))
    return prepared
