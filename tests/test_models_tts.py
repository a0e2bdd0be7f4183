"""The TTS family: every predictor under text input, aligner durations, fixed durations, infer."""

from __future__ import annotations

import pytest
import torch
from factories import random_batch, tiny_config
from tts_fixtures import VOCAB, random_text_batch, text_items, tiny_tts_config

import vc_toolkit.models.fastspeech2tts as tts_module
from vc_toolkit.config.tag import Conditioning, Loss
from vc_toolkit.data.text_batch import collate_text
from vc_toolkit.models import VCLoss, build_model, loss_names
from vc_toolkit.models.fastspeech2tts import FastSpeech2TTS
from vc_toolkit.models.token_values import token_average

N_MELS = 4
EMBEDDING = Conditioning(type="embedding", dim=4, sites=["encoder", "adaptor", "decoder"])
IDS = {"src_spk": [1, 0, 1], "tgt_spk": [1, 0, 1], "src_emo": [0, 0, 0], "tgt_emo": [0, 0, 0]}


def _model(cfg, r=2, seed=0) -> FastSpeech2TTS:
    torch.manual_seed(seed)
    return build_model(cfg, N_MELS, r, vocab_size=VOCAB)


def _batch(r=2, seed=0, **kw):
    return random_text_batch(N_MELS, r, [5, 7, 3], [8 * r, 10 * r, 4 * r], [2, 3, 1], seed, **kw)


@pytest.mark.parametrize("level", ["frame", "token"])
@pytest.mark.parametrize("pitch", ["conv", "ar", "arnar"])
@pytest.mark.parametrize("prosody", ["none", "gmm"])
@pytest.mark.parametrize("cond", ["none", "embedding"])
def test_forward_backward_every_predictor(level, pitch, prosody, cond):
    conditioning = EMBEDDING if cond == "embedding" else None
    cfg = tiny_tts_config(level=level, pitch=pitch, prosody=prosody, conditioning=conditioning)
    model = _model(cfg)
    batch = _batch(ids=IDS if cond == "embedding" else None)
    out = model(batch)
    total, terms = VCLoss(Loss(), cfg)(out, batch)
    assert tuple(terms) == loss_names(cfg)
    assert {"forward_sum", "bin", "duration", "pitch", "energy"} <= set(terms)
    assert ("gmm" in terms) == (prosody == "gmm")
    assert all(torch.isfinite(v) for v in terms.values())
    width = batch.tokens.shape[1] if level == "token" else batch.tgt_mel.shape[1]
    assert out["pitch"].shape == out["pitch_target"].shape == (3, width)
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in model.conditioning.parameters()) or (
        cond == "none"
    )


