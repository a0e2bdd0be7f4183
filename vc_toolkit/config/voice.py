"""An espeak-ng voice: the settings the embedded demo corpora synthesise with.

Shared by the parallel demo corpora (:mod:`vc_toolkit.config.spk`) and the text demo
corpus (:mod:`vc_toolkit.config.text`).
"""

from __future__ import annotations

from dataclasses import dataclass

from vc_toolkit.config.core import opt


@dataclass(kw_only=True)
class Voice:
    """An espeak-ng voice used by the embedded demo corpus."""

    language: str = opt("en-us", "espeak-ng language/voice name")
    variant: str = opt("m3", "espeak-ng voice variant (formant set), e.g. m3, f2, klatt4")
    pitch: int = opt(50, "base pitch, 0-100", min=0, max=100)
    range: int = opt(50, "pitch range, 0-100", min=0, max=100)
    rate: int = opt(175, "speaking rate in words per minute", min=80, max=450)
    pause_ms: int = opt(300, "pause inserted at the phrase break of long sentences, ms", min=0)


def check_pad(pad_ms: list[int]) -> None:
    """Refuse a ``pad_ms`` that is not ``[min, max]`` with ``0 <= min <= max``."""
    if len(pad_ms) != 2 or not 0 <= pad_ms[0] <= pad_ms[1]:
        raise ValueError(f"corpus.pad_ms must be [min, max] with 0 <= min <= max, got {pad_ms}")


def check_name(name: str, what: str) -> None:
    """Refuse a speaker/emotion name that is empty or holds spaces, ``->`` or ``__``."""
    if not name or any(c.isspace() for c in name) or "->" in name or "__" in name:
        raise ValueError(f"{what} {name!r} must be non-empty, without spaces, '->' or '__'")
