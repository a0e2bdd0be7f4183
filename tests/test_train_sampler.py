"""Length-grouped batch sampler: coverage, determinism, padding, caps, sharding, resume."""

from __future__ import annotations

import numpy as np
import pytest

from vc_toolkit.train.sampler import GroupedBatchSampler

LENGTHS = np.random.default_rng(0).integers(50, 600, size=203).tolist()


def _flat(batches):
    return sorted(i for b in batches for i in b)


@pytest.mark.parametrize(("batch_size", "group_size"), [(1, 1), (8, 1), (8, 4), (16, 8), (5, 3)])
def test_every_utterance_once_per_epoch(batch_size, group_size):
    s = GroupedBatchSampler(LENGTHS, batch_size, group_size, seed=1)
    for epoch in range(3):
        batches = s.batches(epoch)
        assert _flat(batches) == list(range(len(LENGTHS)))
        assert max(len(b) for b in batches) <= batch_size


def test_deterministic_from_seed_and_epoch():
    a = GroupedBatchSampler(LENGTHS, 8, 4, seed=3)
    b = GroupedBatchSampler(LENGTHS, 8, 4, seed=3)
    assert a.batches(5) == b.batches(5)
    assert a.batches(5) != a.batches(6)
    assert a.batches(5) != GroupedBatchSampler(LENGTHS, 8, 4, seed=4).batches(5)


def test_grouping_reduces_padding():
    def pad(g):
        s = GroupedBatchSampler(LENGTHS, 8, g, seed=0)
        return np.mean([s.padding_fraction(s.batches(e)) for e in range(5)])

    p1, p4, p16 = pad(1), pad(4), pad(16)
    assert p1 > p4 > p16
    assert p16 < 0.5 * p1


def test_batches_within_a_group_are_sorted_by_length():
    s = GroupedBatchSampler(LENGTHS, 4, 8, seed=0)
    for b in s.batches(0):
        lens = [LENGTHS[i] for i in b]
        assert lens == sorted(lens, reverse=True)


def test_dataset_smaller_than_one_group():
    s = GroupedBatchSampler([10, 30, 20], batch_size=8, group_size=4, seed=0)
    assert s.batches(0) == [[1, 2, 0]]
    assert len(s) == 1


def test_max_frames_splits_large_batches():
    s = GroupedBatchSampler(LENGTHS, 16, 2, seed=0, max_frames=1500)
    batches = s.batches(0)
    assert _flat(batches) == list(range(len(LENGTHS)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(LENGTHS[i] for i in b) <= 1500
    assert len(batches) > len(GroupedBatchSampler(LENGTHS, 16, 2, seed=0).batches(0))


@pytest.mark.parametrize("world", [2, 3])
def test_sharding_covers_the_single_process_batches(world):
    single = GroupedBatchSampler(LENGTHS, 8, 4, seed=2).batches(0)
    shards = [
        GroupedBatchSampler(LENGTHS, 8, 4, seed=2, rank=r, world_size=world).batches(0)
        for r in range(world)
    ]
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of steps
    union = [tuple(b) for s in shards for b in s]
    assert set(union) == {tuple(b) for b in single}
    assert len(union) - len(single) < world  # only the tail is repeated


def test_resume_skips_consumed_batches():
    s = GroupedBatchSampler(LENGTHS, 8, 4, seed=0)
    full = s.batches(2)
    s.set_epoch(2, start_batch=5)
    assert list(iter(s)) == full[5:]
    assert len(s) == len(full) - 5


def test_unshuffled_order_for_evaluation():
    s = GroupedBatchSampler([3, 9, 1, 7], batch_size=2, shuffle=False)
    assert s.batches(0) == s.batches(7) == [[1, 3], [0, 2]]


def test_two_streams_sort_by_the_larger_relative_length_and_pad_less():
    rng = np.random.default_rng(5)
    tgt = rng.integers(150, 400, size=300)
    src = (tgt * 0.7 + rng.normal(0, 20, size=300)).astype(int)  # correlated, not equal
    both = GroupedBatchSampler(tgt, 16, 8, seed=0, extra_lengths=src)
    tgt_only = GroupedBatchSampler(tgt, 16, 8, seed=0)
    key = np.maximum(tgt / tgt.mean(), src / src.mean())
    for b in both.batches(0):
        assert list(key[b]) == sorted(key[b], reverse=True)
    pad_both = np.mean([both.padding_fraction(both.batches(e)) for e in range(10)])
    pad_tgt_sorted = np.mean([both.padding_fraction(tgt_only.batches(e)) for e in range(10)])
    assert pad_both < pad_tgt_sorted
    # same groups, only the order inside a group changed: the epoch's utterances are equal
    assert _flat(both.batches(3)) == _flat(tgt_only.batches(3)) == list(range(300))


def test_extra_lengths_must_match():
    with pytest.raises(ValueError, match="one entry per utterance"):
        GroupedBatchSampler([1, 2, 3], 2, extra_lengths=[1, 2])


def test_plan_stats_count_steps_per_rank_and_utterances_per_step():
    s = GroupedBatchSampler([10, 30, 20, 40, 50], batch_size=2, group_size=3, seed=0, world_size=2)
    plan = s.all_batches(0)
    assert sorted(len(b) for b in plan) == [1, 2, 2]
    assert s.plan_stats(0) == {
        "padding": pytest.approx(s.padding_fraction(plan)),
        "steps": 2,  # 3 batches over 2 ranks: the first batch repeated
        "utts_mean": pytest.approx(5 / 3),
        "utts_min": 1,
        "utts_max": 2,
    }
    assert s.step_sizes(0) == [len(plan[0]) + len(plan[1]), len(plan[2]) + len(plan[0])]
