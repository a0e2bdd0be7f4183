"""Text front-ends: a transcript → a list of symbols (phonemes or characters).

Every front-end is registered in :data:`FRONTENDS` under the name the spk's
``text.frontend`` selects, is built as ``cls(text_cfg)`` and has
``symbols_of(text) -> list[str]``. They share how text is cut
(:func:`split_pauses`): pause punctuation (``text.pauses``) becomes a pause token
(the character itself) and words are separated by the word-boundary token
:data:`WORD_BOUNDARY` (with ``text.word_boundary``).

* ``espeak``: phonemes from libespeak-ng (:mod:`vc_toolkit.text.espeak`), IPA or
  espeak's ascii names, stress marks as tokens of their own (``ˈ``/``ˌ``, also in ascii
  mode, so they never clash with a comma), attached to the phoneme, or dropped.
  Numbers and abbreviations are read by espeak-ng's own rules.
* ``chars``: characters (lowercased with ``text.lowercase``): letters, marks, digits and
  the characters of ``text.charset``; other punctuation is dropped. A non-empty charset
  fixes the symbol set: a letter outside it is an unknown symbol.
* ``openjtalk``: Japanese phonemes from pyopenjtalk-plus (an optional extra, which ships
  its dictionary and runs offline).

Example:
    >>> from vc_toolkit.config.text import TextConfig
    >>> FRONTENDS.get("chars")(TextConfig(frontend="chars")).symbols_of("Hi, Bo!")
    ['h', 'i', ',', 'b', 'o', '!']
    >>> FRONTENDS.get("espeak")(TextConfig()).symbols_of("Hello, world.")
    ['h', 'ə', 'l', 'ˈ', 'oʊ', ',', 'w', 'ˈ', 'ɜː', 'l', 'd', '.']
"""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod

import numpy as np

from vc_toolkit.config.text import TextConfig
from vc_toolkit.errors import UserError
from vc_toolkit.registry import Registry
from vc_toolkit.text.symbols import WORD_BOUNDARY, SymbolTable

FRONTENDS: Registry = Registry("text.frontend")
"""Front-ends by ``text.frontend`` name."""
STRESS_IPA = {"ˈ": "ˈ", "ˌ": "ˌ"}
STRESS_ASCII = {"'": "ˈ", ",": "ˌ"}


def split_pauses(text: str, pauses: str) -> list[tuple[str, str | None]]:
    """Cut ``text`` after each run of pause punctuation.

    A pause character counts unless it sits between two ASCII letters or digits
    (``3.50``, ``10:30``, ``e.g``); a run of them (with spaces between) is one pause,
    named by its first character.

    Returns:
        ``(chunk, pause character or None)`` pairs; chunks may be empty.

    Example:
        >>> split_pauses("Well... 3.50, ok?! no", ",.?!")
        [('Well', '.'), ('3.50', ','), ('ok', '?'), ('no', None)]
    """
    out: list[tuple[str, str | None]] = []
    chunk: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        inside = 0 < i < n - 1 and _ascii_alnum(text[i - 1]) and _ascii_alnum(text[i + 1])
        if c not in pauses or inside:
            chunk.append(c)
            i += 1
            continue
        j = i
        while j < n and (text[j] in pauses or text[j].isspace()):
            j += 1
        out.append(("".join(chunk), c))
        chunk = []
        i = j
    if chunk or not out:
        out.append(("".join(chunk), None))
    return out


def _ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


class Frontend(ABC):
    """Base of the front-ends: text → symbols, pauses and word boundaries shared.

    Args:
        cfg: The spk's ``text`` block.
    """

    registry_name = ""

    def __init__(self, cfg: TextConfig) -> None:
        self.cfg = cfg

    @property
    def pause_symbols(self) -> tuple[str, ...]:
        """The pause tokens this front-end can emit."""
        return tuple(dict.fromkeys(self.cfg.pauses))

    def inventory(self) -> list[str]:
        """Symbols every table of this front-end holds, seen in the texts or not."""
        return [*self.pause_symbols, *([WORD_BOUNDARY] if self.cfg.word_boundary else [])]

    @abstractmethod
    def words_of(self, chunk: str) -> list[list[str]]:
        """Symbols of each word of a chunk of text without pauses."""

    def symbols_of(self, text: str) -> list[str]:
        """The symbols of ``text``: words joined by boundaries, pause tokens kept.

        No boundary follows or precedes a pause token, and none starts or ends the list.
        """
        out: list[str] = []
        for chunk, pause in split_pauses(text, self.cfg.pauses):
            for k, word in enumerate(self.words_of(chunk)):
                if k and self.cfg.word_boundary:
                    out.append(WORD_BOUNDARY)
                out.extend(word)
            if pause is not None:
                out.append(pause)
        return out


