"""Reference phoneme timings (``data/<SPK>/phone_times/<utt>.tsv``) against token durations.

The ``demo_tts`` corpus keeps espeak-ng's own phoneme events of each synthesis
(``start end phone word``, seconds in the wav file; pauses ``_``). Its phonemes are
the ``espeak`` front-end's phoneme tokens in order, so each phoneme token gets the
time espeak-ng started it. A learned alignment (reduced frames per token) puts the
start of token ``k`` at the frame edge ``r * sum(d[:k]) - 1/2`` (frame ``f`` is centred
at ``head_seconds + f * hop / sr`` in the file). :func:`boundary_errors` compares the two.

Example:
    >>> rows = [PhoneTime(0.30, 0.40, "h", 0), PhoneTime(0.40, 0.50, "ˈoʊ", 0),
    ...         PhoneTime(0.50, 0.60, "_", -1)]
    >>> starts = token_starts(["h", "ˈ", "oʊ", "."], rows, pauses=".")
    >>> starts.tolist()[0], starts.tolist()[2], bool(np.isnan(starts[1]))
    (0.3, 0.4, True)
    >>> err = boundary_errors(np.array([3, 0, 1, 1]), starts, head_seconds=0.325, hop=50,
    ...                       sample_rate=1000, reduction_factor=1)
    >>> np.round(err * 1000).tolist()   # ms: token 0 starts at frame edge -0.5, token 2 at 2.5
    [0.0, 50.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PAUSE = "_"
STRESS = "ˈˌ"
HEADER = "start\tend\tphone\tword"


@dataclass(frozen=True)
class PhoneTime:
    """One row of a phone-times file: seconds in the wav file, name, word index (-1: pause)."""

    start: float
    end: float
    phone: str
    word: int


def read_phone_times(path: str | Path) -> list[PhoneTime]:
    """The rows of a phone-times file.

    Raises:
        ValueError: not a phone-times file (header or a row malformed), naming the line.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != HEADER:
        raise ValueError(f"{path}: expected the header {HEADER!r}")
    out = []
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) != 4:
            raise ValueError(f"{path}:{lineno}: expected 4 tab-separated columns")
        word = -1 if parts[3] == "-" else int(parts[3])
        out.append(PhoneTime(float(parts[0]), float(parts[1]), parts[2], word))
    return out


def token_starts(
    symbols: Sequence[str], rows: Sequence[PhoneTime], pauses: Iterable[str]
) -> np.ndarray | None:
    """Start (seconds in the file) of each phoneme token; NaN for other tokens.

    Phoneme tokens are those that are not pauses, word boundaries or stress marks;
    they are matched in order with the non-pause rows (stress marks stripped from both
    sides). The rows carry IPA names: use with ``text.phonemes: ipa``.

    Args:
        symbols: The utterance's tokens as symbols (``SymbolTable.decode``).
        rows: Its phone times.
        pauses: The pause tokens (``SymbolTable.pauses``).

    Returns:
        (N,) float64, or None when the two phoneme sequences differ.
    """
    phones = [r for r in rows if r.phone != PAUSE]
    skip = set(pauses) | set(STRESS)
    out = np.full(len(symbols), np.nan)
    k = 0
    for i, s in enumerate(symbols):
        if not s.strip() or s in skip:
            continue
        if k >= len(phones) or phones[k].phone.lstrip(STRESS) != s.lstrip(STRESS):
            return None
        out[i] = phones[k].start
        k += 1
    return out if k == len(phones) else None


def boundary_errors(
    durations: np.ndarray,
    starts: np.ndarray,
    head_seconds: float,
    hop: int,
    sample_rate: int,
    reduction_factor: int,
) -> np.ndarray:
    """Absolute differences (seconds) between aligned and reference phoneme starts.

    Args:
        durations: (N,) reduced frames per token (a learned alignment).
        starts: (N,) reference starts from :func:`token_starts` (NaN: not compared).
        head_seconds: Seconds trimmed at the start of the file (the dump's manifest).
        hop: Frame shift, samples.
        sample_rate: Hz.
        reduction_factor: r.

    Returns:
        (M,) seconds, one per compared token.
    """
    edges = reduction_factor * np.concatenate([[0], np.cumsum(durations)[:-1]]) - 0.5
    aligned = head_seconds + edges * hop / sample_rate
    keep = ~np.isnan(starts)
    return np.abs(aligned[keep] - starts[keep])
