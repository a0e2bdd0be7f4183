"""Optuna study configs: schema, search-space checks against the tag schema, suggest mapping."""

from __future__ import annotations

import copy

import optuna
import pytest
from conftest import REPO, TINY_TAG, write_conf

from vc_toolkit.config import ConfigError, TagConfig, build, load_tag, to_dict
from vc_toolkit.config.resolve import flatten
from vc_toolkit.paths import Layout
from vc_toolkit.tune.objective import budget, set_dotted, suggest, trial_config
from vc_toolkit.tune.study import (
    TRIAL_ONLY_KEYS,
    FloatDist,
    IntDist,
    StudyConfig,
    check_base,
    load_study,
    make_pruner,
    make_sampler,
    parse_space,
    storage_target,
)


def _space(spec: dict) -> dict:
    return parse_space(spec, "s.yaml")


def _error(spec: dict) -> str:
    with pytest.raises(ConfigError) as err:
        _space(spec)
    return str(err.value)


# ---- keys ----------------------------------------------------------------------------------
def test_unknown_key_names_the_key_and_the_closest_valid_key():
    msg = _error({"train.scheduler.peak_lrr": {"type": "float", "low": 1e-4, "high": 1e-2}})
    assert "unknown key 'train.scheduler.peak_lrr'" in msg
    assert "did you mean 'train.scheduler.peak_lr'" in msg
    msg = _error({"los.g_beta": {"type": "float", "low": 0.01, "high": 1.0}})
    assert "'los.g_beta'" in msg and "'loss.g_beta'" in msg


def test_sections_and_study_owned_keys_are_refused():
    assert "is a section" in _error({"model.encoder": {"type": "int", "low": 1, "high": 2}})
    for key in ("train.epochs", "train.num_threads", "model.preset", "note"):
        msg = _error({key: {"type": "categorical", "choices": [1, 2]}})
        assert f"'{key}'" in msg


def test_missing_or_unknown_distribution_type():
    assert "type: float" in _error({"loss.pitch": {"low": 0.1, "high": 1.0}})
    msg = _error({"loss.pitch": {"type": "uniform", "low": 0.1, "high": 1.0}})
    assert "'uniform'" in msg
    assert "unknown key" in _error({"loss.pitch": {"type": "float", "low": 0.1, "hi": 1.0}})


# ---- types ---------------------------------------------------------------------------------
def test_float_range_on_an_int_field_is_refused():
    msg = _error({"train.batch_size": {"type": "float", "low": 2, "high": 32}})
    assert "'train.batch_size'" in msg and "use type: int" in msg


def test_numeric_ranges_on_bool_and_choice_fields_are_refused():
    assert "use categorical" in _error(
        {"model.encoder.macaron": {"type": "int", "low": 0, "high": 1}}
    )
    assert "use categorical" in _error(
        {"model.encoder.type": {"type": "float", "low": 0.0, "high": 1.0}}
    )


def test_int_range_fits_an_int_and_a_float_field():
    space = _space(
        {
            "model.hidden": {"type": "int", "low": 32, "high": 256, "step": 32},
            "loss.energy": {"type": "int", "low": 1, "high": 3},
        }
    )
    assert isinstance(space["model.hidden"], IntDist) and space["model.hidden"].step == 32
    assert isinstance(space["loss.energy"], IntDist)


def test_categorical_choices_must_each_fit_the_field():
    msg = _error({"model.encoder.heads": {"type": "categorical", "choices": [2, "four"]}})
    assert "'four'" in msg and "must be int" in msg
    msg = _error({"model.encoder.pos_enc": {"type": "categorical", "choices": ["rel", "absolute"]}})
    assert "'absolute'" in msg
    msg = _error({"train.optimizer.betas": {"type": "categorical", "choices": [[0.9, 0.98]]}})
    assert "not a scalar" in msg
    assert "repeat" in _error({"model.encoder.heads": {"type": "categorical", "choices": [2, 2]}})
    ok = _space({"model.pitch_predictor.type": {"type": "categorical", "choices": ["conv", "ar"]}})
    assert ok["model.pitch_predictor.type"].choices == ["conv", "ar"]


def test_nullable_field_accepts_null_among_the_choices():
    space = _space({"train.max_frames": {"type": "categorical", "choices": [None, 400]}})
    assert space["train.max_frames"].choices == [None, 400]


# ---- ranges --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, spec, words",
    [
        ("loss.pitch", {"type": "float", "low": 1.0, "high": 1.0}, "low < high"),
        ("loss.pitch", {"type": "float", "low": 2.0, "high": 1.0}, "low < high"),
        (
            "train.scheduler.peak_lr",
            {"type": "float", "low": 0.0, "high": 1e-2, "log": True},
            "low > 0",
        ),
        ("model.encoder.layers", {"type": "int", "low": 0, "high": 4}, ">= 1"),
        ("model.encoder.dropout", {"type": "float", "low": 0.1, "high": 1.5}, "<= 1"),
        ("model.hidden", {"type": "int", "low": 32, "high": 100, "step": 32}, "multiple of step"),
        (
            "model.hidden",
            {"type": "int", "low": 32, "high": 256, "step": 32, "log": True},
            "not both",
        ),
        ("model.hidden", {"type": "int", "low": 32, "high": 256, "step": 0}, ">= 1"),
    ],
)
def test_bad_ranges_are_refused(key, spec, words):
    msg = _error({key: spec})
    assert key in msg and words in msg


