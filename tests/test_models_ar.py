"""Autoregressive pitch predictor: teacher forcing versus the inference loop, zoneout."""

from __future__ import annotations

import pytest
import torch
from factories import tiny_config

from vc_toolkit.config.tag import ARPitch, PitchPredictor
from vc_toolkit.models import build_model
from vc_toolkit.models.ar_pitch import ARPitchPredictor
from vc_toolkit.models.frames import lengths_to_mask


def _predictor(r=2, n_prev=1, layers=1, zoneout=0.0, dropout=0.0) -> ARPitchPredictor:
    torch.manual_seed(0)
    ar = ARPitch(lstm_hidden=8, lstm_layers=layers, zoneout=zoneout, dropout=dropout, n_prev=n_prev)
    cfg = PitchPredictor(type="ar", layers=1, channels=6, kernel_size=3, dropout=0.0, ar=ar)
    return ARPitchPredictor(12, cfg, r)


def _inputs(r=2, length=7):
    torch.manual_seed(1)
    x = torch.randn(2, length, 12)
    mask = lengths_to_mask(torch.tensor([length, length - 2]))
    target = torch.randn(2, length, r).masked_fill(~mask[..., None], 0.0)
    return x, mask, target


def test_history_is_previous_frames_most_recent_first():
    pred = _predictor(r=1, n_prev=2)
    pitch = torch.tensor([[[1.0], [2.0], [3.0]]])
    assert pred.history(pitch)[0].tolist() == [[0.0, 0.0], [1.0, 0.0], [2.0, 1.0]]


CASES = [
    dict(r=1, n_prev=1, layers=1, zoneout=0.0),
    dict(r=2, n_prev=2, layers=2, zoneout=0.0),
    dict(r=2, n_prev=1, layers=1, zoneout=0.3),
    dict(r=1, n_prev=3, layers=2, zoneout=0.2),
]


@pytest.mark.parametrize("case", CASES)
def test_inference_loop_with_ground_truth_history_equals_teacher_forcing(case):
    pred = _predictor(**case).eval()
    x, mask, target = _inputs(case["r"])
    forced = pred(x, mask, target)
    looped = pred.generate(x, mask, teacher=target)
    torch.testing.assert_close(looped, forced, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_first_generated_frame_equals_teacher_forced_first_frame(case):
    pred = _predictor(**case).eval()
    x, mask, target = _inputs(case["r"])
    free = pred.generate(x, mask)
    torch.testing.assert_close(free[:, 0], pred(x, mask, target)[:, 0], atol=1e-5, rtol=1e-5)
    # the loop feeds back its own predictions: teacher-forcing them reproduces the output
    torch.testing.assert_close(pred(x, mask, free), free, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(free[:, 1:], pred(x, mask, target)[:, 1:])


def test_fused_training_path_equals_cell_loop_in_train_mode():
    pred = _predictor(r=2, n_prev=2, layers=2, zoneout=0.0).train()
    x, mask, target = _inputs(2)
    torch.testing.assert_close(
        pred(x, mask, target), pred.generate(x, mask, teacher=target), atol=1e-5, rtol=1e-5
    )


def test_one_cell_step_per_reduced_frame(monkeypatch):
    pred = _predictor(r=2, layers=2).eval()
    x, mask, _ = _inputs(2, length=9)
    calls = []
    step = pred._step
    monkeypatch.setattr(pred, "_step", lambda g, s: calls.append(g.shape) or step(g, s))
    pred.generate(x, mask)
    assert len(calls) == 9 and all(shape[0] == 2 for shape in calls)


def test_full_zoneout_in_training_freezes_the_state():
    pred = _predictor(r=1, zoneout=1.0).train()
    x, mask, target = _inputs(1)
    out = pred(x, mask, target)
    # states never leave zero, so every real frame is the output layer's bias
    want = pred.proj.bias.expand_as(out).masked_fill(~mask[..., None], 0.0)
    torch.testing.assert_close(out, want)


def test_zoneout_is_random_in_training_and_deterministic_in_eval():
    pred = _predictor(r=1, zoneout=0.5)
    x, mask, target = _inputs(1)
    pred.train()
    torch.manual_seed(3)
    a = pred(x, mask, target)
    b = pred(x, mask, target)
    assert not torch.allclose(a, b)
    pred.eval()
    torch.testing.assert_close(pred(x, mask, target), pred(x, mask, target))


def test_stop_gradient_keeps_loss_off_the_input():
    x, mask, target = _inputs(2)
    for stop, expect_grad in ((True, False), (False, True)):
        pred = _predictor()
        pred.stop_gradient = stop
        inp = x.clone().requires_grad_(True)
        pred(inp, mask, target).pow(2).sum().backward()
        assert (inp.grad is not None and inp.grad.abs().sum() > 0) == expect_grad


@pytest.mark.parametrize("pitch", ["ar", "arnar"])
def test_model_inference_uses_the_loop_and_masks_padding(pitch):
    cfg = tiny_config(pitch=pitch)
    torch.manual_seed(0)
    model = build_model(cfg, n_mels=4, reduction_factor=2)
    with torch.no_grad():
        model.duration_predictor.proj.bias.fill_(1.5)  # about 3.5 reduced frames each
    mel, lf0, energy = torch.randn(2, 6, 4), torch.randn(2, 6), torch.randn(2, 6)
    out = model.infer(mel, lf0, energy, torch.tensor([6, 4]))
    n = out["tgt_lens"].tolist()
    assert out["pitch"].shape == (2, max(n))
    assert torch.isfinite(out["pitch"]).all()
    assert out["pitch"][1, n[1] :].abs().sum() == 0
    alone = model.infer(mel[1:, :4], lf0[1:, :4], energy[1:, :4], torch.tensor([4]))
    assert alone["tgt_lens"].tolist() == [n[1]]
    torch.testing.assert_close(alone["pitch"][0], out["pitch"][1, : n[1]], atol=1e-5, rtol=1e-5)


FOLD_CASES = [
    dict(r=1, zoneout=0.0),
    dict(r=2, zoneout=0.0),
    dict(r=2, zoneout=0.3),
    dict(r=3, zoneout=1.0),
]


@pytest.mark.parametrize("case", FOLD_CASES)
def test_folded_decoding_equals_the_explicit_feedback_loop(case):
    pred = _predictor(n_prev=1, layers=1, **case).eval()
    assert pred.foldable()
    x, mask, _ = _inputs(case["r"], length=11)
    with torch.no_grad():  # a trained-looking output bias, so the fed-back bias matters
        pred.proj.bias.normal_()
    folded = pred.generate(x, mask)
    looped = pred.generate(x, mask, fold=False)
    torch.testing.assert_close(folded, looped, atol=1e-5, rtol=1e-5)
    assert folded[1, -2:].abs().sum() == 0  # padding
    # a one-frame sequence takes the first-step path alone
    one = pred.generate(x[:, :1], mask[:, :1])
    torch.testing.assert_close(one, pred.generate(x[:, :1], mask[:, :1], fold=False))


def test_fold_is_only_used_where_it_is_exact():
    assert not _predictor(n_prev=2).eval().foldable()
    assert not _predictor(layers=2).eval().foldable()
    assert not _predictor().train().foldable()  # dropout and random zoneout in training
