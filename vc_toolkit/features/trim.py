"""Silence handling with pydub semantics, vectorised in numpy.

The rules reproduce ``pydub`` 0.25.1 (``pydub.silence``) on float audio in
[-1, 1], whose full scale is 1.0 (pydub divides by ``max_possible_amplitude``;
soundfile's integer scaling makes the two agree):

* **Time grid.** Positions are integer milliseconds. The audio lasts
  ``L = round(1000 * n / sr)`` ms; millisecond ``m`` starts at sample
  ``floor(m * sr / 1000)``. A slice ``[a, b)`` ms covers samples
  ``floor(a*sr/1000) .. floor(min(b, L)*sr/1000)``; samples past the end count
  as zeros (pydub pads them), an empty slice has rms 0.
* **Level.** ``dBFS = 20 * log10(rms)``, ``rms = sqrt(mean(x**2))``; rms 0 is
  -inf dBFS. (pydub rounds rms down to an integer; on 16-bit audio that
  only matters within one LSB of a threshold.)
* **Leading silence** (``detect_leading_silence``): starting at 0, step by
  ``chunk_size`` ms while the chunk ``[m, m + chunk_size)`` is strictly below the
  threshold; the result is a multiple of ``chunk_size``, capped at ``L``.
* **Trailing silence**: the same on the time-reversed signal, with its own
  threshold (``trim.silence_thresh_t``); head and tail are found independently
  on the untrimmed signal.
* **Silences** (``detect_silence``): windows of ``min_silence_len`` ms starting at
  ``0, seek_step, 2*seek_step, ...`` (plus the last possible start) whose rms is
  ``<=`` the threshold; overlapping or touching silent windows merge into ranges
  ``[first_start, last_start + min_silence_len]``.
* **Internal silences**: silences (``silence_thresh_t``, ``min_silence_len``,
  1 ms seek step) that touch neither end of the signal they are found in.

Millisecond positions become samples with ``floor(ms * sr / 1000)``, except that a
position equal to ``L`` (the end) maps to ``n``.

Example:
    >>> sr = 1000
    >>> x = np.concatenate([np.zeros(120), np.full(500, 0.5), np.zeros(180)]).astype("f4")
    >>> leading_silence_ms(x, sr, -50.0, 50), leading_silence_ms(x[::-1], sr, -50.0, 50)
    (100, 150)
    >>> detect_silences(x, sr, 100, -50.0)
    [(0, 120), (620, 800)]
"""

from __future__ import annotations

import numpy as np

from vc_toolkit.config.spk import Trim


def length_ms(n_samples: int, sr: int) -> int:
    """Duration in whole milliseconds as pydub counts it: ``round(1000 * n / sr)``."""
    return round(1000 * (n_samples / sr))


