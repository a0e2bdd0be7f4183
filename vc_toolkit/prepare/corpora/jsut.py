"""JSUT-style text corpus: per subset, ``transcript_utf8.txt`` and a ``wav/`` folder.

Layout under ``corpus.root``: ``<subset>/transcript_utf8.txt`` with ``ID:text`` lines
and ``<subset>/wav/ID.wav`` for each subset of ``corpus.subsets`` (``['*']``: every
folder holding a transcript). Lines without a wav and wavs without a line are listed
in the stage-0 report, not fatal. JSUT is fetched from ``corpus.url`` when the root is
missing (this fails with one line when offline).
"""

from __future__ import annotations

from pathlib import Path

from vc_toolkit.config.text import JsutCorpus
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import CorpusError, Prepared, Utterance
from vc_toolkit.prepare.corpora.download import fetch_and_extract

TRANSCRIPT = "transcript_utf8.txt"


def read_transcript(path: Path) -> dict[str, str]:
    """``{id: text}`` of a JSUT ``transcript_utf8.txt`` (``ID:text`` lines).

    Raises:
        CorpusError: a line without ``:`` or an id given twice (file:line).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "transcript_utf8.txt"
        >>> _ = p.write_text("BASIC5000_0001:水をマレーシアから買わなくてはならない。\\n")
        >>> read_transcript(p)
        {'BASIC5000_0001': '水をマレーシアから買わなくてはならない。'}
    """
    out: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        utt, sep, text = line.partition(":")
        if not sep or not utt.strip():
            raise CorpusError(f"{path}:{lineno}: expected 'ID:text', got {line[:40]!r}")
        if utt.strip() in out:
            raise CorpusError(f"{path}:{lineno}: id '{utt.strip()}' is listed twice")
        out[utt.strip()] = " ".join(text.split())
    return out


def _subsets(root: Path, wanted: list[str]) -> list[str]:
    if wanted != ["*"]:
        return list(dict.fromkeys(wanted))
    found = sorted(p.parent.name for p in root.glob(f"*/{TRANSCRIPT}"))
    if not found:
        raise CorpusError(f"no <subset>/{TRANSCRIPT} under corpus.root {root}; check the path")
    return found


def prepare(corpus: JsutCorpus, layout: Layout, nj: int = 1) -> Prepared:
    """Label the wavs of the configured subsets with their transcripts."""
    root = layout.resolve(corpus.root)
    if not root.is_dir():
        fetch_and_extract(corpus.url, root, "JSUT")
    prepared = Prepared(candidates=[])
    seen: dict[str, Path] = {}
    for subset in _subsets(root, corpus.subsets):
        transcript = root / subset / TRANSCRIPT
        if not transcript.is_file():
            raise CorpusError(
                f"no {transcript}; put the corpus at {root} (<subset>/{TRANSCRIPT} and "
                "<subset>/wav/) or fix corpus.subsets"
            )
        wav_dir = root / subset / "wav"
        wavs = {p.stem: p for p in sorted(wav_dir.glob("*.wav"))} if wav_dir.is_dir() else {}
        prepared.roots.append((wav_dir, "*.wav"))
        texts = read_transcript(transcript)
        for utt, text in texts.items():
            if utt in seen:
                raise CorpusError(f"id '{utt}' is in {seen[utt]} and {transcript}; ids must differ")
            seen[utt] = transcript
            if utt not in wavs:
                missing = (wav_dir / f"{utt}.wav", f"listed in {TRANSCRIPT}, no wav")
                prepared.skipped.append(missing)
            elif not text:
                prepared.skipped.append((wavs[utt], f"empty text in {TRANSCRIPT}"))
            else:
                prepared.utterances.append(Utterance(utt, wavs[utt], corpus.speaker, text=text))
        prepared.unmatched_tgt += [p for u, p in wavs.items() if u not in texts]
    if not prepared.utterances:
        raise CorpusError(f"no wav under {root} has a transcript line; check corpus.subsets")
    return prepared
