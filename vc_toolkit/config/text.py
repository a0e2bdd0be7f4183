"""Schema of text input (TTS): the spk's ``text:`` block and the text corpus recipes.

A *text spk* reads recordings with their transcripts (corpus ``demo_tts``, ``ljspeech``
or ``jsut``) and names a front-end that turns each transcript into tokens
(:mod:`vc_toolkit.text.frontend`)::

    corpus: {name: ljspeech, root: downloads/LJSpeech-1.1}
    text: {frontend: espeak, language: en-us, stress: separate}

The transcripts are frozen with the spk at stage 0 (``data/<SPK>/<split>/text``, part
of the fingerprint) and the symbol table at stage 1 (``dump/<SPK>/symbols.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vc_toolkit.config.core import opt
from vc_toolkit.config.voice import Voice, check_name, check_pad

TEXT_CORPORA = ("demo_tts", "ljspeech", "jsut")
"""Corpus recipes whose utterances carry a transcript (a spk of them is a text spk)."""
DEFAULT_PAUSES = ",.;:!?、。，．？！"
JSUT_URL = "http://ss-takashi.sakura.ne.jp/corpus/jsut_ver1.1.zip"


@dataclass(kw_only=True)
class TextConfig:
    """How a transcript becomes tokens (the ``text:`` block of a spk)."""

    frontend: Literal["espeak", "chars", "openjtalk"] = opt(
        "espeak",
        "espeak: phonemes from libespeak-ng; chars: characters; openjtalk: Japanese phonemes "
        "(optional extra: pip install -e '.[ja]')",
    )
    language: str = opt(
        "en-us", "espeak: the espeak-ng language whose pronunciation rules apply (en-us, de...)"
    )
    phonemes: Literal["ipa", "ascii"] = opt(
        "ipa", "espeak: IPA symbols, or espeak-ng's ascii phoneme names"
    )
    stress: Literal["separate", "attached", "none"] = opt(
        "separate",
        "espeak: stress marks as tokens of their own, attached to the next phoneme, or dropped",
    )
    word_boundary: bool = opt(True, "a word-boundary token (a space) between words")
    pauses: str = opt(
        DEFAULT_PAUSES,
        "punctuation that becomes a pause token (a run of it is one token, its first "
        "character); not between two ASCII letters/digits (3.50, 10:30); other punctuation "
        "is dropped",
    )
    lowercase: bool = opt(True, "chars: lowercase the text first")
    charset: str = opt(
        "",
        "chars: the characters allowed (empty: every letter, mark and digit in the spk's "
        "texts); others are reported as unknown symbols",
    )

    def validate(self) -> None:
        bad = sorted({c for c in self.pauses if c.isspace() or c.isalnum()})
        if bad:
            raise ValueError(f"text.pauses must hold punctuation only, got {bad}")
        overlap = sorted(set(self.charset) & set(self.pauses))
        if overlap or any(c.isspace() for c in self.charset):
            raise ValueError(
                f"text.charset must not hold spaces or pause characters ({overlap}); the word "
                "boundary and pauses are their own tokens"
            )
        if len(set(self.charset)) != len(self.charset):
            raise ValueError("text.charset lists a character twice")


@dataclass(kw_only=True)
class DemoTtsCorpus:
    """The demo target voice reading the Harvard sentences, with their text (no download)."""

    name: Literal["demo_tts"] = opt("demo_tts", "corpus recipe: egs/demo_tts")
    text: str = opt("egs/demo/harvard_sentences.txt", "sentence list, 'id text' per line")
    first: int = opt(1, "first sentence to synthesise (1-based line of the list)", min=1)
    num_utts: int = opt(240, "number of sentences from `first` on", min=3)
    voice: Voice = opt(
        factory=lambda: Voice(variant="f2", pitch=70, range=85, rate=135, pause_ms=500),
        help="the espeak-ng voice (default: the target voice of the demo spk)",
    )
    speaker: str = opt("demo", "speaker name of the voice")
    pause_min_words: int = opt(
        7,
        "sentences with at least this many words get a pause at the middle word break (the "
        "frozen text marks it with a comma)",
        min=2,
    )
    pad_ms: list[int] = opt(
        factory=lambda: [100, 400], help="[min, max] ms of silence added before and after speech"
    )
    noise_dbfs: float | None = opt(-75.0, "background noise level, dBFS RMS (null: none)", max=0)
    phone_times: bool = opt(
        True, "also write espeak-ng's own phoneme timings, data/<SPK>/phone_times/<utt>.tsv"
    )

    def validate(self) -> None:
        check_pad(self.pad_ms)
        check_name(self.speaker, "corpus.speaker")


@dataclass(kw_only=True)
class LjspeechCorpus:
    """LJSpeech-style corpus: ``metadata.csv`` (``id|text[|normalised text]``) and a wav folder."""

    name: Literal["ljspeech"] = opt("ljspeech", "corpus recipe: egs/ljspeech")
    root: str = opt("downloads/LJSpeech-1.1", "corpus folder (holds metadata.csv and wavs/)")
    metadata: str = opt("metadata.csv", "transcript file under root, 'id|text[|normalised]'")
    wav_dir: str = opt("wavs", "folder of <id>.wav under root")
    normalized: bool = opt(True, "read the normalised (third) column when a line has one")
    speaker: str = opt("ljspeech", "speaker name")
    url: str = opt("", "archive URL to download when root is missing (empty: no download)")

    def validate(self) -> None:
        check_name(self.speaker, "corpus.speaker")


@dataclass(kw_only=True)
class JsutCorpus:
    """JSUT-style corpus: ``<subset>/transcript_utf8.txt`` (``id:text``) and ``<subset>/wav/``."""

    name: Literal["jsut"] = opt("jsut", "corpus recipe: egs/jsut")
    root: str = opt("downloads/jsut_ver1.1", "JSUT root (holds basic5000/, ...)")
    subsets: list[str] = opt(
        factory=lambda: ["basic5000"],
        help="subset folders to read (['*']: every folder with a transcript_utf8.txt)",
    )
    speaker: str = opt("jsut", "speaker name")
    url: str = opt(JSUT_URL, "archive URL to download when root is missing (empty: no download)")

    def validate(self) -> None:
        check_name(self.speaker, "corpus.speaker")
        if not self.subsets or ("*" in self.subsets and self.subsets != ["*"]):
            raise ValueError("corpus.subsets: use ['*'] alone or a list of subset folders")


def check_text_spk(corpus_names: list[str], text: TextConfig | None, pairs: list) -> None:
    """Refuse a spk that mixes text and parallel corpora, or whose ``text:`` does not fit.

    Raises:
        ValueError: the message names the key and the fix.
    """
    kinds = {name in TEXT_CORPORA for name in corpus_names}
    if len(kinds) > 1:
        raise ValueError(
            f"corpora {corpus_names} mix text corpora ({', '.join(TEXT_CORPORA)}) with parallel "
            "ones; make one spk for each"
        )
    is_text = kinds == {True}
    if is_text and text is None:
        raise ValueError(
            f"corpus '{corpus_names[0]}' reads transcripts: add a text block, e.g. "
            "text: {frontend: espeak, language: en-us}"
        )
    if text is not None and not is_text:
        raise ValueError(
            f"text is set but corpus '{corpus_names[0]}' has no transcripts; remove text or use "
            f"a text corpus ({', '.join(TEXT_CORPORA)})"
        )
    if is_text and pairs:
        raise ValueError("pairs is for parallel corpora; a text spk has no voice pairs")
