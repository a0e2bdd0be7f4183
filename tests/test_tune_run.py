"""Optuna studies end to end on the tiny corpus: pruning, failures, resume, workers, export."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest
import yaml
from conftest import TINY_TAG, copy_root, write_conf
from optuna.trial import TrialState

from vc_toolkit.bin import tune as tune_cli
from vc_toolkit.config import ConfigError, load_tag, to_dict
from vc_toolkit.config.resolve import flatten, read_yaml
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout
from vc_toolkit.train import family as train_family
from vc_toolkit.train.loop import Trainer
from vc_toolkit.tune.export import export_trial
from vc_toolkit.tune.objective import HOST, prepare, work
from vc_toolkit.tune.study import TRIAL_ONLY_KEYS, load_study, open_study, study_dir
from vc_toolkit.tune.summary import summarize

LR = "train.scheduler.peak_lr"


def _write_study(root, name: str, space: dict, **changes) -> None:
    data = {
        "base_tag": "tiny",
        "objective": {"name": "post_mel"},
        "n_trials": 2,
        "epochs_per_trial": 1,
        "search_space": space,
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "threads_per_worker": 1,
        "device": "cpu",
    }
    data.update(changes)
    write_conf(root, "optuna", name, data)


def _lr_space(low: float = 1e-7) -> dict:
    return {LR: {"type": "float", "low": low, "high": 1e-2, "log": True}}


def _run(root, name: str, enqueue: list[dict] | None = None) -> optuna.Study:
    """Prepare the study (enqueueing ``enqueue`` first), run one in-process worker."""
    layout = Layout(root)
    ctx = prepare(name, layout)
    study = open_study(ctx.cfg, name, layout)
    for params in enqueue or []:
        study.enqueue_trial(params)
    work(ctx)
    return open_study(ctx.cfg, name, layout, create=False)


def _history(root, name: str, number: int) -> list[dict]:
    path = study_dir(Layout(root), name) / f"trial_{number}" / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def root(tiny_features_root, tmp_path_factory):
    """A private recipe root with tag 'tiny' (features built)."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("tune"))
    write_conf(
        root, "tag", "tiny", {**TINY_TAG, "train": {**TINY_TAG["train"], "max_nonfinite": 2}}
    )
    return root


@pytest.fixture(scope="module")
def mixed(root):
    """Study 'mixed': trial 0 diverges (huge mel-loss weight), trials 1 and 2 complete."""
    space = {
        "loss.mel": {"type": "categorical", "choices": [1.0, 1.0e39]},
        **_lr_space(1e-4),
    }
    _write_study(root, "mixed", space, n_trials=3)
    _run(
        root,
        "mixed",
        [{"loss.mel": 1.0e39, LR: 2e-3}, {"loss.mel": 1.0, LR: 2e-3}, {"loss.mel": 1.0, LR: 5e-3}],
    )
    return root


# ---- outcomes ------------------------------------------------------------------------------
def test_diverging_trial_fails_with_a_reason_and_the_study_goes_on(mixed):
    study = open_study(load_study("mixed", Layout(mixed))[0], "mixed", Layout(mixed), create=False)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert "non-finite" in trials[0].user_attrs["fail_reason"]
    assert all("fail_reason" not in t.user_attrs for t in trials[1:])
    folder = study_dir(Layout(mixed), "mixed")
    metrics = json.loads((folder / "trial_0" / "metrics.json").read_text())
    assert metrics["state"] == "FAIL" and "non-finite" in metrics["fail_reason"]
    done = json.loads((folder / "trial_1" / "metrics.json").read_text())
    assert done["state"] == "COMPLETE" and done["value"] == trials[1].value
    assert done["values"] == {"1": trials[1].value}  # one epoch, reported at step 1
    assert trials[1].intermediate_values == {1: trials[1].value}
    assert not (folder / "trial_1" / "checkpoints").exists()  # save_checkpoints: false
    assert _history(mixed, "mixed", 1)[-1]["dev"]["post_mel"] == trials[1].value


