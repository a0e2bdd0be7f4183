"""Repeated measurements: summaries with spread, and interleaved A/B comparisons.

A figure is never one number: every measurement is repeated and reported as its
median with the spread (min–max and the interquartile range). Comparisons run
their contenders interleaved (A, B, A, B, ...) and form the ratio within each
repetition, so a burst of load from another process hits both sides of the same
ratio instead of faking a win for one of them.

Example:
    >>> s = summarize([3.0, 1.0, 2.0, 10.0])
    >>> s["median"], s["min"], s["max"], s["n"]
    (2.5, 1.0, 10.0, 4)
    >>> calls = []
    >>> out = interleave({"a": lambda: calls.append("a") or 1.0,
    ...                   "b": lambda: calls.append("b") or 2.0}, reps=2)
    >>> calls, out["b"]
    (['a', 'b', 'a', 'b'], [2.0, 2.0])
    >>> ratios([2.0, 4.0], [1.0, 1.0])
    [2.0, 4.0]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max, quartiles and count of repeated measurements.

    Args:
        values: One value per repetition, (n,), n >= 1.

    Returns:
        ``{"median", "min", "max", "q1", "q3", "n", "values"}`` (floats, ``n`` int, the raw
        ``values`` list kept so a reader can recompute anything).

    Raises:
        ValueError: no values.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("summarize() needs at least one measurement")
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return {
        "median": float(med),
        "min": float(x.min()),
        "max": float(x.max()),
        "q1": float(q1),
        "q3": float(q3),
        "n": int(x.size),
        "values": [float(v) for v in x],
    }


def interleave(fns: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[Any]]:
    """Call every function once per repetition, in the given order, ``reps`` times.

    Args:
        fns: Name → measurement (returns a number or a record).
        reps: Repetitions (>= 1).

    Returns:
        Name → the ``reps`` results, in call order.
    """
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    out: dict[str, list[Any]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            out[name].append(fn())
    return out


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-repetition ratios ``a[i] / b[i]`` (the two lists come from one interleaved run)."""
    if len(a) != len(b):
        raise ValueError(f"ratio of {len(a)} and {len(b)} repetitions: counts must match")
    return [float(x) / float(y) for x, y in zip(a, b)]


@contextmanager
def stopwatch(out: dict, key: str) -> Iterator[None]:
    """Add the seconds spent in the block to ``out[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        out[key] = out.get(key, 0.0) + time.perf_counter() - start
