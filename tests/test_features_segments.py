"""Sentence segments: cuts at pause middles, reduced-frame counts, the merge fallback."""

from __future__ import annotations

import numpy as np
import pytest

from vc_toolkit.config.spk import Trim
from vc_toolkit.features.segments import (
    Segmentation,
    pair_segments,
    reduced_counts,
    split_signal,
)

SR = 16000


def tone(ms: int) -> np.ndarray:
    t = np.arange(ms * SR // 1000) / SR
    return (0.4 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def gap(ms: int) -> np.ndarray:
    return np.zeros(ms * SR // 1000, dtype=np.float32)


def seg(n: int, cuts: list[int], pauses: list[int]) -> Segmentation:
    return Segmentation(n, np.array(cuts, dtype=np.int64), np.array(pauses, dtype=np.int64))


def test_known_pauses_give_known_counts() -> None:
    x = np.concatenate([tone(400), gap(300), tone(500), gap(200), tone(300), gap(100), tone(100)])
    s = split_signal(x, SR, Trim(silence_thresh_t=-60.0, min_silence_len=150))
    # pauses [400, 700] and [1200, 1400] ms; the 100 ms one is shorter than 150 ms
    assert s.cuts.tolist() == [550 * 16, 1300 * 16]
    assert s.pauses.tolist() == [300 * 16, 200 * 16]
    assert s.n_segments == 3
    # hop 160, r 2: a cut at sample c falls on reduced boundary round((c + 80) / 320)
    n_reduced = (1 + len(x) // 160) // 2  # 1900 ms → 191 frames → 95 reduced
    counts = reduced_counts(s, n_reduced, 160, 2)
    assert counts.tolist() == [28, 65 - 28, 95 - 65]
    assert counts.dtype == np.int32


def test_every_segment_keeps_a_frame() -> None:
    s = seg(1000, [10, 12, 14], [1, 1, 1])  # all cuts round to reduced frame 1
    assert reduced_counts(s, 4, 100, 1).tolist() == [1, 1, 1, 1]
    s = seg(1000, [980, 990], [5, 5])  # both cuts past the end
    assert reduced_counts(s, 5, 100, 1).tolist() == [3, 1, 1]
    with pytest.raises(ValueError, match="cannot hold 4 segments"):
        reduced_counts(seg(1000, [10, 500, 900], [1, 1, 1]), 3, 100, 1)


@pytest.mark.parametrize("n_reduced", [1, 2, 7, 40])
def test_counts_sum_to_the_length(n_reduced: int) -> None:
    rng = np.random.default_rng(n_reduced)
    cuts = np.sort(rng.integers(0, 4000, size=min(n_reduced, 6) - 1))
    s = seg(4000, cuts.tolist(), [1] * len(cuts))
    counts = reduced_counts(s, n_reduced, 100, 1)
    assert counts.sum() == n_reduced and counts.min() >= 1 and len(counts) == len(cuts) + 1


def test_fallback_merges_the_shortest_pauses_of_the_longer_side() -> None:
    src = seg(3200, [800, 1600, 2400], [300, 100, 200])
    tgt = seg(3200, [1600], [400])
    a, b, used = pair_segments(src, tgt, 32, 32, 100, 1)
    # src keeps only its longest pause (at 800)
    assert used and a.tolist() == [9, 23] and b.tolist() == [17, 15]
    b2, a2, used = pair_segments(tgt, src, 32, 32, 100, 1)  # sides swapped
    assert used and a2.tolist() == [9, 23] and b2.tolist() == [17, 15]


def test_fallback_ties_drop_the_earlier_pause() -> None:
    src = seg(3000, [1000, 2000], [100, 100])
    merged = src.merge_to(2)
    assert merged.cuts.tolist() == [2000]


def test_no_fallback_when_counts_match() -> None:
    src = seg(2000, [990], [200])
    tgt = seg(4000, [2480], [300])
    a, b, used = pair_segments(src, tgt, 20, 40, 100, 1)
    assert not used and a.tolist() == [10, 10] and b.tolist() == [25, 15]
    a, b, used = pair_segments(Segmentation.whole(2000), Segmentation.whole(4000), 20, 40, 100, 1)
    assert not used and a.tolist() == [20] and b.tolist() == [40]


def test_too_few_frames_for_the_segments_merges_both_sides() -> None:
    src = seg(3000, [1000, 2000], [100, 300])
    tgt = seg(3000, [1000, 2000], [300, 100])
    a, b, used = pair_segments(src, tgt, 2, 30, 1500, 1)
    assert used and len(a) == len(b) == 2 and a.sum() == 2 and b.sum() == 30
