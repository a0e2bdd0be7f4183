"""Frame-budget batches: coverage, determinism, budget, sharding, config, set-up."""

from __future__ import annotations

import copy
import logging
import sys

import numpy as np
import pytest
from conftest import REPO, TINY_TAG, copy_root, write_conf

if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))
import batching

from vc_toolkit.config.core import ConfigError, build, pinned_dict
from vc_toolkit.config.tag import Train
from vc_toolkit.train.frame_sampler import FrameBudgetSampler, build_sampler, check_budget
from vc_toolkit.train.sampler import GroupedBatchSampler

_RNG = np.random.default_rng(0)
TGT = _RNG.integers(40, 600, size=211)
SRC = (TGT * 0.8 + _RNG.normal(0, 30, size=211)).clip(20).astype(int)
BUDGET = 4000


def _flat(batches):
    return sorted(i for b in batches for i in b)


def _sampler(**kw) -> FrameBudgetSampler:
    return FrameBudgetSampler(TGT, kw.pop("batch_frames", BUDGET), SRC, **{"seed": 3, **kw})


@pytest.mark.parametrize("budget", [700, 2500, BUDGET, 20000])
def test_every_utterance_exactly_once_per_epoch(budget):
    s = _sampler(batch_frames=budget)
    for epoch in range(4):
        assert _flat(s.batches(epoch)) == list(range(len(TGT)))


@pytest.mark.parametrize("budget", [700, 2500, BUDGET])
def test_the_budget_holds_and_batches_are_full(budget):
    s = _sampler(batch_frames=budget)
    for epoch in range(3):
        batches = s.batches(epoch)
        for b in batches:
            assert len(b) == 1 or s.cost(b) <= budget
        # greedy packing: a typical batch holds most of the budget
        assert np.median([s.cost(b) / budget for b in batches]) > 0.75


def test_cost_counts_both_padded_streams():
    s = FrameBudgetSampler([10, 30, 20], 1000, extra_lengths=[7, 5, 9])
    assert s.cost([0, 2]) == 2 * 20 + 2 * 9
    assert FrameBudgetSampler([10, 30, 20], 1000).cost([0, 1, 2]) == 3 * 30


def test_short_utterances_make_big_batches():
    s = _sampler()
    batches = s.batches(0)
    longest = max(batches, key=lambda b: TGT[b].max())
    shortest = min(batches, key=lambda b: TGT[b].min())
    assert len(shortest) >= 3 * len(longest)
    sizes = {len(b) for b in batches}
    assert len(sizes) > 5  # the number of utterances per step varies


def test_an_utterance_over_the_budget_forms_its_own_batch_and_is_logged(caplog):
    tgt, src = [50, 60, 900, 55, 40, 45], [50, 60, 800, 50, 40, 40]
    s = FrameBudgetSampler(tgt, 400, src, seed=0)
    batches = s.batches(0)
    assert [2] in batches
    assert _flat(batches) == list(range(6))
    assert s.oversized().tolist() == [2]
    with caplog.at_level(logging.WARNING):
        check_budget(s)
    assert "1 utterance(s) are longer (up to 1700 frames" in caplog.text


def test_a_budget_below_the_median_utterance_is_refused():
    with pytest.raises(ConfigError, match=r"^train\.batch_frames 300 is below the median"):
        check_budget(FrameBudgetSampler(TGT, 300, SRC))
    check_budget(FrameBudgetSampler(TGT, int(np.median(TGT + SRC)) + 1, SRC))  # no error


def test_deterministic_from_seed_and_epoch():
    a, b = _sampler(), _sampler()
    assert a.batches(5) == b.batches(5)
    assert a.batches(5) != a.batches(6)
    assert a.batches(5) != _sampler(seed=4).batches(5)


def test_batch_boundaries_move_between_epochs():
    s = _sampler()
    plans = [{frozenset(b) for b in s.batches(e)} for e in range(3)]
    assert plans[0] != plans[1] and plans[1] != plans[2]  # not only the order changes


def test_training_batches_come_in_a_shuffled_order():
    s = _sampler()
    longest = [max(s.key[b]) for b in s.batches(0)]
    assert longest != sorted(longest, reverse=True) and longest != sorted(longest)


def test_evaluation_plan_is_fixed_and_sorted():
    s = FrameBudgetSampler(TGT, BUDGET, SRC, shuffle=False)
    assert s.batches(0) == s.batches(9)
    key = s.key
    firsts = [key[b[0]] for b in s.batches(0)]
    assert firsts == sorted(firsts, reverse=True)
    assert all(len(b) == 1 or s.cost(b) <= BUDGET for b in s.batches(0))


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ranks_run_equal_steps_and_together_cover_the_epoch(world):
    single = _sampler().batches(1)
    shards = [_sampler(rank=r, world_size=world).batches(1) for r in range(world)]
    assert len({len(s) for s in shards}) == 1
    assert shards == [_sampler(rank=r, world_size=world).batches(1) for r in range(world)]
    union = [tuple(b) for s in shards for b in s]
    assert set(union) == {tuple(b) for b in single}
    assert _flat(single) == list(range(len(TGT)))
    assert len(union) - len(single) == (-len(single)) % world  # only the repeated head


@pytest.mark.parametrize("world", [1, 3])
def test_step_sizes_sum_the_ranks_and_agree_on_every_rank(world):
    shards = [_sampler(rank=r, world_size=world) for r in range(world)]
    sizes = shards[0].step_sizes(2)
    assert all(s.step_sizes(2) == sizes for s in shards)
    per_rank = [[len(b) for b in s.batches(2)] for s in shards]
    assert sizes == [sum(col) for col in zip(*per_rank, strict=True)]
    assert shards[-1].step_size(2, 4) == sizes[4]


