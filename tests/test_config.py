"""Config loading, inheritance, presets and strict validation."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import REPO, write_conf

from vc_toolkit.config import ConfigError, SpkConfig, TagConfig, build, load_spk, load_tag, to_dict
from vc_toolkit.config.resolve import available, diff_configs
from vc_toolkit.paths import Layout

DEMO = {"corpus": {"name": "demo"}}


def test_defaults_and_overrides(root):
    write_conf(root, "spk", "a", {**DEMO, "sample_rate": 16000, "trim": {"silence_thresh_t": -60}})
    cfg = load_spk("a", root)
    assert cfg.sample_rate == 16000
    assert cfg.trim.silence_thresh_t == -60.0 and isinstance(cfg.trim.silence_thresh_t, float)
    assert cfg.trim.silence_thresh_h == -50.0  # untouched default


def test_base_inheritance_deep_merges_and_replaces_lists(root):
    write_conf(root, "spk", "a", {**DEMO, "exclude": ["x", "y"], "trim": {"chunk_size": 20}})
    write_conf(root, "spk", "b", {"base": "a", "exclude": ["z"], "trim": {"silence_thresh_t": -70}})
    write_conf(root, "spk", "c", {"base": "b", "note": "third"})
    cfg = load_spk("c", root)
    assert cfg.exclude == ["z"]
    assert cfg.trim.chunk_size == 20 and cfg.trim.silence_thresh_t == -70.0
    assert cfg.note == "third"


def test_base_cycle_is_an_error(root):
    write_conf(root, "spk", "a", {"base": "b", **DEMO})
    write_conf(root, "spk", "b", {"base": "a"})
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        load_spk("a", root)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {**DEMO, "trim": {"silence_thresh_hh": -3}},
            r"unknown key 'trim.silence_thresh_hh' \(did you mean 'trim.silence_thresh_h'\?\)",
        ),
        (
            {**DEMO, "sampel_rate": 16000},
            r"unknown key 'sampel_rate' \(did you mean 'sample_rate'\?\)",
        ),
        ({**DEMO, "sample_rate": "fast"}, r"key 'sample_rate' must be int, got str 'fast'"),
        ({**DEMO, "split": {"dev": 0}}, r"key 'split.dev' must be >= 1, got 0"),
        (
            {**DEMO, "feats": {"pitch": {"method": "dyo"}}},
            r"'feats.pitch.method' must be one of 'dio', 'harvest', got 'dyo' \(did you mean 'dio'",
        ),
        (
            {**DEMO, "feats": {"mel": {"win_length": 2048}}},
            r"win_length \(2048\) must be <= feats.mel.n_fft",
        ),
        ({"corpus": {"name": "parallel"}}, r"required key 'corpus.src_wav_root' is missing"),
        ({"corpus": {"name": "dmeo"}}, r"'corpus.name' must be one of .*\(did you mean 'demo'\?\)"),
        ({**DEMO, "trim": {"enabled": "yes"}}, r"'trim.enabled' must be bool, got str 'yes'"),
    ],
)
def test_spk_validation_errors_name_file_and_key(root, data, message):
    write_conf(root, "spk", "bad", data)
    with pytest.raises(ConfigError, match=message) as info:
        load_spk("bad", root)
    assert "bad.yaml" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"spk": "demo", "train": {"batch_sise": 4}},
            r"unknown key 'train.batch_sise' \(did you mean 'train.batch_size'\?\)",
        ),
        ({"spk": "demo", "train": {"best_metric": "postmel"}}, r"did you mean 'post_mel'"),
        (
            {"spk": "demo", "pretrain": {"tg": "x"}},
            r"unknown key 'pretrain.tg' \(did you mean 'pretrain.tag'\?\)",
        ),
        (
            {"spk": "demo", "model": {"hidden": 30, "encoder": {"heads": 4}}},
            r"model.encoder.heads \(4\) must divide model.hidden \(30\)",
        ),
        (
            {"spk": "demo", "train": {"scheduler": {"type": "noam"}}},
            r"noam needs scheduler.max_lr_scale",
        ),
        ({"note": "no spk"}, r"required key 'spk' is missing"),
    ],
)
def test_tag_validation_errors(root, data, message):
    write_conf(root, "tag", "t", data)
    with pytest.raises(ConfigError, match=message):
        load_tag("t", root)


def test_unknown_name_lists_available(root):
    write_conf(root, "spk", "N2C_2", DEMO)
    write_conf(root, "spk", "N2C_4", DEMO)
    with pytest.raises(ConfigError, match=r"unknown spk 'N2C_3'.*available: N2C_2, N2C_4"):
        load_spk("N2C_3", root)


def test_yaml_syntax_error_gives_line(root):
    write_conf(root, "spk", "broken", "corpus: {name: demo\nsample_rate: 1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+: invalid YAML"):
        load_spk("broken", root)


def test_model_preset_then_overrides(root):
    write_conf(root, "tag", "t", {"spk": "demo", "model": {"preset": "demo", "hidden": 64}})
    cfg = load_tag("t", root)
    preset = (REPO / "conf/model/demo.yaml").read_text()
    assert "layers: 2" in preset
    assert cfg.model.hidden == 64  # tag wins
    assert cfg.model.encoder.layers == 2  # from the preset (default is 4)
    assert cfg.model.preset == "demo"


def test_tag_base_and_unknown_preset(root):
    write_conf(root, "tag", "a", {"spk": "demo", "train": {"batch_size": 8}})
    write_conf(root, "tag", "b", {"base": "a", "model": {"pitch_predictor": {"type": "ar"}}})
    cfg = load_tag("b", root)
    assert cfg.train.batch_size == 8 and cfg.model.pitch_predictor.type == "ar"
    write_conf(root, "tag", "c", {"spk": "demo", "model": {"preset": "hueg"}})
    with pytest.raises(ConfigError, match="unknown model 'hueg'"):
        load_tag("c", root)


def test_round_trip_through_dict():
    cfg = build(TagConfig, {"spk": "x", "pretrain": {"tag": "p", "exclude": ["postnet"]}})
    assert build(TagConfig, to_dict(cfg)) == cfg
    spk = build(
        SpkConfig, {"corpus": {"name": "parallel", "src_wav_root": "a", "tgt_wav_root": "b"}}
    )
    assert build(SpkConfig, to_dict(spk)) == spk


def test_diff_configs_lists_changed_keys():
    a = build(SpkConfig, DEMO)
    b = dataclasses.replace(a, trim=dataclasses.replace(a.trim, silence_thresh_t=-60.0))
    assert diff_configs(a, b) == ["trim.silence_thresh_t: -100.0 -> -60.0"]
    assert diff_configs(a, a) == []


def test_every_shipped_config_validates():
    layout = Layout(REPO)
    spks, tags = available(layout, "spk"), available(layout, "tag")
    assert "demo" in spks and "demo_conv" in tags
    for name in spks:
        load_spk(name, REPO)
    for name in tags:
        assert load_tag(name, REPO).spk in spks


def test_zero_epochs_needs_a_pretrain_tag(root):
    write_conf(root, "tag", "t", {"spk": "demo", "train": {"epochs": 0}})
    with pytest.raises(ConfigError, match="epochs 0 keeps the pretrain tag's weights"):
        load_tag("t", root)
    write_conf(root, "tag", "t", {"spk": "demo", "train": {"epochs": 0}, "pretrain": {"tag": "a"}})
    assert load_tag("t", root).train.epochs == 0


def _without_added(cls, data: dict) -> tuple[dict, list[str]]:
    """``data`` without every key of ``cls`` marked added_later (what older versions froze)."""
    import dataclasses
    import typing

    dropped = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("added"):
            data.pop(f.name, None)
            dropped.append(f.name)
        elif isinstance(data.get(f.name), dict):
            inner_cls = _section_class(hints[f.name], data[f.name])
            if inner_cls is not None:
                _, inner = _without_added(inner_cls, data[f.name])
                dropped += [f"{f.name}.{k}" for k in inner]
    return data, dropped


def _section_class(tp, section: dict):
    """The dataclass of a section: its type, or the union member its ``name`` picks."""
    import dataclasses
    import typing

    if dataclasses.is_dataclass(tp):
        return tp
    for option in typing.get_args(tp):
        if dataclasses.is_dataclass(option):
            names = typing.get_args(typing.get_type_hints(option).get("name", type(None)))
            if section.get("name") in names:
                return option
    return None


@pytest.mark.parametrize("kind", ["spk", "tag"])
def test_configs_frozen_before_later_keys_existed_are_unchanged(root, tmp_path, kind):
    from vc_toolkit.config import SpkConfig, TagConfig, to_dict
    from vc_toolkit.config.pin import check_frozen, config_hash

    cls = {"spk": SpkConfig, "tag": TagConfig}[kind]
    data = {"corpus": {"name": "demo"}} if kind == "spk" else {"spk": "demo"}
    cfg = build(cls, data)
    old, dropped = _without_added(cls, to_dict(cfg))
    assert dropped  # the schema has keys added later (feats.dtw, infer.vocoder.voc, ...)
    frozen = tmp_path / "config.yaml"
    frozen.write_text(yaml.safe_dump(old))
    assert check_frozen(frozen, cfg, "x.yaml", False, f"{kind} 'x'") == []
    assert config_hash(cfg) == config_hash(old)
