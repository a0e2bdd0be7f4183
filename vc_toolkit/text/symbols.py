"""The symbol table of a text spk: symbols ↔ integer ids, frozen in ``dump/<SPK>/symbols.json``.

Id 0 is padding (:data:`PAD`), never a real symbol. The other ids follow the sorted
(code point) order of the symbols, so the table depends only on *which* symbols the
spk's texts hold, never on the order files were read. Pause tokens
(punctuation kept by the front-end) are listed in :attr:`SymbolTable.pause_ids`.

Example:
    >>> t = SymbolTable.build([["b", "a", ","], ["c", "a"]], pauses=[","])
    >>> t.symbols, len(t), t.encode(["a", "c", ","]), t.pause_ids
    (['<pad>', ',', 'a', 'b', 'c'], 5, [2, 4, 1], [1])
    >>> t.decode([2, 4, 0, 0])
    ['a', 'c']
    >>> try:
    ...     t.encode(["a", "x", "ʔ", "x"])
    ... except UserError as err:
    ...     print(err)
    unknown symbols 'x', 'ʔ' (3 of 4 tokens); the symbol table has 4 symbols
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vc_toolkit.errors import UserError
from vc_toolkit.io import atomic_write_text

PAD = "<pad>"
"""The padding symbol, id 0."""
WORD_BOUNDARY = " "
"""The word-boundary token the front-ends put between words."""
SYMBOLS_FILE = "symbols.json"
"""The frozen table in ``dump/<SPK>/``."""
FORMAT = 1


class SymbolTable:
    """Symbols and their ids (0 is padding).

    Args:
        symbols: The real symbols (no padding), in id order from 1.
        pauses: Which of them are pause tokens.
        meta: Anything to store beside the table (e.g. the ``text`` block it was made with).

    Raises:
        ValueError: a symbol is repeated, is the padding symbol, or a pause is not a symbol.
    """

    def __init__(
        self, symbols: Sequence[str], pauses: Iterable[str] = (), meta: dict | None = None
    ) -> None:
        symbols = list(symbols)
        if PAD in symbols or len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols must be distinct and not {PAD!r}")
        self._symbols = [PAD, *symbols]
        self._ids = {s: i for i, s in enumerate(self._symbols)}
        self.pauses = tuple(sorted(set(pauses)))
        missing = [p for p in self.pauses if p not in self._ids]
        if missing:
            raise ValueError(f"pause tokens {missing} are not symbols of the table")
        self.meta = dict(meta or {})

    @classmethod
    def build(
        cls,
        sequences: Iterable[Sequence[str]],
        pauses: Iterable[str] = (),
        base: Iterable[str] = (),
        meta: dict | None = None,
    ) -> SymbolTable:
        """The table of every symbol in ``sequences`` and ``base``, in sorted order.

        Args:
            sequences: Symbol lists (e.g. one per utterance), any order.
            pauses: The front-end's pause tokens (all kept in the table).
            base: Symbols kept even when no sequence holds them (the front-end's inventory).
            meta: Stored beside the table.
        """
        pauses = list(pauses)
        seen = {s for seq in sequences for s in seq} | set(base) | set(pauses)
        return cls(sorted(seen), pauses, meta)

    @property
    def symbols(self) -> list[str]:
        """Every symbol in id order, :data:`PAD` first."""
        return list(self._symbols)

    @property
    def pause_ids(self) -> list[int]:
        """Ids of the pause tokens, ascending."""
        return sorted(self._ids[p] for p in self.pauses)

    def __len__(self) -> int:
        """Vocabulary size, padding included (embedding tables take this many rows)."""
        return len(self._symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids and symbol != PAD

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SymbolTable)
            and self._symbols == other._symbols
            and self.pauses == other.pauses
        )

    __hash__ = None  # type: ignore[assignment]

    def unknown(self, symbols: Iterable[str]) -> list[str]:
        """The distinct symbols of ``symbols`` the table does not hold, sorted."""
        return sorted({s for s in symbols if s not in self})

    def encode(self, symbols: Sequence[str], where: str = "") -> list[int]:
        """Ids of ``symbols``.

        Args:
            symbols: Symbols from the spk's front-end.
            where: What they come from, for the message (e.g. ``"utterance LJ001-0001"``).

        Raises:
            UserError: one line naming every unknown symbol.
        """
        unknown = self.unknown(symbols)
        if unknown:
            count = sum(1 for s in symbols if s not in self)
            names = ", ".join(repr(s) for s in unknown)
            at = f" in {where}" if where else ""
            raise UserError(
                f"unknown symbols {names}{at} ({count} of {len(symbols)} tokens); the symbol "
                f"table has {len(self) - 1} symbols"
            )
        return [self._ids[s] for s in symbols]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Symbols of ``ids``; padding (0) is skipped.

        Raises:
            IndexError: an id outside the table.
        """
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self._symbols):
                raise IndexError(f"symbol id {i} outside the table (0..{len(self) - 1})")
            if i:
                out.append(self._symbols[i])
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "pad": PAD,
            "symbols": self._symbols,
            "pauses": list(self.pauses),
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> None:
        """Write the table as JSON (atomically)."""
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=1)
        atomic_write_text(Path(path), text + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SymbolTable:
        """Read a table written by :meth:`save`.

        Raises:
            UserError: missing or unreadable file (says which stage makes it).
        """
        path = Path(path)
        fix = "run stage 1 of the text spk (./run.sh --stage 1 --stop_stage 1 --spk <SPK>)"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"no symbol table {path}; {fix}") from None
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{path}: unreadable symbol table ({err}); {fix}") from None
        symbols = data.get("symbols") or []
        if not symbols or symbols[0] != PAD or data.get("format") != FORMAT:
            raise UserError(f"{path}: not a symbol table of this toolkit; {fix}")
        return cls(symbols[1:], data.get("pauses", []), data.get("meta"))


def segments(tokens: Sequence[int], pause_ids: Iterable[int]) -> list[int]:
    """Tokens per segment: a segment ends after each pause token (and at the end).

    Example:
        >>> segments([5, 6, 1, 7, 1], pause_ids=[1]), segments([5, 1, 6], [1]), segments([5], [1])
        ([3, 2], [2, 1], [1])
    """
    pause = set(pause_ids)
    out, run = [], 0
    for t in tokens:
        run += 1
        if int(t) in pause:
            out.append(run)
            run = 0
    if run or not out:
        out.append(run)
    return out
