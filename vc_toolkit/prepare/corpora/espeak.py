"""Minimal ctypes binding of libespeak-ng (shipped by the ``espeakng-loader`` wheel).

Only what the demo corpus needs: pick a voice and variant, set pitch, range
and rate, and synthesise a sentence to int16 samples at the library's rate
(22.05 kHz). Synthesis is synchronous.

libespeak-ng keeps synthesiser state (glottal phase, random generators) from
one call to the next, even across ``espeak_Initialize``. Output is therefore
byte-reproducible only for the first call in a process, and voices with breath
noise draw from libc's ``rand``, which anything else in the process may have
advanced. Callers that need reproducible files (the demo corpus) initialise the
library in a parent that never synthesises, synthesise each file in a freshly
forked child, and :meth:`Espeak.seed` it first.

Example:
    >>> Espeak().sample_rate
    22050
"""

from __future__ import annotations

import ctypes

import numpy as np

from vc_toolkit.config.spk import Voice

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded or refused a request."""


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
                "the demo corpus needs the 'espeakng-loader' package; run utils/install.sh"
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
        data = str(espeakng_loader.get_data_path()).encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {rate}) with data at {data!r}")
        self.sample_rate = int(rate)
        self._lib = lib
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)

    def seed(self, seed: int) -> None:
        """Seed the random generators behind breath noise and flutter (libc ``rand``)."""
        ctypes.CDLL(None).srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        if hasattr(self._lib, "espeak_ng_SetRandSeed"):
            self._lib.espeak_ng_SetRandSeed(ctypes.c_int(seed & 0x7FFFFFFF))

    def synth(self, text: str, voice: Voice, ssml: bool = False) -> np.ndarray:
        """Synthesise ``text`` with ``voice``.

        Args:
            text: Sentence to speak (SSML markup such as ``<break time="300ms"/>`` when ``ssml``).
            voice: Language, variant, pitch (0-100), range (0-100), rate (wpm).
            ssml: Interpret ``text`` as SSML.

        Returns:
            (N,) int16 samples at :attr:`sample_rate`.
        """
        name = f"{voice.language}+{voice.variant}".encode()
        if self._lib.espeak_SetVoiceByName(name) != 0:
            raise EspeakError(
                f"espeak-ng has no voice '{voice.language}' with variant '{voice.variant}'; "
                "see espeak-ng-data/voices/!v in the espeakng_loader package for variants"
            )
        for param, value in (
            (_ESPEAK_RATE, voice.rate),
            (_ESPEAK_PITCH, voice.pitch),
            (_ESPEAK_RANGE, voice.range),
        ):
            self._lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        buf = text.encode("utf-8")
        flags = _CHARS_UTF8 | (_SSML if ssml else 0)
        err = self._lib.espeak_Synth(buf, len(buf) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
        self._lib.espeak_Synchronize()
        if err != 0:
            raise EspeakError(f"espeak_Synth failed with code {err} on {text!r}")
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks).astype(np.int16)
