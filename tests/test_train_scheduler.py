"""Warmup schedules defined in samples: batch-size invariance, caps, annealing, state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vc_toolkit.config.core import build
from vc_toolkit.config.tag import Scheduler
from vc_toolkit.train.scheduler import LRSchedule, lr_at, lr_curve


def _cfg(**kw) -> Scheduler:
    return build(Scheduler, kw)


@pytest.mark.parametrize("kind", ["warmup", "noam"])
def test_same_lr_per_sample_for_batch_8_and_32(kind):
    cfg = _cfg(type=kind, peak_lr=1e-3, warm_up_step=4000, ref_batch_size=16, max_lr_scale=1.0)
    small, big = LRSchedule(cfg, 8, 256), LRSchedule(cfg, 32, 256)
    for samples in (32, 3200, 64000, 64032, 500000):
        assert small.lr_at_step(samples // 8) == pytest.approx(
            big.lr_at_step(samples // 32), rel=1e-12
        )
    # in steps the warmup is 4x longer with batch 8
    peak8 = max(range(1, 20000), key=small.lr_at_step)
    peak32 = max(range(1, 20000), key=big.lr_at_step)
    assert (peak8, peak32) == (8000, 2000)


def test_warmup_peak_never_exceeds_peak_lr():
    for warm in (0, 1, 3, 100, 4000):
        cfg = _cfg(peak_lr=2e-3, warm_up_step=warm, ref_batch_size=16)
        curve = lr_curve(cfg, batch_size=64, hidden=256, steps=3000)
        assert max(curve) <= 2e-3 * (1 + 1e-12)
        if warm * 16 >= 64:  # a warmup of at least one batch reaches the peak exactly
            assert max(curve) == pytest.approx(2e-3)


def test_noam_is_capped_when_warmup_is_short():
    cfg = _cfg(type="noam", base_lr=1.0, warm_up_step=2, ref_batch_size=16, max_lr_scale=1e-3)
    curve = lr_curve(cfg, batch_size=16, hidden=256, steps=500)
    assert max(curve) == pytest.approx(1e-3)
    uncapped = 256**-0.5 * 2**-0.5  # Noam peak at w=2: ~0.044
    assert uncapped > 10 * max(curve)


def test_noam_matches_the_formula_below_the_cap():
    cfg = _cfg(type="noam", base_lr=1.0, warm_up_step=4000, ref_batch_size=16, max_lr_scale=1.0)
    for n in (1, 100, 4000, 10000):
        expect = 256**-0.5 * min(n**-0.5, n * 4000**-1.5)
        assert lr_at(cfg, n * 16, 256) == pytest.approx(expect)


def test_anneal_and_floor():
    cfg = _cfg(
        peak_lr=1e-3,
        warm_up_step=10,
        ref_batch_size=10,
        decay="none",
        anneal_steps=[100, 200],
        anneal_rate=0.5,
        min_lr=3e-4,
    )
    assert lr_at(cfg, 50 * 10, 1) == pytest.approx(1e-3)
    assert lr_at(cfg, 150 * 10, 1) == pytest.approx(5e-4)
    assert lr_at(cfg, 250 * 10, 1) == pytest.approx(3e-4)  # 2.5e-4 floored


def test_warmup_samples_alternative():
    a = _cfg(peak_lr=1e-3, warm_up_step=None, warmup_samples=6400)
    b = _cfg(peak_lr=1e-3, warm_up_step=400, ref_batch_size=16)
    assert lr_curve(a, 16, 256, 1000) == lr_curve(b, 16, 256, 1000)


def test_steps_update_optimizer_and_state_round_trips():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.0)
    cfg = _cfg(peak_lr=1e-2, warm_up_step=10, ref_batch_size=4)
    sched = LRSchedule(cfg, 4, 8, opt)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)  # first step: 4 of 40 samples
    for _ in range(5):
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(6e-3)
    other = LRSchedule(cfg, 4, 8, torch.optim.SGD([p], lr=0.0))
    other.load_state_dict(sched.state_dict())
    assert other.lr == sched.lr and other.steps == 5


def _run(sched: LRSchedule, sizes) -> list[tuple[int, float]]:
    """(samples seen after the step, rate the step used) for each step of ``sizes``."""
    out = []
    for n in sizes:
        used = sched.optimizer.param_groups[0]["lr"]
        sched.step(n)
        out.append((sched.samples, used))
    return out


def test_variable_batches_count_what_was_seen_and_follow_the_sample_curve():
    cfg = _cfg(peak_lr=1e-3, warm_up_step=50, ref_batch_size=16)
    p = torch.nn.Parameter(torch.zeros(1))
    sizes = np.random.default_rng(0).integers(3, 60, size=300).tolist()
    nominal = round(float(np.mean(sizes)))
    sched = LRSchedule(cfg, nominal, 256, torch.optim.SGD([p], lr=0.0))
    seen = _run(sched, sizes)
    assert sched.samples == sum(sizes) and sched.steps == len(sizes)
    assert [s for s, _ in seen] == np.cumsum(sizes).tolist()
    before = [0] + [s for s, _ in seen[:-1]]
    for prior, (_, used) in zip(before, seen, strict=True):
        # each step's rate is the sample curve one nominal batch past what was seen before
        assert used == pytest.approx(lr_at(cfg, prior + nominal, 256), rel=1e-12)


def test_alternating_batches_match_a_fixed_batch_of_their_mean():
    cfg = _cfg(peak_lr=1e-3, warm_up_step=50, ref_batch_size=16)
    varied, fixed = LRSchedule(cfg, 40, 256), LRSchedule(cfg, 40, 256)
    for _ in range(200):
        for n in (24, 56):
            varied.step(n)
            fixed.step()
        assert varied.samples == fixed.samples
        assert varied.lr == fixed.lr
    varied.step(56)
    fixed.step()
    assert varied.samples == fixed.samples + 16  # what was seen, not the nominal batch


def test_ranks_fed_global_step_sizes_keep_identical_rates():
    from vc_toolkit.train.frame_sampler import FrameBudgetSampler

    lengths = np.random.default_rng(1).integers(50, 500, size=97)
    cfg = _cfg(peak_lr=1e-3, warm_up_step=20, ref_batch_size=16)
    ranks = [FrameBudgetSampler(lengths, 3000, lengths, rank=r, world_size=3) for r in range(3)]
    rates = []
    for sampler in ranks:
        p = torch.nn.Parameter(torch.zeros(1))
        sched = LRSchedule(cfg, 16, 256, torch.optim.SGD([p], lr=0.0))
        for epoch in range(2):
            for i, _ in enumerate(sampler.batches(epoch)):
                sched.step(sampler.step_size(epoch, i))
        rates.append((sched.samples, sched.lr))
        local = sum(len(b) for e in range(2) for b in sampler.batches(e))
        assert sched.samples > local  # the global count, not this rank's
    assert rates[0] == rates[1] == rates[2]
    padded = sum(len(b) for e in range(2) for r in ranks for b in r.batches(e))
    assert rates[0][0] == padded  # every utterance every rank trained on, repeats included


def test_step_without_a_size_counts_the_nominal_batch_and_fractions_resume_exactly():
    cfg = _cfg(peak_lr=1e-3, warm_up_step=50, ref_batch_size=16)
    sched = LRSchedule(cfg, 12.5, 256)
    sched.step()
    sched.step(7)
    assert sched.samples == 19.5
    other = LRSchedule(cfg, 12.5, 256)
    other.load_state_dict(sched.state_dict())
    assert other.samples == 19.5 and other.lr == sched.lr