def test_pruned_trial_stops_training_early(root):
    _write_study(
        root,
        "prune",
        _lr_space(),
        epochs_per_trial=3,
        pruner={"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
    )
    # trial 0 learns; trial 1 (lr 1e-7) is still at its initial loss after epoch 1
    study = _run(root, "prune", [{LR: 3e-3}, {LR: 1e-7}])
    first, second = study.get_trials()
    assert first.state == TrialState.COMPLETE and sorted(first.intermediate_values) == [1, 2, 3]
    assert second.state == TrialState.PRUNED
    assert list(second.intermediate_values) == [1]
    assert second.intermediate_values[1] > first.intermediate_values[1]
    assert "pruned at epoch 1" in second.user_attrs["fail_reason"]
    assert [row["epoch"] for row in _history(root, "prune", 1)] == [1]  # training stopped


def test_invalid_sampled_combination_is_pruned_with_its_reason(root):
    space = {"model.encoder.heads": {"type": "categorical", "choices": [3]}}  # hidden is 32
    _write_study(root, "invalid", space, n_trials=1)
    (trial,) = _run(root, "invalid").get_trials()
    assert trial.state == TrialState.PRUNED
    assert "must divide model.hidden" in trial.user_attrs["fail_reason"]


def test_an_even_conformer_kernel_is_pruned_before_training_and_the_study_goes_on(root, capfd):
    space = {"model.encoder.kernel_size": {"type": "categorical", "choices": [3, 4]}}
    _write_study(root, "kernel", space, n_trials=5)
    rc = tune_cli.main(["run", "--study", "kernel", "--root", str(root)])
    assert rc == 0, capfd.readouterr().err
    layout = Layout(root)
    trials = open_study(load_study("kernel", layout)[0], "kernel", layout).get_trials()
    assert len(trials) == 5
    kernels = {t.params["model.encoder.kernel_size"] for t in trials}
    assert kernels == {3, 4}
    for t in trials:
        folder = study_dir(layout, "kernel") / f"trial_{t.number}"
        if t.params["model.encoder.kernel_size"] == 4:
            assert t.state == TrialState.PRUNED
            assert "model.encoder.kernel_size must be odd" in t.user_attrs["fail_reason"]
            assert not (folder / "history.jsonl").exists()  # never reached training
        else:
            assert t.state == TrialState.COMPLETE


def test_a_trial_that_raises_fails_with_its_reason_and_the_study_goes_on(root, monkeypatch):
    def build(cfg, n_mels, reduction_factor, speakers=None):  # a constraint the validator misses
        if cfg.encoder.kernel_size == 5:
            raise ValueError("kernel_size 5 is not supported by this conv")
        return original(cfg, n_mels, reduction_factor, speakers)

    original = train_family.build_model
    monkeypatch.setattr(train_family, "build_model", build)
    key = "model.encoder.kernel_size"
    _write_study(root, "raises", {key: {"type": "categorical", "choices": [3, 5]}}, n_trials=3)
    trials = _run(root, "raises", [{key: 5}, {key: 3}, {key: 5}]).get_trials()
    states = [TrialState.FAIL, TrialState.COMPLETE, TrialState.FAIL]
    assert [t.state for t in trials] == states
    for t in (trials[0], trials[2]):
        assert "ValueError: kernel_size 5 is not supported" in t.user_attrs["fail_reason"]
        metrics = json.loads(
            (study_dir(Layout(root), "raises") / f"trial_{t.number}" / "metrics.json").read_text()
        )
        assert metrics["state"] == "FAIL" and "kernel_size 5" in metrics["fail_reason"]


def test_out_of_memory_fails_the_trial_and_the_next_one_runs(root, monkeypatch):
    calls = []

    def run(self, max_epochs=None):
        calls.append(self.exp.exp_dir.name)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, max_epochs)

    original = Trainer.run
    monkeypatch.setattr(Trainer, "run", run)
    _write_study(root, "oom", _lr_space(1e-4))
    first, second = _run(root, "oom").get_trials()
    assert calls == ["trial_0", "trial_1"]
    assert first.state == TrialState.FAIL
    assert first.user_attrs["fail_reason"].startswith("out of memory")
    assert second.state == TrialState.COMPLETE


def test_unexpected_error_fails_the_trial_and_stops_the_worker(root, monkeypatch):
    def broken(self, max_epochs=None):
        raise KeyError("bug")

    monkeypatch.setattr(Trainer, "run", broken)
    _write_study(root, "bug", _lr_space(1e-4))
    with pytest.raises(KeyError):
        _run(root, "bug")
    layout = Layout(root)
    (trial,) = open_study(load_study("bug", layout)[0], "bug", layout).get_trials()
    assert trial.state == TrialState.FAIL and "KeyError" in trial.user_attrs["fail_reason"]


# ---- resume --------------------------------------------------------------------------------
def test_resume_runs_only_the_missing_trials_and_fails_orphans(root):
    _write_study(root, "resume", _lr_space(1e-4), n_trials=1)
    (first,) = _run(root, "resume").get_trials()
    assert first.state == TrialState.COMPLETE
    # a worker killed mid-trial leaves a RUNNING trial behind
    layout = Layout(root)
    study = open_study(load_study("resume", layout)[0], "resume", layout)
    orphan = study.ask()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan.set_user_attr("host", HOST)
    orphan.set_user_attr("pid", dead.pid)
    _write_study(root, "resume", _lr_space(1e-4), n_trials=3)
    trials = _run(root, "resume").get_trials()
    # the orphan is failed and replaced (README): 3 counted trials plus the interrupted one
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[0].params == first.params and trials[0].value == first.value
    assert trials[0].datetime_complete == first.datetime_complete
    assert trials[1].state == TrialState.FAIL and "is gone" in trials[1].user_attrs["fail_reason"]
    assert trials[2].state == trials[3].state == TrialState.COMPLETE
    # a study holding its n_trials runs nothing more
    assert len(_run(root, "resume").get_trials()) == 4