# ---- study config --------------------------------------------------------------------------
def _study(**changes) -> dict:
    data = {
        "base_tag": "tiny",
        "n_trials": 2,
        "epochs_per_trial": 1,
        "search_space": {"loss.pitch": {"type": "float", "low": 0.1, "high": 2.0}},
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_study_needs_an_end_a_trial_budget_and_a_search_space(tmp_path):
    layout = Layout(tmp_path)
    for changes, words in [
        ({"n_trials": None}, "n_trials and/or timeout"),
        ({"epochs_per_trial": None}, "epochs_per_trial"),
        ({"search_space": {}}, "search_space is empty"),
        ({"n_trial": 3}, "did you mean 'n_trials'"),
    ]:
        write_conf(tmp_path, "optuna", "s", _study(**changes))
        with pytest.raises(ConfigError, match=words):
            load_study("s", layout)
    write_conf(tmp_path, "optuna", "s", _study(n_trials=None, timeout=60, steps_per_trial=5))
    cfg, _ = load_study("s", layout)
    assert cfg.timeout == 60.0 and cfg.steps_per_trial == 5


def test_total_objective_with_searched_loss_weights_is_refused(tmp_path):
    write_conf(tmp_path, "optuna", "s", _study(objective={"name": "total"}))
    with pytest.raises(ConfigError, match="not comparable"):
        load_study("s", Layout(tmp_path))


def test_gmm_objective_needs_segment_prosody_in_the_base_tag():
    cfg = build(StudyConfig, _study(objective={"name": "gmm"}))
    space = _space(cfg.search_space)
    plain = build(TagConfig, TINY_TAG)
    with pytest.raises(ConfigError, match="prosody"):
        check_base(cfg, plain, space)
    gmm = build(TagConfig, {**TINY_TAG, "model": {**TINY_TAG["model"], "prosody": {"type": "gmm"}}})
    check_base(cfg, gmm, space)  # no error


def test_shipped_demo_study_is_valid_and_its_base_tag_exists():
    layout = Layout(REPO)
    cfg, space = load_study("demo", layout)
    base = load_tag(cfg.base_tag, REPO)
    check_base(cfg, base, space)
    assert cfg.pruner.n_startup_trials < cfg.n_trials
    assert cfg.epochs_per_trial < base.train.epochs


def test_storage_target_defaults_to_a_journal_under_exp_optuna(tmp_path):
    layout = Layout(tmp_path)
    cfg = build(StudyConfig, _study())
    assert storage_target(cfg, layout, "s") == str(tmp_path / "exp/optuna/s/study.journal")
    cfg = build(StudyConfig, _study(storage="other/j.log"))
    assert storage_target(cfg, layout, "s") == str(tmp_path / "other/j.log")
    cfg = build(StudyConfig, _study(storage="sqlite:///x.db"))
    assert storage_target(cfg, layout, "s") == "sqlite:///x.db"


def test_sampler_and_pruner_construction():
    cfg = build(StudyConfig, _study(sampler={"type": "random", "seed": 3}, pruner={"type": "none"}))
    assert isinstance(make_sampler(cfg.sampler), optuna.samplers.RandomSampler)
    assert isinstance(make_pruner(cfg.pruner), optuna.pruners.NopPruner)
    cfg = build(StudyConfig, _study())
    assert isinstance(make_sampler(cfg.sampler), optuna.samplers.TPESampler)
    assert isinstance(make_pruner(cfg.pruner), optuna.pruners.PercentilePruner)
    # the same seed proposes the same values; an offset changes them
    draws = []
    for offset in (0, 0, 1):
        study = optuna.create_study(sampler=make_sampler(cfg.sampler, offset))
        draws.append(study.ask().suggest_float("x", 0.0, 1.0))
    assert draws[0] == draws[1] != draws[2]


# ---- suggest mapping -----------------------------------------------------------------------
def test_suggested_values_land_at_their_dotted_keys_and_nothing_else_changes():
    space = _space(
        {
            "train.scheduler.peak_lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "model.encoder.heads": {"type": "categorical", "choices": [2, 4]},
            "model.prosody.num_gaussians": {"type": "int", "low": 2, "high": 8},
        }
    )
    fixed = {
        "train.scheduler.peak_lr": 3e-3,
        "model.encoder.heads": 4,
        "model.prosody.num_gaussians": 6,
    }
    params = suggest(optuna.trial.FixedTrial(fixed), space)
    assert params == fixed
    base = to_dict(build(TagConfig, TINY_TAG))
    before = copy.deepcopy(base)
    cfg_build = build(StudyConfig, _study(epochs_per_trial=3))
    data = trial_config(base, params, budget(cfg_build, base, threads=1))
    assert base == before
    cfg = build(TagConfig, data)
    assert cfg.train.scheduler.peak_lr == 3e-3
    assert cfg.model.encoder.heads == 4 and cfg.model.decoder.heads == 2
    assert cfg.model.prosody.num_gaussians == 6
    assert cfg.train.epochs == 3 and cfg.train.eval_interval == 1 and cfg.train.num_threads == 1
    changed = {k for k, v in flatten(data).items() if flatten(before).get(k) != v}
    assert changed <= set(fixed) | set(TRIAL_ONLY_KEYS)


def test_set_dotted_creates_missing_sections_and_replaces_non_mappings():
    data = {"a": 1}
    set_dotted(data, "a.b", 2)
    set_dotted(data, "c.d.e", 3)
    assert data == {"a": {"b": 2}, "c": {"d": {"e": 3}}}


def test_float_step_distribution_is_suggested_on_its_grid():
    space = _space({"loss.pitch": {"type": "float", "low": 0.5, "high": 2.0, "step": 0.5}})
    assert isinstance(space["loss.pitch"], FloatDist)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = {suggest(study.ask(), space)["loss.pitch"] for _ in range(30)}
    assert values <= {0.5, 1.0, 1.5, 2.0} and len(values) > 1
