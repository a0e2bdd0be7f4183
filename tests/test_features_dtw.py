"""DTW durations: sums, signs, identity, a known 2x stretch, the reduction factor."""

from __future__ import annotations

import numpy as np
import pytest

from vc_toolkit.features.dtw import align_durations, distance_matrix, dtw, reduce_frames


def walk(n: int, dim: int = 6, seed: int = 0) -> np.ndarray:
    """A smooth random trajectory: consecutive frames are similar, distant ones are not."""
    return np.cumsum(np.random.default_rng(seed).standard_normal((n, dim)), axis=0)


@pytest.mark.parametrize(("ns", "nt"), [(30, 30), (25, 61), (70, 20), (1, 9), (9, 1)])
def test_durations_are_non_negative_and_sum_to_the_target(ns: int, nt: int) -> None:
    d, cost = align_durations(walk(ns, seed=1), walk(nt, seed=2))
    assert d.shape == (ns,)
    assert np.all(d >= 0)
    assert d.sum() == nt
    assert np.isfinite(cost) and cost >= 0


def test_identical_inputs_give_one_frame_each_and_zero_cost() -> None:
    x = walk(40)
    d, cost = align_durations(x, x.copy())
    np.testing.assert_array_equal(d, np.ones(40))
    assert cost == pytest.approx(0.0, abs=1e-6)


def test_exact_2x_stretch_gives_2_everywhere() -> None:
    x = walk(50)
    d, _ = align_durations(x, np.repeat(x, 2, axis=0))
    np.testing.assert_array_equal(d, np.full(50, 2))


def test_interpolated_2x_stretch_gives_about_2() -> None:
    x = walk(60, seed=3)
    fine = np.linspace(0, 59, 120)
    y = np.stack([np.interp(fine, np.arange(60), x[:, k]) for k in range(x.shape[1])], axis=1)
    d, _ = align_durations(x, y)
    assert d.sum() == 120
    assert np.median(d) == 2
    assert np.mean(np.abs(d[5:-5] - 2) <= 1) == 1.0


@pytest.mark.parametrize("r", [2, 3])
def test_reduction_factor(r: int) -> None:
    x = walk(12 * r, seed=4)
    blocks = x.reshape(12, r, -1)
    y = np.concatenate([blocks, blocks], axis=1).reshape(24 * r, -1)  # each r-block twice
    d, _ = align_durations(x, y, r)
    assert d.shape == (12,)
    np.testing.assert_array_equal(d, np.full(12, 2))  # each reduced frame → 2 reduced frames
    d, _ = align_durations(walk(8 * r, seed=5), walk(20 * r, seed=6), r)
    assert d.shape == (8,) and d.sum() == 20 and np.all(d >= 0)
    with pytest.raises(ValueError, match="multiple of the reduction factor"):
        align_durations(walk(7), walk(8), 2)


def test_dtw_cost_by_hand() -> None:
    a = np.array([[0.0], [1.0], [2.0]])
    b = np.array([[0.0], [2.0]])
    path, cost = dtw(distance_matrix(a, b))
    # best path (0,0) (1,0 or 1,1) (2,1): local costs 0 + 1 + 0 over n + m = 5
    assert cost == pytest.approx(1 / 5)
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [2, 1]
    np.testing.assert_allclose(reduce_frames(np.arange(8.0).reshape(4, 2), 2), [[1, 2], [5, 6]])