@pytest.mark.parametrize("r", [1, 2, 3])
def test_aligner_durations_sum_to_the_frame_count(r):
    model = _model(tiny_tts_config(), r=r)
    batch = _batch(r=r)
    out = model(batch)
    d = out["duration_target"]
    assert d.dtype == torch.long and torch.equal(d.sum(1), batch.tgt_lens // r)
    real = torch.arange(d.shape[1])[None] < batch.token_lens[:, None]
    assert (d[real] >= 1).all() and (d[~real] == 0).all()
    hard = out["attn_hard"]
    assert torch.equal(hard.sum(1).long(), d) and torch.equal(
        hard.sum(2), out["align_mask"].float()
    )


def test_fixed_durations_are_used_and_no_alignment_search_runs(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("MAS must not run with fixed durations")

    monkeypatch.setattr(tts_module, "monotonic_alignment_search", refuse)
    model = _model(tiny_tts_config(level="token"))
    batch = _batch(durations=True)
    out = model(batch)
    assert torch.equal(out["duration_target"], batch.duration)
    assert torch.equal(out["attn_hard"].sum(1).long(), batch.duration)
    total, _ = VCLoss(Loss(), model.cfg)(out, batch)
    total.backward()
    batch.duration[0, 0] += 1  # no longer sums to the frames
    with pytest.raises(ValueError, match="vc-align"):
        model(batch)


@pytest.mark.parametrize("level", ["frame", "token"])
@pytest.mark.parametrize("prosody", ["none", "gmm"])
def test_infer_on_unseen_tokens_gives_finite_mel_of_r_times_the_durations(level, prosody):
    r = 2
    model = _model(tiny_tts_config(level=level, pitch="arnar", prosody=prosody), r=r)
    model(_batch(r=r)).get("mel").sum().backward()  # a training step's graph, then inference
    tokens = torch.tensor([[VOCAB - 1, 2, 3, 2, 1, 4], [5, 6, 0, 0, 0, 0]])  # not in any batch
    lens = torch.tensor([6, 2])
    seg, n_seg = torch.tensor([[4, 2], [2, 0]]), torch.tensor([2, 1])
    out = model.infer(tokens, lens, seg, n_seg, duration_scale=1.5)
    assert model.training  # restored
    assert torch.equal(out["tgt_lens"], r * out["duration"].sum(1))
    assert out["mel"].shape[1] == int(out["tgt_lens"].max())
    assert out["pitch"].shape == out["energy"].shape == out["mel"].shape[:2]
    for b in range(2):
        n = int(out["tgt_lens"][b])
        assert torch.isfinite(out["mel"][b, :n]).all() and n > 0
        assert (out["mel"][b, n:] == 0).all()
        assert (out["duration"][b, int(lens[b]) :] == 0).all()
    vc = build_model(tiny_config(pitch="arnar", prosody=prosody), N_MELS, r)
    src = random_batch(N_MELS, r, [8], [8])
    ref = vc.infer(src.src_mel, src.src_lf0, src.src_energy, src.src_lens, src.src_seg, src.n_seg)
    assert set(out) == set(ref)  # the same keys as VC conversion
    assert model.segment_outputs == vc.segment_outputs


@pytest.mark.parametrize("level", ["frame", "token"])
def test_outputs_do_not_depend_on_batch_partners(level):
    model = _model(tiny_tts_config(level=level, pitch="ar")).eval()
    items = text_items(N_MELS, 2, [5, 7, 3], [16, 20, 8], [2, 3, 1])
    alone = model(collate_text(items[:1]))
    together = model(collate_text(items))
    t, n = 16, 5
    assert torch.equal(alone["duration_target"][0], together["duration_target"][0, :n])
    assert torch.allclose(alone["post_mel"][0], together["post_mel"][0, :t], atol=1e-5)
    key = "pitch"
    width = n if level == "token" else t
    assert torch.allclose(alone[key][0], together[key][0, :width], atol=1e-5)
    inf_alone = model.infer(alone_tokens := collate_text(items[:1]).tokens, torch.tensor([5]))
    batch = collate_text(items)
    inf_all = model.infer(batch.tokens, batch.token_lens)
    m = int(inf_alone["tgt_lens"][0])
    assert torch.equal(inf_alone["duration"][0], inf_all["duration"][0, : alone_tokens.shape[1]])
    assert torch.allclose(inf_alone["mel"][0], inf_all["mel"][0, :m], atol=1e-5)


def test_token_targets_average_each_tokens_voiced_frames():
    lf0 = torch.tensor([[1.0, 3.0, 5.0, 7.0, 2.0, 4.0]])
    vuv = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 0.0]])
    d = torch.tensor([[1, 1, 1]])  # r = 2: tokens own frames (0, 1), (2, 3), (4, 5)
    assert token_average(lf0, vuv, d, 2).tolist() == [[1.0, 6.0, 0.0]]
    items = text_items(N_MELS, 2, [3], [6])
    items[0].update(tgt_lf0=lf0[0].numpy(), tgt_vuv=vuv[0].numpy(), duration=d[0].numpy())
    model = _model(tiny_tts_config(level="token"))
    out = model(collate_text(items))
    # the third token has no voiced frame: the mean of all its frames
    assert out["pitch_target"].tolist() == [[1.0, 6.0, 3.0]]
    energy = items[0]["tgt_energy"]
    assert torch.allclose(out["energy_target"][0, 0], torch.tensor(energy[:2].mean()))


def test_binarisation_loss_starts_at_the_configured_step():
    model = _model(tiny_tts_config(bin_start=5))
    batch = _batch()
    model.set_step(4)
    assert float(model(batch)["bin"].detach()) == 0.0
    model.set_step(5)
    assert float(model(batch)["bin"].detach()) > 0.0


@pytest.mark.parametrize("side", ["embedding", "encoder"])
def test_the_aligner_reads_the_configured_text_side(side):
    model = _model(tiny_tts_config(aligner_input=side))
    out = model(_batch())
    out["forward_sum"].backward()
    encoder_grad = sum(
        float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None
    )
    assert (encoder_grad > 0) == (side == "encoder")
    assert float(model.token_embed.weight.grad.abs().sum()) > 0


def test_padding_token_and_tts_only_keys_are_checked():
    with pytest.raises(ValueError, match="padding"):
        collate_text([{**text_items(N_MELS, 2, [3], [6])[0], "tokens": [1, 0, 2]}])
    with pytest.raises(ValueError, match="vocab_size"):
        build_model(tiny_tts_config(), N_MELS, 2)
    from vc_toolkit.config.tag import ModelConfig

    with pytest.raises(ValueError, match="model.type: fastspeech2tts"):
        ModelConfig(variance_level="token").validate()
