"""Every constraint the model enforces on a config value is checked by the config validator.

A config the validator accepts must build (and convert with its ``infer`` settings); one it
refuses must name the key. Stage 2 freezes a tag's config only once its model is built.
"""

from __future__ import annotations

import copy
import random

import pytest
import torch
from conftest import TINY_TAG, copy_root, write_conf
from factories import random_batch

from vc_toolkit.config import ConfigError, TagConfig, build, load_tag
from vc_toolkit.config.tag import ModelConfig
from vc_toolkit.models import build_model
from vc_toolkit.paths import Layout
from vc_toolkit.train import family as train_family
from vc_toolkit.train.setup import setup


def _tag(**model) -> dict:
    data = copy.deepcopy(TINY_TAG)
    for key, value in model.items():
        section, _, leaf = key.partition("__")
        data["model"].setdefault(section, {})[leaf] = value
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"encoder__kernel_size": 4}, r"model.encoder.kernel_size must be odd, got 4"),
        ({"decoder__kernel_size": 6}, r"model.decoder.kernel_size must be odd, got 6"),
        (
            {"pitch_predictor__embed_kernel_size": 8},
            r"model.pitch_predictor.embed_kernel_size must be odd, got 8",
        ),
        (
            {"energy_predictor__embed_kernel_size": 2},
            r"model.energy_predictor.embed_kernel_size must be odd, got 2",
        ),
        (
            {"prosody__type": "gmm", "prosody__extractor_kernel": 4},
            r"model.prosody.extractor_kernel must be odd, got 4",
        ),
        ({"decoder__heads": 3}, r"model.decoder.heads \(3\) must divide model.hidden \(32\)"),
    ],
)
def test_the_validator_refuses_what_the_model_refuses(root, changes, message):
    write_conf(root, "tag", "t", _tag(**changes))
    with pytest.raises(ConfigError, match=message):
        load_tag("t", root)


def test_kernels_of_parts_the_model_does_not_build_are_not_checked(root):
    data = _tag(
        encoder__type="transformer",
        encoder__kernel_size=4,  # a Transformer block has no conv module
        prosody__type="none",
        prosody__extractor_kernel=4,  # no prosody module
    )
    write_conf(root, "tag", "t", data)
    cfg = load_tag("t", root)
    build_model(cfg.model, n_mels=20, reduction_factor=2)


@pytest.mark.parametrize("name", ["pitch_scale", "energy_scale"])
def test_a_conversion_scale_the_model_refuses_is_refused_by_the_validator(root, name):
    write_conf(root, "tag", "t", {**TINY_TAG, "infer": {name: 0.0}})
    with pytest.raises(ConfigError, match=rf"infer.{name} must be > 0, got 0.0"):
        load_tag("t", root)


# key: (values every config of this grid builds with, further values to mutate a key to)
_GRID = {
    "hidden": ([8, 12], [6]),
    "encoder.type": (["conformer", "transformer"], []),
    "encoder.heads": ([1, 2, 4], [3, 5]),
    "encoder.kernel_size": ([1, 3], [2, 4]),
    "encoder.pos_enc": (["rel", "abs"], []),
    "decoder.type": (["conformer", "transformer"], []),
    "decoder.heads": ([1, 2, 4], [3]),
    "decoder.kernel_size": ([3, 5], [2]),
    "use_source_pitch_energy": ([True, False], []),
    "duration_predictor.kernel_size": ([1, 3], [2]),
    "duration_predictor.embed_kernel_size": ([3], [2]),
    "pitch_predictor.type": (["conv", "ar", "arnar"], []),
    "pitch_predictor.kernel_size": ([3], [2]),
    "pitch_predictor.embed_kernel_size": ([1, 3], [2]),
    "energy_predictor.kernel_size": ([3], [4]),
    "energy_predictor.embed_kernel_size": ([3], [4]),
    "prosody.type": (["none", "gmm"], []),
    "prosody.extractor_kernel": ([1, 3], [2]),
    "postnet.layers": ([0, 1, 2], []),
    "postnet.kernel_size": ([3, 5], [2]),
}


def _random_model(rng: random.Random) -> dict:
    """A small model config; half of them with one key set to a value outside the safe grid."""
    model: dict = {
        "encoder": {"layers": 1, "ff_expansion": 1},
        "decoder": {"layers": 1, "ff_expansion": 1},
        "duration_predictor": {"layers": 1, "channels": 4},
        "pitch_predictor": {"layers": 1, "channels": 4, "ar": {"lstm_hidden": 4}},
        "energy_predictor": {"layers": 1, "channels": 4},
        "prosody": {"dim": 2, "num_gaussians": 2, "extractor_channels": 4, "gru_hidden": 4},
        "postnet": {"channels": 4},
    }
    values = {key: rng.choice(safe) for key, (safe, _) in _GRID.items()}
    if rng.random() < 0.5:
        key = rng.choice([k for k, (_, other) in _GRID.items() if other])
        values[key] = rng.choice(_GRID[key][1])
    for key, value in values.items():
        section, _, leaf = key.rpartition(".")
        (model[section] if section else model)[leaf] = value
    return model


def test_every_model_config_the_validator_accepts_builds_and_runs(monkeypatch):
    """Random small configs: the validator refuses a config exactly when the model does."""
    rng = random.Random(0)
    batch = random_batch(n_mels=4, r=2, src_frames=[8, 6], tgt_frames=[10, 6], n_segs=[2, 1])
    accepted = refused = 0
    for _ in range(120):
        data = {"spk": "x", "model": _random_model(rng)}
        try:
            cfg = build(TagConfig, data, where="random")
        except ConfigError as err:
            refused += 1
            assert "model." in str(err)
            with monkeypatch.context() as patch:  # the model's own checks only
                patch.setattr(ModelConfig, "validate", lambda self: None)
                unchecked = build(TagConfig, data, where="random")
                with pytest.raises(ValueError):
                    build_model(unchecked.model, n_mels=4, reduction_factor=2)
            continue
        accepted += 1
        model = build_model(cfg.model, n_mels=4, reduction_factor=2)
        with torch.no_grad():
            model(batch)
    assert accepted > 20 and refused > 20


def test_stage_2_freezes_the_config_only_once_the_model_is_built(
    tiny_features_root, tmp_path, monkeypatch
):
    root = copy_root(tiny_features_root, tmp_path)
    write_conf(root, "tag", "t", TINY_TAG)

    def broken(cfg, n_mels, reduction_factor, speakers=None):
        raise ValueError("a constraint the validator does not know")

    monkeypatch.setattr(train_family, "build_model", broken)
    with pytest.raises(ValueError, match="validator does not know"):
        setup("t", Layout(root), "cpu")
    assert not (root / "exp/t/config.yaml").exists()
    monkeypatch.undo()
    write_conf(root, "tag", "t", {**TINY_TAG, "note": "fixed after the failed start"})
    setup("t", Layout(root), "cpu")  # a changed config is no "changed tag": nothing was frozen
    assert (root / "exp/t/config.yaml").is_file()
