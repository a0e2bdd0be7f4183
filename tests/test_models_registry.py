"""Predictor registries: choices match the config, declared loss terms match the Loss weights."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch
from factories import random_batch, tiny_config

from vc_toolkit.config.tag import LOSS_NAMES, Loss, ModelConfig, PitchPredictor, Prosody
from vc_toolkit.models import (
    MODEL_FAMILIES,
    PITCH_PREDICTORS,
    PROSODY,
    LossTerm,
    Registry,
    VCLoss,
    all_loss_names,
    build_model,
    describe,
    loss_names,
    loss_sources,
    loss_terms,
)
from vc_toolkit.models.interfaces import PitchPredictorBase, ProsodyBase


def _config_choices(cls: type, field: str = "type") -> set[str]:
    return set(typing.get_args(typing.get_type_hints(cls)[field]))


def _every_config() -> list[ModelConfig]:
    return [
        ModelConfig(
            type=family,
            pitch_predictor=PitchPredictor(type=pitch),
            prosody=Prosody(type=prosody, use_global=use_global),
        )
        for family in MODEL_FAMILIES.choices()
        for pitch in PITCH_PREDICTORS.choices()
        for prosody in PROSODY.choices()
        for use_global in (False, True)
    ]


def test_registries_offer_exactly_the_config_choices():
    assert set(PITCH_PREDICTORS.choices()) == _config_choices(PitchPredictor)
    assert set(PROSODY.choices()) == _config_choices(Prosody)
    assert PITCH_PREDICTORS.choices() == ("conv", "ar", "arnar")
    for _, cls in PITCH_PREDICTORS:
        assert issubclass(cls, PitchPredictorBase)
    for _, cls in PROSODY:
        assert issubclass(cls, ProsodyBase)


def test_registered_terms_agree_with_the_loss_weights_and_loss_names():
    fields = {f.name: f for f in dataclasses.fields(Loss)}
    terms = {term for cfg in _every_config() for term in loss_terms(cfg)}
    for term in terms:
        assert term.weight in fields, f"{term.name}: no Loss field {term.weight!r}"
        assert fields[term.weight].metadata.get("term", term.weight) == term.name
    assert {t.name for t in terms} | {"total"} == set(all_loss_names())
    assert set(all_loss_names()) == set(LOSS_NAMES)
    for registry in (PITCH_PREDICTORS, PROSODY):  # what a class may produce, it lists
        for _, cls in registry:
            sub = "pitch_predictor" if registry is PITCH_PREDICTORS else "prosody"
            produced = {
                t.name for cfg in _every_config() for t in cls.loss_terms(getattr(cfg, sub))
            }
            assert produced <= set(cls.loss_names())


def test_loss_terms_order_and_names():
    plain = ModelConfig()
    assert loss_names(plain) == ("mel", "post_mel", "duration", "pitch", "energy", "total")
    gmm = ModelConfig(pitch_predictor=PitchPredictor(type="arnar"), prosody=Prosody(type="gmm"))
    assert loss_names(gmm)[-3:] == ("energy", "gmm", "total")
    both = ModelConfig(prosody=Prosody(type="gmm", use_global=True))
    tts_only = ("forward_sum", "bin", "total")
    assert [t.name for t in loss_terms(both)] == [n for n in LOSS_NAMES if n not in tts_only]
    assert [t.weight for t in loss_terms(both)][-2:] == ["beta", "g_beta"]
    assert all(isinstance(t, LossTerm) for t in loss_terms(both))
    assert all_loss_names() == LOSS_NAMES
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss_terms(plain)[0].name = "x"


def test_loss_sources_name_the_config_choices():
    for name in ("mel", "post_mel", "duration", "pitch", "energy"):
        assert loss_sources(name) == ["every model"]
    assert loss_sources("gmm") == ["model.prosody.type: gmm"]
    (global_source,) = loss_sources("global_gmm")
    assert "model.prosody.type: gmm" in global_source and "use_global" in global_source
    assert loss_sources("nonsense") == []


def test_describe_labels():
    assert describe(ModelConfig()) == {"pitch": "conv", "prosody": "none"}
    cfg = ModelConfig(
        pitch_predictor=PitchPredictor(type="arnar"), prosody=Prosody(type="gmm", use_global=True)
    )
    assert describe(cfg) == {"pitch": "arnar", "prosody": "gmm+global"}
    cfg.prosody.use_global = False
    assert describe(cfg)["prosody"] == "gmm"


def test_registry_lookup_errors_and_registration():
    with pytest.raises(ValueError, match=r"model\.prosody\.type: unknown choice 'wgmm'.*'gmm'"):
        PROSODY.get("wgmm")
    registry = Registry("model.toy")

    @registry.register("one")
    class One:
        pass

    assert registry.get("one") is One and One.registry_name == "one"
    assert registry.choices() == ("one",) and list(registry) == [("one", One)]
    assert "one" in registry and len(registry) == 1
    with pytest.raises(ValueError, match="already registered"):
        registry.register("one")(type("Two", (), {}))


def test_parts_keep_their_parameter_names():
    conv = build_model(tiny_config(pitch="conv"), n_mels=4, reduction_factor=2)
    names = [n for n, _ in conv.named_parameters() if n.startswith("pitch_predictor.")]
    assert names and all(
        n.startswith(("pitch_predictor.convs.", "pitch_predictor.proj.")) for n in names
    )
    assert not any(n.startswith("prosody.") for n in conv.state_dict())  # none: no parameters
    ar, arnar = (
        build_model(tiny_config(pitch=p), n_mels=4, reduction_factor=2) for p in ("ar", "arnar")
    )
    assert ar.state_dict().keys() == arnar.state_dict().keys()
    arnar.load_state_dict(ar.state_dict())  # an ar checkpoint loads into arnar as it is


def test_segment_outputs_are_the_per_segment_inference_outputs():
    assert build_model(tiny_config(), 4, 2).segment_outputs == ()
    model = build_model(tiny_config(prosody="gmm", use_global=True), 4, 2)
    assert model.segment_outputs == ("prosody",)
    batch = random_batch(4, 2, [16, 10], [20, 8], n_segs=[3, 2])
    out = model.infer(
        batch.src_mel, batch.src_lf0, batch.src_energy, batch.src_lens, batch.src_seg, batch.n_seg
    )
    for key in model.segment_outputs:
        assert out[key].shape[:2] == batch.src_seg.shape


@pytest.mark.parametrize("pitch", ["conv", "arnar"])
def test_vcloss_sums_exactly_the_declared_terms(pitch):
    cfg = tiny_config(pitch=pitch, prosody="gmm", use_global=True)
    torch.manual_seed(0)
    model = build_model(cfg, 4, 2)
    batch = random_batch(4, 2, [16, 10], [20, 8], n_segs=[3, 2])
    weights = Loss(mel=0.5, post_mel=2.0, duration=3.0, pitch=0.25, energy=1.5, beta=0.1)
    out = model(batch)
    total, terms = VCLoss(weights, cfg)(out, batch)
    assert tuple(terms) == loss_names(cfg)
    want = sum(getattr(weights, t.weight) * t.fn(out, batch) for t in loss_terms(cfg))
    assert torch.equal(total, want)
    _, plain = VCLoss(weights)(out, batch)  # the default model: no prosody terms
    assert tuple(plain) == loss_names(ModelConfig())


def test_gmm_seg_mask_defaults_to_the_segments_with_source_frames():
    model = build_model(tiny_config(prosody="gmm"), 4, 2)
    batch = random_batch(4, 2, [16, 10], [20, 8], n_segs=[3, 2])
    out = model(batch)
    want = out["seg_mask"]
    enc = torch.randn(2, 8, 16)
    src_mask = torch.arange(8) < torch.tensor([8, 5])[:, None]
    src_ids = torch.tensor([[0, 0, 1, 1, 1, 2, 2, 2], [0, 1, 1, 1, 1, 1, 1, 1]])
    tgt = torch.randn(2, 10, 8)
    tgt_mask = torch.arange(10) < torch.tensor([10, 4])[:, None]
    tgt_ids = torch.zeros(2, 10, dtype=torch.long)
    _, extra = model.prosody(enc, src_mask, src_ids, 3, tgt, tgt_mask, tgt_ids)
    assert extra["seg_mask"].tolist() == want.tolist() == [[True] * 3, [True, True, False]]
