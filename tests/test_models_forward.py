"""Full model: forward/backward per variant, gradient routing, padding invariance, inference."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from factories import random_batch, tiny_config

from vc_toolkit.config.tag import Loss
from vc_toolkit.data.batch import Batch
from vc_toolkit.models import FastSpeech2VC, VCLoss, build_model

N_MELS = 4
STACKS = [
    ("conformer", "rel"),
    ("conformer", "abs"),
    ("transformer", "rel"),
    ("transformer", "abs"),
]
HEADS = [
    ("conv", "none", False),
    ("conv", "gmm", False),
    ("conv", "gmm", True),
    ("ar", "none", False),
    ("ar", "gmm", False),
    ("ar", "gmm", True),
    ("arnar", "none", False),
    ("arnar", "gmm", True),
]
VARIANTS = [(s, p, "conv", "none", False, r) for s, p in STACKS for r in (1, 2)] + [
    ("conformer", "rel", *head, r) for head in HEADS[1:] for r in (1, 2)
]


def _model(cfg, r: int, seed: int = 0) -> FastSpeech2VC:
    torch.manual_seed(seed)
    return build_model(cfg, n_mels=N_MELS, reduction_factor=r)


def _batch(r: int, seed: int = 0) -> Batch:
    return random_batch(N_MELS, r, [8 * r, 5 * r], [10 * r, 4 * r], n_segs=[3, 2], seed=seed)


def _check_shapes(out: dict, batch: Batch, r: int) -> None:
    b, tt = batch.tgt_mel.shape[:2]
    assert out["mel"].shape == out["post_mel"].shape == (b, tt, N_MELS)
    assert out["pitch"].shape == out["energy"].shape == out["tgt_mask"].shape == (b, tt)
    assert out["log_duration"].shape == out["src_mask"].shape == (b, batch.src_mel.shape[1] // r)


@pytest.mark.parametrize(("stack", "pos_enc", "pitch", "prosody", "use_global", "r"), VARIANTS)
def test_forward_backward(stack, pos_enc, pitch, prosody, use_global, r):
    cfg = tiny_config(stack, pos_enc, pitch, prosody, use_global)
    model, batch = _model(cfg, r), _batch(r)
    out = model(batch)
    _check_shapes(out, batch, r)
    total, terms = VCLoss(Loss(), cfg)(out, batch)
    assert torch.isfinite(total)
    assert ("gmm" in terms) == (prosody == "gmm") and ("global_gmm" in terms) == use_global
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient reached {missing}"


@pytest.mark.parametrize("pitch", ["ar", "arnar"])
def test_mixed_encoder_decoder_and_ar_zoneout(pitch):
    cfg = tiny_config("transformer", "abs", pitch, zoneout=0.2)
    cfg.decoder = replace(cfg.decoder, type="conformer", pos_enc="rel")
    model, batch = _model(cfg, 2), _batch(2)
    out = model(batch)
    _check_shapes(out, batch, 2)
    VCLoss(Loss(), cfg)(out, batch)[0].backward()
    assert model.pitch_predictor.lstm.weight_hh_l0.grad.any()


ENCODER_SIDE = ("input_proj", "src_pitch_embed", "src_energy_embed", "encoder")


@pytest.mark.parametrize(
    ("name", "pitch", "term"),
    [
        ("duration_predictor", "conv", "duration"),
        ("pitch_predictor", "conv", "pitch"),
        ("pitch_predictor", "ar", "pitch"),
        ("pitch_predictor", "arnar", "pitch"),
        ("energy_predictor", "conv", "energy"),
    ],
)
@pytest.mark.parametrize("stop", [True, False])
def test_stop_gradient_keeps_a_predictor_loss_off_the_encoder(name, pitch, term, stop):
    cfg = tiny_config(pitch=pitch)
    setattr(cfg, name, replace(getattr(cfg, name), stop_gradient=stop))
    model, batch = _model(cfg, 2), _batch(2)
    _, terms = VCLoss(Loss(), cfg)(model(batch), batch)
    terms[term].backward()
    encoder_grad = any(
        p.grad is not None and p.grad.any()
        for n, p in model.named_parameters()
        if n.startswith(ENCODER_SIDE)
    )
    assert encoder_grad == (not stop)
    assert any(p.grad is not None and p.grad.any() for p in getattr(model, name).parameters())


def _single(batch: Batch, k: int, r: int) -> Batch:
    """Utterance ``k`` of ``batch`` as its own unpadded batch."""
    ts, tt, ns = (int(batch.src_lens[k]), int(batch.tgt_lens[k]), int(batch.n_seg[k]))
    ls = ts // r
    return Batch(
        utt_ids=[batch.utt_ids[k]],
        src_mel=batch.src_mel[k : k + 1, :ts],
        src_lf0=batch.src_lf0[k : k + 1, :ts],
        src_vuv=batch.src_vuv[k : k + 1, :ts],
        src_energy=batch.src_energy[k : k + 1, :ts],
        src_lens=batch.src_lens[k : k + 1],
        tgt_mel=batch.tgt_mel[k : k + 1, :tt],
        tgt_lf0=batch.tgt_lf0[k : k + 1, :tt],
        tgt_vuv=batch.tgt_vuv[k : k + 1, :tt],
        tgt_energy=batch.tgt_energy[k : k + 1, :tt],
        tgt_lens=batch.tgt_lens[k : k + 1],
        duration=batch.duration[k : k + 1, :ls],
        src_seg=batch.src_seg[k : k + 1, :ns],
        tgt_seg=batch.tgt_seg[k : k + 1, :ns],
        n_seg=batch.n_seg[k : k + 1],
    )


def _garbage(batch: Batch, extra: int, r: int) -> Batch:
    """``batch`` with ``extra * r`` more frames (and ``extra`` more columns) of garbage."""
    g = torch.Generator().manual_seed(5)

    def pad(x: torch.Tensor, n: int) -> torch.Tensor:
        if x.dtype == torch.long:
            junk = torch.randint(0, 7, (x.shape[0], n, *x.shape[2:]), generator=g)
        else:
            junk = 50 * torch.randn(x.shape[0], n, *x.shape[2:], generator=g)
        return torch.cat([x, junk], dim=1)

    fields = {}
    for name, value in vars(batch).items():
        if name in ("duration", "src_seg", "tgt_seg"):
            value = pad(value, extra)
        elif isinstance(value, torch.Tensor) and value.dim() >= 2:
            value = pad(value, extra * r)
        fields[name] = value
    return Batch(**fields)


ROBUST = [
    (tiny_config("conformer", "rel", "ar", "gmm", True, zoneout=0.1), 2),
    (tiny_config("transformer", "abs", "conv", "gmm"), 1),
    (tiny_config("conformer", "abs", "conv"), 2),
    (tiny_config("conformer", "rel", "arnar", "gmm", zoneout=0.1), 2),
]


@pytest.mark.parametrize(("cfg", "r"), ROBUST)
def test_outputs_do_not_depend_on_batch_partners(cfg, r):
    model, batch = _model(cfg, r).eval(), _batch(r, seed=3)
    with torch.no_grad():
        together, alone = model(batch), model(_single(batch, 1, r))
    tt, ls = int(batch.tgt_lens[1]), int(batch.src_lens[1]) // r
    for key in ("mel", "post_mel", "pitch", "energy"):
        torch.testing.assert_close(together[key][1, :tt], alone[key][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        together["log_duration"][1, :ls], alone["log_duration"][0], atol=1e-5, rtol=1e-4
    )
    if "gmm_means" in alone:
        ns = int(batch.n_seg[1])
        torch.testing.assert_close(
            together["gmm_means"][1, :ns], alone["gmm_means"][0], atol=1e-5, rtol=1e-4
        )


@pytest.mark.parametrize(("cfg", "r"), ROBUST)
def test_garbage_padding_changes_no_loss(cfg, r):
    model, batch = _model(cfg, r).eval(), _batch(r, seed=4)
    loss = VCLoss(Loss(), cfg)
    with torch.no_grad():
        _, clean = loss(model(batch), batch)
        padded = _garbage(batch, 3, r)
        _, dirty = loss(model(padded), padded)
    assert clean.keys() == dirty.keys()
    for name in clean:
        torch.testing.assert_close(dirty[name], clean[name], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("cfg", "r"), ROBUST)
def test_inference_does_not_depend_on_batch_partners(cfg, r):
    model, batch = _model(cfg, r), _batch(r, seed=6)
    with torch.no_grad():
        model.duration_predictor.proj.bias.fill_(1.2)
    args = (batch.src_mel, batch.src_lf0, batch.src_energy, batch.src_lens)
    together = model.infer(*args, batch.src_seg, batch.n_seg)
    one = _single(batch, 1, r)
    alone = model.infer(one.src_mel, one.src_lf0, one.src_energy, one.src_lens, one.src_seg)
    n = int(alone["tgt_lens"][0])
    assert int(together["tgt_lens"][1]) == n
    torch.testing.assert_close(together["mel"][1, :n], alone["mel"][0], atol=1e-5, rtol=1e-4)
    assert together["mel"][1, n:].abs().sum() == 0


def _infer(model, batch, **kw):
    return model.infer(batch.src_mel, batch.src_lf0, batch.src_energy, batch.src_lens, **kw)


@pytest.mark.parametrize("r", [1, 2])
def test_inference_lengths_follow_rounded_durations(r):
    model, batch = _model(tiny_config(), r), _batch(r)
    with torch.no_grad():
        model.duration_predictor.proj.bias.fill_(math.log(4.3))  # about 3.3 frames each
    base, double = _infer(model, batch), _infer(model, batch, duration_scale=2.0)
    for out, scale in ((base, 1.0), (double, 2.0)):
        d, mask = (
            out["duration"],
            torch.arange(out["duration"].shape[1]) < (batch.src_lens // r)[:, None],
        )
        want = torch.round(scale * (out["log_duration"].exp() - 1)).clamp(min=0).long() * mask
        assert torch.equal(d, want)
        assert out["tgt_lens"].tolist() == (d.sum(1) * r).tolist()
        assert out["mel"].shape == (2, int(out["tgt_lens"].max()), N_MELS)
        assert out["pitch"].shape == out["energy"].shape == out["mel"].shape[:2]
    n_src = (batch.src_lens // r).tolist()
    for k in range(2):
        once, twice = int(base["duration"][k].sum()), int(double["duration"][k].sum())
        assert abs(twice - 2 * once) <= n_src[k] and twice > 1.5 * once


def test_zero_duration_scale_still_gives_one_frame():
    model, batch = _model(tiny_config(), 2), _batch(2)
    out = _infer(model, batch, duration_scale=0.0)
    assert out["duration"].sum(1).tolist() == [1, 1] and out["tgt_lens"].tolist() == [2, 2]


def test_pitch_and_energy_scales_act_in_the_linear_domain():
    model, batch = _model(tiny_config(), 2), _batch(2)
    stats = {
        "tgt_lf0_mean": 5.0,
        "tgt_lf0_std": 0.25,
        "tgt_energy_mean": 1.0,
        "tgt_energy_std": 2.0,
    }
    base = _infer(model, batch, stats=stats)
    high = _infer(model, batch, pitch_scale=2.0, stats=stats)
    mask = torch.arange(base["pitch"].shape[1]) < base["tgt_lens"][:, None]
    f0_ratio = torch.exp((high["pitch"] - base["pitch"]) * 0.25)[mask]
    torch.testing.assert_close(f0_ratio, torch.full_like(f0_ratio, 2.0))
    assert torch.equal(high["duration"], base["duration"])
    obj = SimpleNamespace(**stats)
    loud = _infer(model, batch, energy_scale=0.5, stats=obj)
    e_ratio = torch.exp((loud["energy"] - base["energy"]) * 2.0)[mask]
    torch.testing.assert_close(e_ratio, torch.full_like(e_ratio, 0.5))
    with pytest.raises(ValueError, match="pitch_scale=2.0 needs stats"):
        _infer(model, batch, pitch_scale=2.0)
    with pytest.raises(ValueError, match="energy_scale must be > 0"):
        _infer(model, batch, energy_scale=0.0, stats=stats)


def test_gmm_inference_mean_is_deterministic_and_sampling_varies():
    model, batch = _model(tiny_config(prosody="gmm", use_global=True), 2), _batch(2)
    kw = dict(src_seg=batch.src_seg, n_seg=batch.n_seg)
    a, b = _infer(model, batch, **kw), _infer(model, batch, **kw)
    assert torch.equal(a["prosody"], b["prosody"]) and a["prosody"].shape == (2, 3, 3)
    torch.manual_seed(1)
    s1 = _infer(model, batch, prosody="sample", temperature=1.0, **kw)
    s2 = _infer(model, batch, prosody="sample", temperature=1.0, **kw)
    assert not torch.equal(s1["prosody"], s2["prosody"])


def test_infer_restores_the_training_mode_and_num_params():
    model = _model(tiny_config(), 1)
    _infer(model, _batch(1))
    assert model.training
    total = sum(p.numel() for p in model.parameters())
    assert model.num_params() == total
    model.encoder.requires_grad_(False)
    frozen = sum(p.numel() for p in model.encoder.parameters())
    assert model.num_params(trainable_only=True) == total - frozen > 0


def test_lengths_not_multiple_of_r_are_rejected():
    model, batch = _model(tiny_config(), 2), _batch(2)
    batch.src_lens = batch.src_lens + 1
    with pytest.raises(ValueError, match="src_lens must be multiples of the reduction factor 2"):
        model(batch)
