"""LJSpeech-style text corpus: ``metadata.csv`` with a folder of wavs.

Layout under ``corpus.root``: ``metadata.csv`` (``corpus.metadata``) with one
``id|text|normalised text`` line per file (the third column is optional; with
``corpus.normalized`` it is used when present) and ``wavs/<id>.wav``
(``corpus.wav_dir``). Lines without a wav and wavs without a line are listed in the
stage-0 report, not fatal. LJSpeech itself is not downloaded unless ``corpus.url`` is set.
"""

from __future__ import annotations

from pathlib import Path

from vc_toolkit.config.text import LjspeechCorpus
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import CorpusError, Prepared, Utterance
from vc_toolkit.prepare.corpora.download import fetch_and_extract


def read_metadata(path: Path, normalized: bool = True) -> dict[str, str]:
    """``{id: text}`` of an LJSpeech ``metadata.csv``.

    Raises:
        CorpusError: a line without ``|``, an empty id, or an id given twice (file:line).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "metadata.csv"
        >>> _ = p.write_text("a|Dr. Who|Doctor Who\\nb|Hi there\\n", encoding="utf-8")
        >>> read_metadata(p), read_metadata(p, normalized=False)["a"]
        ({'a': 'Doctor Who', 'b': 'Hi there'}, 'Dr. Who')
    """
    out: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 2 or not parts[0].strip():
            raise CorpusError(f"{path}:{lineno}: expected 'id|text[|normalised text]'")
        utt = parts[0].strip()
        if utt in out:
            raise CorpusError(f"{path}:{lineno}: id '{utt}' is listed twice; remove one line")
        text = parts[2] if normalized and len(parts) > 2 and parts[2].strip() else parts[1]
        out[utt] = " ".join(text.split())
    return out


def prepare(corpus: LjspeechCorpus, layout: Layout, nj: int = 1) -> Prepared:
    """Label every wav that has a transcript line."""
    root = layout.resolve(corpus.root)
    if not root.is_dir():
        fetch_and_extract(corpus.url, root, "the LJSpeech-style corpus")
    meta_path = root / corpus.metadata
    if not meta_path.is_file():
        raise CorpusError(
            f"no transcript {meta_path}; put the corpus at {root} (metadata.csv and "
            f"{corpus.wav_dir}/) or set corpus.root / corpus.metadata"
        )
    texts = read_metadata(meta_path, corpus.normalized)
    wav_dir = root / corpus.wav_dir
    wavs = {p.stem: p for p in sorted(wav_dir.glob("*.wav"))} if wav_dir.is_dir() else {}
    if not wavs:
        raise CorpusError(f"no wavs under {wav_dir}; check corpus.root and corpus.wav_dir")
    prepared = Prepared(candidates=[], roots=[(wav_dir, "*.wav")])
    for utt, text in texts.items():
        if utt not in wavs:
            prepared.skipped.append(
                (wav_dir / f"{utt}.wav", f"listed in {corpus.metadata}, no wav")
            )
        elif not text:
            prepared.skipped.append((wavs[utt], f"empty text in {corpus.metadata}"))
        else:
            prepared.utterances.append(Utterance(utt, wavs[utt], corpus.speaker, text=text))
    prepared.unmatched_tgt = [p for u, p in wavs.items() if u not in texts]
    if not prepared.utterances:
        raise CorpusError(f"no wav of {wav_dir} has a line in {meta_path}; check the ids")
    return prepared