def test_resume_skips_consumed_batches():
    s = _sampler()
    full = s.batches(2)
    s.set_epoch(2, start_batch=3)
    assert list(iter(s)) == full[3:] and len(s) == len(full) - 3


def test_read_speech_padding_is_low_and_below_grouped_batches():
    tgt, src = batching.read_speech_lengths(sigma=0.3, ratio_sd=0.05)
    frames = FrameBudgetSampler(tgt, 8000, src, seed=1)
    grouped = GroupedBatchSampler(tgt, 16, 4, seed=1, extra_lengths=src)
    pad_frames = np.mean([frames.padding_fraction(frames.batches(e)) for e in range(5)])
    pad_grouped = np.mean([grouped.padding_fraction(grouped.batches(e)) for e in range(5)])
    assert pad_frames <= 0.05
    assert pad_frames < 0.5 * pad_grouped


def test_bench_rows_cover_both_modes_on_both_corpora():
    rows = batching.bench_read_speech((16,), (4, 32), (8000,), (0.05,), epochs=2)
    settings = ("batch_size 16, group_size 4", "batch_size 16, group_size 32", "batch_frames 8000")
    assert [(r["corpus"], r["setting"]) for r in rows] == [
        (c, s) for c in ("calibrated", "wide") for s in settings
    ]
    pad = {(r["corpus"], r["setting"]): r["padding"] for r in rows}
    assert 0.12 < pad["calibrated", "batch_size 16, group_size 4"] < 0.19  # the 15.4%
    for corpus in ("calibrated", "wide"):
        assert pad[corpus, "batch_frames 8000"] < pad[corpus, "batch_size 16, group_size 32"]
    frames = [r for r in rows if r["setting"] == "batch_frames 8000"][0]
    assert frames["utts_per_step"] * frames["steps"] == pytest.approx(1000, rel=0.01)


# ---- config and set-up ---------------------------------------------------------------------


def test_config_keeps_old_fingerprints_and_builds_the_chosen_sampler():
    assert "batch_frames" not in pinned_dict(Train())
    train = build(Train, {"batch_frames": 5000, "seed": 2})
    assert isinstance(build_sampler(train, TGT, SRC), FrameBudgetSampler)
    assert isinstance(build_sampler(train, TGT, SRC, shuffle=False), FrameBudgetSampler)
    plain = build(Train, {"batch_size": 8, "group_size": 2})
    s = build_sampler(plain, TGT, SRC, rank=1, world_size=2)
    assert isinstance(s, GroupedBatchSampler) and (s.batch_size, s.group_size) == (8, 2)
    assert s.world_size == 2 and s.extra is not None


@pytest.mark.parametrize(
    ("key", "value"), [("batch_size", 32), ("group_size", 8), ("max_frames", 3000)]
)
def test_batch_frames_with_a_batch_size_key_is_one_line_naming_it(key, value):
    with pytest.raises(ConfigError) as err:
        build(Train, {"batch_frames": 5000, key: value}, where="t.yaml")
    msg = str(err.value)
    assert f"train.{key}" in msg and "train.batch_frames" in msg and "\n" not in msg


def test_batch_frames_below_one_is_refused():
    with pytest.raises(ConfigError, match="'batch_frames' must be >= 1"):
        build(Train, {"batch_frames": 0})


def _frame_tag(tiny_features_root, tmp_path, budget: int):
    root = copy_root(tiny_features_root, tmp_path)
    tag = copy.deepcopy(TINY_TAG)
    for key in ("batch_size", "group_size"):
        del tag["train"][key]
    tag["train"]["batch_frames"] = budget
    write_conf(root, "tag", "f", tag)
    return root


def test_setup_builds_frame_batches_logs_them_and_sizes_the_schedule(
    tiny_features_root, tmp_path, caplog
):
    from vc_toolkit.paths import Layout
    from vc_toolkit.train.setup import setup

    root = _frame_tag(tiny_features_root, tmp_path, 2000)
    with caplog.at_level(logging.INFO):
        exp = setup("f", Layout(root), device="cpu", write=False)
    assert isinstance(exp.sampler, FrameBudgetSampler)
    assert "batches: batch_frames 2000 (padded source + target):" in caplog.text
    assert "utterances/step mean" in caplog.text and "padding" in caplog.text
    sizes = exp.sampler.step_sizes(0)
    assert exp.scheduler.batch_size == round(sum(sizes) / len(sizes))
    assert isinstance(exp.dev_loader().batch_sampler, FrameBudgetSampler)


def test_training_feeds_the_schedule_the_utterances_of_each_step(tiny_features_root, tmp_path):
    from vc_toolkit.paths import Layout
    from vc_toolkit.train.loop import Trainer
    from vc_toolkit.train.setup import setup

    exp = setup("f", Layout(_frame_tag(tiny_features_root, tmp_path, 1200)), "cpu", write=False)
    sizes = exp.sampler.step_sizes(0)
    assert len(set(sizes)) > 1 and exp.scheduler.batch_size * len(sizes) != sum(sizes)
    Trainer(exp, save_checkpoints=False).run(max_epochs=1)
    assert exp.scheduler.steps == len(sizes)
    assert exp.scheduler.samples == sum(sizes) == len(exp.train_set)
