"""Dynamic time warping (compiled with numba) and DTW-derived durations.

The alignment uses the symmetric step pattern (right, down, diagonal), each
with weight 1, on a Euclidean frame-distance matrix [Sakoe & Chiba, "Dynamic
programming algorithm optimization for spoken word recognition", IEEE TASSP
1978]. Durations for a parallel VC model follow the usual recipe for
FastSpeech-style VC: every target frame is given to exactly one source frame
on the warping path, so each source frame receives a non-negative count and
the counts sum to the target length.

Example:
    >>> import numpy as np
    >>> src = np.array([[0.0], [1.0], [2.0]])
    >>> tgt = np.array([[0.0], [0.0], [1.0], [2.0], [2.0]])
    >>> path, cost = dtw(distance_matrix(src, tgt))
    >>> durations_from_path(path, 3, 5).tolist()
    [2, 1, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@numba.njit(cache=True)
def _accumulate(cost: np.ndarray) -> np.ndarray:
    n, m = cost.shape
    acc = np.empty((n, m), dtype=np.float64)
    acc[0, 0] = cost[0, 0]
    for j in range(1, m):
        acc[0, j] = acc[0, j - 1] + cost[0, j]
    for i in range(1, n):
        acc[i, 0] = acc[i - 1, 0] + cost[i, 0]
        for j in range(1, m):
            best = acc[i - 1, j - 1]
            if acc[i - 1, j] < best:
                best = acc[i - 1, j]
            if acc[i, j - 1] < best:
                best = acc[i, j - 1]
            acc[i, j] = cost[i, j] + best
    return acc


@numba.njit(cache=True)
def _backtrack(acc: np.ndarray) -> np.ndarray:
    n, m = acc.shape
    path = np.empty((n + m, 2), dtype=np.int64)
    i, j, k = n - 1, m - 1, 0
    while True:
        path[k, 0] = i
        path[k, 1] = j
        k += 1
        if i == 0 and j == 0:
            break
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diag, up, left = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
            if diag <= up and diag <= left:
                i -= 1
                j -= 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
    return path[:k][::-1].copy()


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` (N, D) and ``b`` (M, D) → (N, M)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def dtw(cost: np.ndarray) -> tuple[np.ndarray, float]:
    """Optimal monotonic alignment through a local-cost matrix.

    Args:
        cost: Local cost, (N, M), finite.

    Returns:
        ``(path, normalised_cost)``: ``path`` is (L, 2) int64 of ``(i, j)`` pairs from
        ``(0, 0)`` to ``(N-1, M-1)``; the cost is the accumulated cost divided by ``N + M``.
    """
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        raise ValueError(f"dtw needs a non-empty 2-D cost matrix, got shape {cost.shape}")
    acc = _accumulate(cost)
    path = _backtrack(acc)
    n, m = cost.shape
    return path, float(acc[-1, -1] / (n + m))


def durations_from_path(path: np.ndarray, n_src: int, n_tgt: int) -> np.ndarray:
    """Number of target frames each source frame stands for.

    Each target frame ``j`` is assigned to the middle source frame among those the
    path pairs it with; source frames that only share a target frame get 0.

    Args:
        path: (L, 2) DTW path of ``(src, tgt)`` indices.
        n_src: Number of source frames.
        n_tgt: Number of target frames.

    Returns:
        (n_src,) int64 durations, each ``>= 0``, summing to ``n_tgt``.
    """
    i, j = path[:, 0], path[:, 1]
    # first and last path position of every target frame
    starts = np.searchsorted(j, np.arange(n_tgt), side="left")
    ends = np.searchsorted(j, np.arange(n_tgt), side="right") - 1
    owner = i[(starts + ends) // 2]
    return np.bincount(owner, minlength=n_src).astype(np.int64)


def reduce_frames(x: np.ndarray, r: int) -> np.ndarray:
    """Average every ``r`` consecutive frames: (T, D) → (T // r, D). ``T`` must divide by ``r``."""
    if r == 1:
        return x
    t, d = x.shape
    if t % r:
        raise ValueError(f"frame count {t} is not a multiple of the reduction factor {r}")
    return x.reshape(t // r, r, d).mean(axis=1)


def _active(x: np.ndarray) -> np.ndarray:
    """Frames above the utterance's floor (zeroed silences sit exactly at the log floor)."""
    peak = x.max(axis=1)
    active = peak > x.min() + 1e-3
    return active if active.any() else np.ones(len(x), dtype=bool)


@dataclass
class Alignment:
    """A DTW alignment of two feature sequences at reduction factor ``r``.

    Attributes:
        durations (np.ndarray): (Ls,) int64 target reduced frames per source reduced frame.
        cost (float): relative path cost (see :func:`align_durations`).
        path (np.ndarray): (L, 2) ``(src, tgt)`` reduced-frame pairs.
        distances (np.ndarray): (Ls, Lt) frame distances the path runs through.
    """

    durations: np.ndarray
    cost: float
    path: np.ndarray
    distances: np.ndarray


def align(src: np.ndarray, tgt: np.ndarray, r: int = 1) -> Alignment:
    """The whole alignment behind :func:`align_durations` (same arguments)."""
    sides = []
    for x in (src, tgt):
        x = np.asarray(x, dtype=np.float64)
        act = _active(x)
        z = (x - x[act].mean(0)) / (x[act].std(0) + 1e-5)
        act_r = reduce_frames(act[:, None].astype(np.float64), r)[:, 0] > 0.5
        sides.append((reduce_frames(z, r), act_r))
    (a, act_a), (b, act_b) = sides
    dist = distance_matrix(a, b)
    path, _ = dtw(dist)
    on = act_a[path[:, 0]] | act_b[path[:, 1]]
    base = dist[np.ix_(act_a, act_b)].mean() if act_a.any() and act_b.any() else dist.mean()
    along = dist[path[on, 0], path[on, 1]].mean() if on.any() else 0.0
    cost = float(along / base) if base > 0 else 0.0
    return Alignment(durations_from_path(path, len(a), len(b)), cost, path, dist)


def align_durations(src: np.ndarray, tgt: np.ndarray, r: int = 1) -> tuple[np.ndarray, float]:
    """DTW durations between two feature sequences at reduction factor ``r``.

    Both sides are z-normalised per utterance and dimension over their *active*
    frames (frames above the log floor; zeroed silences excluded, so pauses do not
    shrink the scale), averaged over ``r`` frames, then aligned.

    The returned cost is scale-free: the mean distance along the path (steps
    touching an active frame) divided by the mean distance between all pairs of
    active frames. Well-aligned parallel pairs score clearly lower than pairs of
    different sentences, whatever their pause structure.

    Args:
        src: Source features, (Ts, D), ``Ts % r == 0``.
        tgt: Target features, (Tt, D), ``Tt % r == 0``.
        r: Reduction factor.

    Returns:
        ``(durations, cost)``: (Ts // r,) int64 target-reduced-frame counts summing to
        ``Tt // r``, and the relative path cost (for outlier detection).
    """
    found = align(src, tgt, r)
    return found.durations, found.cost