def test_changed_trial_budget_or_base_tag_is_refused_on_resume(root):
    _write_study(root, "pinned", _lr_space(1e-4), n_trials=1)
    _run(root, "pinned")
    _write_study(root, "pinned", _lr_space(1e-4), n_trials=1, epochs_per_trial=2)
    with pytest.raises(ConfigError, match="epochs_per_trial: 1 -> 2"):
        prepare("pinned", Layout(root))
    _write_study(root, "pinned", _lr_space(1e-4), n_trials=1, base_tag="tiny2")
    write_conf(root, "tag", "tiny2", {"base": "tiny", "loss": {"pitch": 0.5}})
    with pytest.raises(ConfigError, match="loss.pitch: 1.0 -> 0.5"):
        prepare("pinned", Layout(root))


# ---- workers -------------------------------------------------------------------------------
def test_two_worker_processes_share_the_default_journal(root, capfd):
    _write_study(root, "workers", _lr_space(1e-4), n_trials=3)
    rc = tune_cli.main(["run", "--study", "workers", "--n_workers", "2", "--root", str(root)])
    err = capfd.readouterr().err
    assert rc == 0, err
    assert "locked" not in err and "Traceback" not in err
    layout = Layout(root)
    assert (study_dir(layout, "workers") / "study.journal").is_file()
    trials = open_study(load_study("workers", layout)[0], "workers", layout).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["pid"] for t in trials} != {None}
    for t in trials:
        assert (study_dir(layout, "workers") / f"trial_{t.number}" / "metrics.json").is_file()


# ---- export --------------------------------------------------------------------------------
def test_export_round_trip_reproduces_the_trial_config(mixed):
    layout = Layout(mixed)
    path, trial = export_trial("mixed", layout, "best", "tuned")
    assert path == layout.tag_conf("tuned")
    data = read_yaml(path)
    assert data["base"] == "tiny"
    assert f"trial {trial.number}" in data["note"] and "mixed" in data["note"]
    params = {k: v for k, v in flatten(data).items() if k not in ("base", "note")}
    assert params == trial.params
    exported = flatten(to_dict(load_tag("tuned", mixed)))
    folder = study_dir(layout, "mixed") / f"trial_{trial.number}"
    trained = flatten(yaml.safe_load((folder / "config.yaml").read_text()))
    assert exported.keys() == trained.keys()
    differ = {k for k in exported if exported[k] != trained[k]}
    assert differ <= set(TRIAL_ONLY_KEYS) and "note" in differ and "train.epochs" in differ


def test_export_refuses_overwrite_and_unfinished_trials(mixed):
    layout = Layout(mixed)
    export_trial("mixed", layout, 1, "tuned_1")
    with pytest.raises(UserError, match="already exists"):
        export_trial("mixed", layout, 2, "tuned_1")
    export_trial("mixed", layout, 2, "tuned_1", force=True, epochs="trial")
    assert load_tag("tuned_1", mixed).train.epochs == 1
    assert "trial 2" in load_tag("tuned_1", mixed).note
    with pytest.raises(UserError, match="FAIL"):
        export_trial("mixed", layout, 0, "from_failed")
    with pytest.raises(UserError, match="no trial 7"):
        export_trial("mixed", layout, 7, "from_missing")
    with pytest.raises(UserError, match="base tag"):
        export_trial("mixed", layout, 1, "tiny", force=True)
    assert not layout.tag_conf("from_failed").exists()


# ---- summary -------------------------------------------------------------------------------
def test_summary_lists_states_reasons_best_trials_and_writes_plots(mixed):
    layout = Layout(mixed)
    study = open_study(load_study("mixed", layout)[0], "mixed", layout, create=False)
    best = study.best_trial
    text = summarize("mixed", layout, top=2)
    assert "3 trials: 2 complete, 0 pruned, 1 failed" in text
    assert "trial 0 FAIL: diverged" in text
    table = text.split("top 2 trials:")[1].splitlines()
    assert table[1].split()[:3] == ["trial", "state", "post_mel"]
    assert table[2].split()[:2] == [str(best.number), "COMPLETE"]  # the best trial first
    assert "parameter importances" in text
    assert "optuna-dashboard" in text and "study.journal" in text
    for name in ("history.png", "intermediate.png", "importances.png"):
        png = study_dir(layout, "mixed") / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_of_a_study_that_never_ran_is_a_clear_error(root):
    _write_study(root, "never", _lr_space(1e-4))
    with pytest.raises(UserError, match="vc-tune run --study never"):
        summarize("never", Layout(root))
