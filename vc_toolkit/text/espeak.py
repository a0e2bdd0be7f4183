"""Minimal ctypes binding of libespeak-ng (shipped by the ``espeakng-loader`` wheel).

What the toolkit needs: pick a voice and variant, set pitch, range and rate,
synthesise a sentence to int16 samples at the library's rate (22.05 kHz) with the
phoneme events of the synthesis (name and sample position of every phoneme), and
turn text into phoneme names (``espeak_TextToPhonemes``) for the text front-end.
Synthesis is synchronous. The library is initialised with phoneme events on and IPA
names; that does not change the synthesised samples.

libespeak-ng keeps synthesiser state (glottal phase, random generators) from
one call to the next, even across ``espeak_Initialize``. Output is therefore
byte-reproducible only for the first call in a process, and voices with breath
noise draw from libc's ``rand``, which anything else in the process may have
advanced. Callers that need reproducible files (the demo corpora) initialise the
library in a parent that never synthesises, synthesise each file in a freshly
forked child, and :meth:`Espeak.seed` it first. Phonemisation
(:meth:`Espeak.phonemes`) keeps no state between calls.

Example:
    >>> tts = Espeak()
    >>> tts.sample_rate
    22050
    >>> tts.phonemes("hello world", "en-us")
    [['h', 'ə', 'l', 'ˈoʊ'], ['w', 'ˈɜː', 'l', 'd']]
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

import numpy as np

from vc_toolkit.config.voice import Voice

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA = 0x01, 0x02
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_PHONEMES_IPA = 0x02
_EVENT_END_LIST, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_SEPARATOR = "_"
_LANGUAGE_SWITCH = re.compile(r"\([a-z][a-z0-9-]*\)")  # "(fr)" around words read in another


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h (the ``id`` union read as its 8-byte string)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded or refused a request."""


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme of a synthesis.

    Attributes:
        sample: where it starts, in samples of the synthesised audio.
        name: IPA name (stress marks included); "" for a pause.
        word: 0-based index of the word it belongs to (-1 before the first word).
    """

    sample: int
    name: str
    word: int


class Espeak:
    """A process-wide espeak-ng synthesiser (the library keeps global state)."""

    _instance: Espeak | None = None

    def __new__(cls) -> Espeak:
        if cls._instance is None:
            obj = super().__new__(cls)
            obj._init()
            cls._instance = obj
        return cls._instance

    def _init(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:  # pragma: no cover - pinned dependency
            raise EspeakError(
                "espeak-ng needs the 'espeakng-loader' package; run utils/install.sh"
            ) from err
        lib = ctypes.cdll.LoadLibrary(str(espeakng_loader.get_library_path()))
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        data = str(espeakng_loader.get_data_path()).encode()
        options = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {rate}) with data at {data!r}")
        self.sample_rate = int(rate)
        self._lib = lib
        self._voice: bytes | None = None
        self._chunks: list[np.ndarray] = []
        self._events: list[PhonemeEvent] = []
        self._word = -1

        def collect(wav, n, events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while events and events[i].type != _EVENT_END_LIST:
                ev = events[i]
                if ev.type == _EVENT_WORD:
                    self._word += 1
                elif ev.type == _EVENT_PHONEME:
                    name = ev.id.split(b"\0")[0].decode("utf-8", "replace")
                    self._events.append(PhonemeEvent(int(ev.sample), name, self._word))
                i += 1
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)

    def seed(self, seed: int) -> None:
        """Seed the random generators behind breath noise and flutter (libc ``rand``)."""
        ctypes.CDLL(None).srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        if hasattr(self._lib, "espeak_ng_SetRandSeed"):
            self._lib.espeak_ng_SetRandSeed(ctypes.c_int(seed & 0x7FFFFFFF))

    def _set_voice(self, name: str, what: str, cached: bool = True) -> None:
        key = name.encode()
        if cached and key == self._voice:
            return
        if self._lib.espeak_SetVoiceByName(key) != 0:
            raise EspeakError(
                f"espeak-ng has no {what} '{name}'; see espeak-ng-data/voices (variants in "
                "!v) in the espeakng_loader package"
            )
        self._voice = key

    def synth(self, text: str, voice: Voice, ssml: bool = False) -> np.ndarray:
        """Synthesise ``text`` with ``voice``.

        Args:
            text: Sentence to speak (SSML markup such as ``<break time="300ms"/>`` when ``ssml``).
            voice: Language, variant, pitch (0-100), range (0-100), rate (wpm).
            ssml: Interpret ``text`` as SSML.

        Returns:
            (N,) int16 samples at :attr:`sample_rate`; the phoneme events of this call are
            in :attr:`events` afterwards.
        """
        self._set_voice(f"{voice.language}+{voice.variant}", "voice/variant", cached=False)
        for param, value in (
            (_ESPEAK_RATE, voice.rate),
            (_ESPEAK_PITCH, voice.pitch),
            (_ESPEAK_RANGE, voice.range),
        ):
            self._lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events, self._word = [], [], -1
        buf = text.encode("utf-8")
        flags = _CHARS_UTF8 | (_SSML if ssml else 0)
        err = self._lib.espeak_Synth(buf, len(buf) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
        self._lib.espeak_Synchronize()
        if err != 0:
            raise EspeakError(f"espeak_Synth failed with code {err} on {text!r}")
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks).astype(np.int16)

    @property
    def events(self) -> list[PhonemeEvent]:
        """Phoneme events of the last :meth:`synth` call, in time order."""
        return list(self._events)

    def phonemes(self, text: str, language: str, ipa: bool = True) -> list[list[str]]:
        """Phoneme names of ``text``, per word, as espeak-ng pronounces it.

        Punctuation only ends espeak-ng's clauses (it is not returned); the caller splits
        pauses off first. Stress marks stay on the phoneme they precede (``ˈoʊ``).

        Args:
            text: Plain text (no SSML).
            language: espeak-ng language/voice name, e.g. ``en-us``.
            ipa: IPA names; else espeak-ng's ascii phoneme names.

        Returns:
            One list of phoneme names per word.
        """
        self._set_voice(language, "language")
        mode = (_PHONEMES_IPA if ipa else 0) | (ord(_SEPARATOR) << 8)
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        words: list[list[str]] = []
        while ptr.value:
            out = self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, mode)
            clause = _LANGUAGE_SWITCH.sub(" ", (out or b"").decode("utf-8", "replace"))
            for word in clause.split():
                names = [p for p in word.split(_SEPARATOR) if p]
                if names:
                    words.append(names)
        return words