def ms_to_samples(ms: np.ndarray | int, sr: int, n_samples: int) -> np.ndarray:
    """Millisecond positions → sample indices (``floor(ms*sr/1000)``; the end ``L`` → ``n``)."""
    ms = np.asarray(ms, dtype=np.int64)
    out = np.minimum(ms * sr // 1000, n_samples)
    return np.where(ms >= length_ms(n_samples, sr), n_samples, out)


def dbfs(x: np.ndarray) -> float:
    """Level of a float signal in dBFS (full scale 1.0); -inf for digital silence."""
    power = float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
    return 10.0 * np.log10(power) if power > 0 else -np.inf


def _window_power(cum: np.ndarray, sr: int, starts_ms: np.ndarray, width_ms: int) -> np.ndarray:
    """Mean square of the pydub slices ``[s, s + width)`` ms, (len(starts),) float64."""
    n = len(cum) - 1
    total = length_ms(n, sr)
    a = np.minimum(starts_ms, total) * sr // 1000
    b = np.minimum(starts_ms + width_ms, total) * sr // 1000
    sums = cum[np.minimum(b, n)] - cum[np.minimum(a, n)]
    count = b - a
    return np.divide(sums, count, out=np.zeros(len(sums)), where=count > 0)


def _power_cumsum(x: np.ndarray) -> np.ndarray:
    cum = np.empty(len(x) + 1, dtype=np.float64)
    cum[0] = 0.0
    np.cumsum(np.square(x, dtype=np.float64), out=cum[1:])
    return cum


def leading_silence_ms(x: np.ndarray, sr: int, thresh_db: float, chunk_ms: int) -> int:
    """pydub ``detect_leading_silence``: milliseconds of silence at the start of ``x``.

    Args:
        x: Float signal in [-1, 1], (n,). Pass ``x[::-1]`` for the trailing silence.
        sr: Sample rate, Hz.
        thresh_db: A chunk strictly below this level (dBFS) is silent.
        chunk_ms: Scan step, ms (> 0).

    Returns:
        A multiple of ``chunk_ms`` (the start of the first non-silent chunk), or the
        length in ms if every chunk is silent.
    """
    if chunk_ms <= 0:
        raise ValueError(f"chunk size must be a positive number of ms, got {chunk_ms}")
    total = length_ms(len(x), sr)
    starts = np.arange(0, total, chunk_ms, dtype=np.int64)
    power = _window_power(_power_cumsum(x), sr, starts, chunk_ms)
    loud = np.flatnonzero(~(power < 10.0 ** (thresh_db / 10.0)))
    return int(starts[loud[0]]) if len(loud) else total


def _silence_ranges_ms(
    x: np.ndarray, sr: int, min_silence_len_ms: int, thresh_db: float, seek_step_ms: int
) -> np.ndarray:
    """pydub ``detect_silence`` ranges in ms, (R, 2) int64."""
    if min_silence_len_ms <= 0 or seek_step_ms <= 0:
        raise ValueError(
            f"min_silence_len ({min_silence_len_ms} ms) and seek_step ({seek_step_ms} ms) "
            "must be positive"
        )
    total = length_ms(len(x), sr)
    if total < min_silence_len_ms:
        return np.zeros((0, 2), dtype=np.int64)
    last = total - min_silence_len_ms
    starts = np.arange(0, last + 1, seek_step_ms, dtype=np.int64)
    if last % seek_step_ms:
        starts = np.append(starts, last)
    power = _window_power(_power_cumsum(x), sr, starts, min_silence_len_ms)
    silent = starts[power <= 10.0 ** (thresh_db / 10.0)]
    if len(silent) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    step = np.diff(silent)
    new_range = (step != seek_step_ms) & (step > min_silence_len_ms)
    begins = np.concatenate([silent[:1], silent[1:][new_range]])
    ends = np.concatenate([silent[:-1][new_range], silent[-1:]]) + min_silence_len_ms
    return np.stack([begins, ends], axis=1)


def detect_silences(
    x: np.ndarray, sr: int, min_silence_len_ms: int, thresh_db: float, seek_step_ms: int = 1
) -> list[tuple[int, int]]:
    """pydub ``detect_silence`` on a float signal, as sample ranges.

    Args:
        x: Float signal in [-1, 1], (n,).
        sr: Sample rate, Hz.
        min_silence_len_ms: Shortest silence, ms.
        thresh_db: A window whose level is ``<=`` this (dBFS) is silent.
        seek_step_ms: Step between window starts, ms.

    Returns:
        ``[(start_sample, end_sample), ...]`` in time order, end exclusive.
    """
    ranges = _silence_ranges_ms(x, sr, min_silence_len_ms, thresh_db, seek_step_ms)
    samples = ms_to_samples(ranges, sr, len(x))
    return [(int(a), int(b)) for a, b in samples]


def internal_silences(x: np.ndarray, sr: int, trim_cfg: Trim) -> list[tuple[int, int]]:
    """Silences of ``x`` that touch neither end (``silence_thresh_t``, ``min_silence_len``).

    Args:
        x: Float signal (usually already head/tail trimmed), (n,).
        sr: Sample rate, Hz.
        trim_cfg: The spk's ``trim`` section.

    Returns:
        ``[(start_sample, end_sample), ...]`` in time order.
    """
    ranges = _silence_ranges_ms(x, sr, trim_cfg.min_silence_len, trim_cfg.silence_thresh_t, 1)
    inner = ranges[(ranges[:, 0] > 0) & (ranges[:, 1] < length_ms(len(x), sr))]
    return [(int(a), int(b)) for a, b in ms_to_samples(inner, sr, len(x))]


def zero_internal_silences(x: np.ndarray, silences: list[tuple[int, int]]) -> np.ndarray:
    """A copy of ``x`` with the samples of each ``(start, end)`` range set to 0."""
    y = np.array(x, copy=True)
    for start, end in silences:
        y[start:end] = 0
    return y


def trim_silence(x: np.ndarray, sr: int, trim_cfg: Trim) -> tuple[np.ndarray, int, int]:
    """Cut leading (``silence_thresh_h``) and trailing (``silence_thresh_t``) silence.

    Args:
        x: Float signal in [-1, 1], (n,).
        sr: Sample rate, Hz.
        trim_cfg: The spk's ``trim`` section; ``enabled: false`` returns ``x`` unchanged.

    Returns:
        ``(y, head_samples, tail_samples)`` with ``y = x[head : n - tail]`` and
        ``head + len(y) + tail == n``. An all-silent signal gives an empty ``y``.
    """
    n = len(x)
    if not trim_cfg.enabled:
        return x, 0, 0
    head_ms = leading_silence_ms(x, sr, trim_cfg.silence_thresh_h, trim_cfg.chunk_size)
    head = int(ms_to_samples(head_ms, sr, n))
    tail_ms = leading_silence_ms(x[::-1], sr, trim_cfg.silence_thresh_t, trim_cfg.chunk_size)
    tail = min(int(ms_to_samples(tail_ms, sr, n)), n - head)
    return x[head : n - tail], head, tail
