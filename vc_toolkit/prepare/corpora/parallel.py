"""Bring-your-own parallel corpus: two folders of audio matched by file stem.

Any sample rate, mono or stereo, 16/24/32-bit integer or float wav (anything
libsndfile reads). Files present on one side only are listed in the stage-0
report, not fatal. The sides are labeled ``corpus.src_speaker``/``tgt_speaker``
(default ``src``/``tgt``) with optional emotions.
"""

from __future__ import annotations

from vc_toolkit.config.spk import ParallelCorpus
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import CorpusError, Prepared, Side, match_by_stem


def prepare(corpus: ParallelCorpus, layout: Layout, nj: int = 1) -> Prepared:
    """Match ``corpus.src_wav_root`` and ``corpus.tgt_wav_root`` by stem."""
    roots = {}
    for side in ("src_wav_root", "tgt_wav_root"):
        root = layout.resolve(getattr(corpus, side))
        if not root.is_dir():
            raise CorpusError(
                f"corpus.{side} {root} is not a folder; point it at the folder holding the wavs"
            )
        roots[side] = root
    src = sorted(p for p in roots["src_wav_root"].rglob(corpus.pattern) if p.is_file())
    tgt = sorted(p for p in roots["tgt_wav_root"].rglob(corpus.pattern) if p.is_file())
    for side, files in (("src_wav_root", src), ("tgt_wav_root", tgt)):
        if not files:
            raise CorpusError(
                f"no files matching '{corpus.pattern}' under corpus.{side} {roots[side]}; "
                "check the folder or corpus.pattern"
            )
    prepared = match_by_stem(
        src,
        tgt,
        Side(corpus.src_speaker, corpus.src_emotion),
        Side(corpus.tgt_speaker, corpus.tgt_emotion),
    )
    prepared.roots = [(roots[side], corpus.pattern) for side in ("src_wav_root", "tgt_wav_root")]
    return prepared
