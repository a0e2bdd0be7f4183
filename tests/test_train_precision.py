"""``train.precision``: which autocast a step runs, bf16 steps on a CPU, the checkpoint record."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY_TAG

from vc_toolkit.config import TagConfig, build
from vc_toolkit.paths import Layout
from vc_toolkit.train.loop import Trainer
from vc_toolkit.train.setup import setup
from vc_toolkit.train.speed import PrecisionError, prefetched, resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("setting", "amp", "device", "legacy", "bf16", "want"),
    [
        ("auto", False, CPU, False, True, "fp32"),
        ("auto", False, CUDA, False, True, "bf16"),
        ("auto", False, CUDA, False, False, "fp16"),
        ("auto", False, CUDA, True, True, "fp32"),  # a run from before the key: as it was
        ("auto", True, CUDA, True, True, "fp16"),
        ("auto", True, CUDA, False, True, "fp16"),  # amp: true keeps meaning fp16
        ("auto", True, CPU, False, True, "fp32"),  # amp was CUDA only
        ("bf16", False, CPU, False, False, "bf16"),
        ("fp32", False, CUDA, False, True, "fp32"),
        ("fp16", True, CUDA, False, True, "fp16"),
    ],
)
def test_resolve_precision(setting, amp, device, legacy, bf16, want):
    got = resolve_precision(setting, amp, device, legacy, bf16_supported=bf16)
    assert got.name == want and got.device_type == device.type
    assert got.scaled == (want == "fp16")


def test_fp16_on_a_cpu_and_amp_with_bf16_are_one_line_errors():
    with pytest.raises(PrecisionError, match="needs CUDA") as err:
        resolve_precision("fp16", False, CPU)
    assert "\n" not in str(err.value)
    with pytest.raises(PrecisionError, match="remove train.amp"):
        resolve_precision("bf16", True, CUDA, bf16_supported=True)


def _trainer(root, tmp_path, name, **train) -> Trainer:
    data = copy.deepcopy(TINY_TAG)
    data["train"].update(train)
    cfg = build(TagConfig, data, where="test tag")
    exp = setup("t", Layout(root), "cpu", cfg=cfg, exp_dir=tmp_path / name, write=False)
    return Trainer(exp, save_checkpoints=False)


def test_bf16_steps_on_a_cpu_run_in_bf16_and_track_fp32(tiny_features_root, tmp_path):
    runs = {}
    for precision in ("fp32", "bf16"):
        trainer = _trainer(tiny_features_root, tmp_path, precision, precision=precision)
        dtypes = []
        first = trainer.exp.core.decoder.blocks[0].attn.query
        first.register_forward_hook(lambda mod, args, out, seen=dtypes: seen.append(out.dtype))
        batches = iter(trainer._loader())
        runs[precision] = [trainer._step(next(batches)) for _ in range(3)]
        assert dtypes and set(dtypes) == {trainer.precision.dtype}
        assert trainer._task_state()["precision"] == precision
        assert trainer._task_state()["scaler"] is None
        assert all(p.dtype == torch.float32 for p in trainer.exp.core.parameters())
    for a, b in zip(runs["fp32"], runs["bf16"]):
        assert b is not None and b["total"] == pytest.approx(a["total"], rel=0.05)
    assert runs["bf16"][0]["total"] != runs["fp32"][0]["total"]  # really another precision


def test_bf16_keeps_skipping_non_finite_losses(tiny_features_root, tmp_path, monkeypatch):
    trainer = _trainer(tiny_features_root, tmp_path, "nan", precision="bf16")
    real = trainer.exp.criterion.forward

    def poisoned(outputs, batch):
        total, losses = real(outputs, batch)
        return total * float("nan"), losses

    monkeypatch.setattr(trainer.exp.criterion, "forward", poisoned)
    before = [p.detach().clone() for p in trainer.exp.core.parameters()]
    assert trainer._step(next(iter(trainer._loader()))) is None
    assert trainer._nonfinite == 1
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.exp.core.parameters()))


class _Item:
    def __init__(self, k: int, log: list):
        self.k, self.log = k, log

    def to(self, device):
        self.log.append(("to", self.k))
        return self


def test_prefetch_moves_the_next_batch_before_handing_out_this_one():
    log: list = []
    items = [_Item(k, log) for k in range(3)]
    for item in prefetched(items, torch.device("cuda")):
        log.append(("step", item.k))
    assert log == [("to", 0), ("to", 1), ("step", 0), ("to", 2), ("step", 1), ("step", 2)]
    log.clear()
    assert [i.k for i in prefetched(items, CPU)] == [0, 1, 2] and log == []