@FRONTENDS.register("espeak")
class EspeakFrontend(Frontend):
    """Phonemes from libespeak-ng (``text.language``, ``text.phonemes``, ``text.stress``)."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__(cfg)
        from vc_toolkit.text.espeak import Espeak, EspeakError

        self._tts = Espeak()
        try:
            self._tts.phonemes("", cfg.language)
        except EspeakError as err:
            raise UserError(f"text.language: {err}") from None
        self._stress = STRESS_IPA if cfg.phonemes == "ipa" else STRESS_ASCII

    def _split_stress(self, name: str) -> list[str]:
        marks = []
        while name and name[0] in self._stress:
            marks.append(self._stress[name[0]])
            name = name[1:]
        if self.cfg.stress == "none" or not name:
            return [name] if name else []
        if self.cfg.stress == "attached":
            return ["".join(marks) + name]
        return [*marks, name]

    def words_of(self, chunk: str) -> list[list[str]]:
        words = self._tts.phonemes(chunk, self.cfg.language, self.cfg.phonemes == "ipa")
        out = [[s for name in word for s in self._split_stress(name)] for word in words]
        return [w for w in out if w]


@FRONTENDS.register("chars")
class CharsFrontend(Frontend):
    """Characters (``text.lowercase``, ``text.charset``)."""

    def inventory(self) -> list[str]:
        return [*super().inventory(), *self.cfg.charset]

    def _keep(self, c: str) -> bool:
        # letters, marks and digits outside a charset stay, and the table reports them
        return c in self.cfg.charset or unicodedata.category(c)[0] in "LMN"

    def words_of(self, chunk: str) -> list[list[str]]:
        text = unicodedata.normalize("NFC", chunk)
        text = text.lower() if self.cfg.lowercase else text
        words = [[c for c in word if self._keep(c)] for word in text.split()]
        return [w for w in words if w]


@FRONTENDS.register("openjtalk")
class OpenJTalkFrontend(Frontend):
    """Japanese phonemes from pyopenjtalk-plus (the optional extra ``ja``).

    OpenJTalk's own ``pau`` (at punctuation it was given) is dropped: pauses come from
    ``text.pauses`` as in the other front-ends. Japanese has no spaces between words, so
    no word-boundary tokens are emitted.
    """

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__(cfg)
        try:
            import pyopenjtalk
        except ImportError:
            raise UserError(
                "text.frontend openjtalk needs pyopenjtalk-plus (its dictionary ships in the "
                "wheel): pip install -e '.[ja]', or use text.frontend chars"
            ) from None
        self._g2p = pyopenjtalk.g2p

    def inventory(self) -> list[str]:
        return list(self.pause_symbols)

    def words_of(self, chunk: str) -> list[list[str]]:
        if not chunk.strip():
            return []
        phones = [p for p in self._g2p(chunk).split() if p != "pau"]
        return [phones] if phones else []


def build_frontend(cfg: TextConfig) -> Frontend:
    """The front-end ``cfg.frontend`` names, built for ``cfg``."""
    return FRONTENDS.get(cfg.frontend)(cfg)


def text_to_ids(text: str, cfg: TextConfig, table: SymbolTable) -> np.ndarray:
    """Token ids of a new sentence, as stage 1 made them for the spk's texts.

    Args:
        text: The sentence.
        cfg: The spk's frozen ``text`` block.
        table: The spk's symbol table (``dump/<SPK>/symbols.json``).

    Returns:
        (N,) int64 ids, no padding.

    Raises:
        UserError: the text gives no symbol, or symbols the table does not know (named).
    """
    symbols = build_frontend(cfg).symbols_of(text)
    if not [s for s in symbols if s not in table.pauses and s != WORD_BOUNDARY]:
        raise UserError(f"text {text!r} gives no {cfg.frontend} symbols to speak")
    return np.asarray(table.encode(symbols, where=f"text {text!r}"), dtype=np.int64)
