"""Warmup schedules defined in samples: batch-size invariance, caps, annealing, state."""

from __future__ import annotations

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
