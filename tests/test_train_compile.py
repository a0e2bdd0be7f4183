"""``train.compile``: the compiled training step against eager, and its on-disk cache."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY_TAG

from vc_toolkit.config import TagConfig, build
from vc_toolkit.config.core import pinned_dict
from vc_toolkit.paths import Layout
from vc_toolkit.train import speed
from vc_toolkit.train.loop import Trainer
from vc_toolkit.train.setup import setup

STEPS = 3  # one epoch of the tiny spk


def _config(**train) -> TagConfig:
    """The tiny tag without dropout (compiled dropout draws other random numbers)."""
    data = copy.deepcopy(TINY_TAG)
    model = data["model"]
    for stack in ("encoder", "decoder"):
        model[stack].update(dropout=0.0, attn_dropout=0.0)
    for name in ("duration_predictor", "pitch_predictor", "energy_predictor", "postnet"):
        model[name]["dropout"] = 0.0
    data["train"].update(train)
    return build(TagConfig, data, where="test tag")


def _losses(root, tmp_path, name: str, **train) -> list[dict[str, float]]:
    """The logged values of the first ``STEPS`` steps (same batches whatever ``train`` says)."""
    exp = setup(
        "t", Layout(root), "cpu", cfg=_config(**train), exp_dir=tmp_path / name, write=False
    )
    trainer = Trainer(exp, save_checkpoints=False)
    batches = iter(trainer._loader())
    return [trainer._step(next(batches)) for _ in range(STEPS)]


@pytest.fixture
def fresh_cache(monkeypatch):
    """No user cache folder: runs keep their kernels in their own folder."""
    monkeypatch.setattr(speed, "_USER_CACHE", None)
    monkeypatch.delenv(speed.CACHE_ENV, raising=False)
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compiled_steps_match_eager(tiny_features_root, tmp_path, fresh_cache):
    from torch._dynamo.utils import counters

    eager = _losses(tiny_features_root, tmp_path, "eager")
    frames = counters["frames"]["ok"]
    compiled = _losses(tiny_features_root, tmp_path, "compiled", compile=True)
    assert counters["frames"]["ok"] > frames  # dynamo really compiled frames of the step
    assert all(row is not None for row in eager + compiled)
    for step, (a, b) in enumerate(zip(eager, compiled)):
        assert a.keys() == b.keys()
        for key in ("total", "mel", "post_mel", "duration", "pitch", "energy", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=2e-3, abs=1e-5), (step, key)
    assert eager[-1]["total"] != pytest.approx(eager[0]["total"], rel=1e-3)  # weights moved


def test_compiled_kernels_are_cached_in_the_run_folder(tiny_features_root, tmp_path, fresh_cache):
    _losses(tiny_features_root, tmp_path, "run", compile=True)
    cache = tmp_path / "run" / "compile_cache"
    assert cache.is_dir() and any(p.is_file() for p in cache.rglob("*"))


def test_a_user_cache_folder_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "_USER_CACHE", str(tmp_path / "shared"))
    assert speed.cache_dir(tmp_path / "exp/t") == tmp_path / "shared"
    monkeypatch.setattr(speed, "_USER_CACHE", None)
    assert speed.cache_dir(tmp_path / "exp/t") == tmp_path / "exp/t/compile_cache"


def test_new_keys_at_their_defaults_keep_old_fingerprints():
    cfg = _config()
    assert cfg.train.compile is False and cfg.train.precision == "auto"
    pinned = pinned_dict(cfg)["train"]
    assert "compile" not in pinned and "precision" not in pinned
    changed = pinned_dict(_config(compile=True, precision="bf16"))["train"]
    assert changed["compile"] is True and changed["precision"] == "bf16"


@pytest.mark.parametrize("pos_enc", ["rel", "abs"])
def test_bucketed_stack_equals_the_unpadded_stack(pos_enc):
    from vc_toolkit.config.tag import Stack
    from vc_toolkit.models.blocks import BlockStack
    from vc_toolkit.models.frames import lengths_to_mask

    torch.manual_seed(0)
    stack = BlockStack(Stack(layers=2, heads=2, ff_expansion=2, kernel_size=3, pos_enc=pos_enc), 8)
    stack.eval()
    x, mask = torch.randn(2, 11, 8), lengths_to_mask(torch.tensor([11, 6]))
    seen = []

    def spy(x, mask):
        seen.append(tuple(x.shape))
        return stack(x, mask)

    out = speed._bucketed(spy, 16)(x, mask)
    assert seen == [(2, 16, 8)] and out.shape == (2, 11, 8)
    torch.testing.assert_close(out, stack(x, mask), atol=1e-5, rtol=1e-4)
