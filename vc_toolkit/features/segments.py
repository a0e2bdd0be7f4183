"""Sentence segments: pause-delimited stretches of an utterance, as reduced-frame counts.

A (trimmed) signal is cut at each internal silence (at least
``trim.min_silence_len`` ms below ``trim.silence_thresh_t``, see
:func:`vc_toolkit.features.trim.internal_silences`); the cut sits in the middle
of the pause. A cut at sample ``s`` falls on the reduced-frame boundary
``round((s + hop / 2) / (hop * r))`` (frame ``t`` is centred on sample ``t * hop``),
then cuts are nudged apart so every segment keeps at least one reduced frame and
the counts sum to the sequence's reduced length ``N``.

Source and target must have the same number of segments. When they differ, the
**fallback** merges segments on the side with more of them, across its
shortest pauses first (ties: the earlier pause), until the counts match. If a side
then has fewer reduced frames than segments, both sides merge further the same way.

Example:
    >>> a = Segmentation.from_silences(1000, [(200, 300), (600, 650)])
    >>> b = Segmentation.from_silences(1200, [(500, 700)])
    >>> a.cuts.tolist(), a.pauses.tolist()
    ([250, 625], [100, 50])
    >>> src, tgt, fallback = pair_segments(a, b, n_src=10, n_tgt=12, hop_length=50, r=2)
    >>> src.tolist(), tgt.tolist(), fallback
    ([3, 7], [6, 6], True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vc_toolkit.config.spk import Trim
from vc_toolkit.features.trim import internal_silences


@dataclass(frozen=True)
class Segmentation:
    """Where one signal splits into segments.

    Attributes:
        n_samples (int): signal length.
        cuts (np.ndarray): cut positions (pause middles), (K - 1,) int64, increasing.
        pauses (np.ndarray): length of the pause at each cut, samples, (K - 1,) int64.
    """

    n_samples: int
    cuts: np.ndarray
    pauses: np.ndarray

    @property
    def n_segments(self) -> int:
        return len(self.cuts) + 1

    @classmethod
    def whole(cls, n_samples: int) -> Segmentation:
        """The whole signal as one segment."""
        empty = np.zeros(0, dtype=np.int64)
        return cls(n_samples, empty, empty)

    @classmethod
    def from_silences(cls, n_samples: int, silences: list[tuple[int, int]]) -> Segmentation:
        """Cut in the middle of each ``(start, end)`` internal silence (samples)."""
        ranges = np.asarray(silences, dtype=np.int64).reshape(-1, 2)
        return cls(n_samples, (ranges[:, 0] + ranges[:, 1]) // 2, ranges[:, 1] - ranges[:, 0])

    def merge_to(self, k: int) -> Segmentation:
        """Keep the ``k - 1`` longest pauses (drop the shortest first; ties: the earlier)."""
        if k < 1:
            raise ValueError(f"cannot merge into {k} segments; need at least 1")
        drop = self.n_segments - k
        if drop <= 0:
            return self
        order = np.argsort(self.pauses, kind="stable")
        keep = np.sort(order[drop:])
        return Segmentation(self.n_samples, self.cuts[keep], self.pauses[keep])


def split_signal(x: np.ndarray, sr: int, trim_cfg: Trim) -> Segmentation:
    """Segments of a trimmed signal, cut at its internal silences.

    Args:
        x: Trimmed signal, (n,).
        sr: Sample rate, Hz.
        trim_cfg: The spk's ``trim`` section.

    Returns:
        The :class:`Segmentation`.
    """
    return Segmentation.from_silences(len(x), internal_silences(x, sr, trim_cfg))


def reduced_counts(seg: Segmentation, n_reduced: int, hop_length: int, r: int) -> np.ndarray:
    """Reduced frames per segment.

    Args:
        seg: Cuts of one signal.
        n_reduced: Reduced length of its feature sequence (``T // r``).
        hop_length: Frame shift, samples.
        r: Reduction factor.

    Returns:
        (K,) int32, each ``>= 1``, summing to ``n_reduced``.
    """
    k = seg.n_segments
    if n_reduced < k:
        raise ValueError(f"{n_reduced} reduced frames cannot hold {k} segments of >= 1 frame")
    bounds = np.floor((seg.cuts + hop_length / 2) / (hop_length * r) + 0.5).astype(np.int64)
    index = np.arange(1, k, dtype=np.int64)
    # bounds[i] - (i + 1) must be non-decreasing, >= 0 and <= n_reduced - k
    slack = np.maximum.accumulate(np.maximum(bounds - index, 0))
    bounds = np.minimum(slack, n_reduced - k) + index
    edges = np.concatenate([[0], bounds, [n_reduced]])
    return np.diff(edges).astype(np.int32)


def pair_segments(
    src: Segmentation, tgt: Segmentation, n_src: int, n_tgt: int, hop_length: int, r: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Segment frame counts of a parallel pair, with the same number on both sides.

    Args:
        src: Source cuts.
        tgt: Target cuts.
        n_src: Source reduced length (``Ts // r``), >= 1.
        n_tgt: Target reduced length (``Tt // r``), >= 1.
        hop_length: Frame shift, samples.
        r: Reduction factor.

    Returns:
        ``(src_seg, tgt_seg, fallback_used)``: (K,) int32 each, sums ``n_src`` and
        ``n_tgt``; ``fallback_used`` tells whether any segments were merged.
    """
    k = min(src.n_segments, tgt.n_segments, n_src, n_tgt)
    fallback = k != src.n_segments or k != tgt.n_segments
    src, tgt = src.merge_to(k), tgt.merge_to(k)
    return (
        reduced_counts(src, n_src, hop_length, r),
        reduced_counts(tgt, n_tgt, hop_length, r),
        fallback,
    )
