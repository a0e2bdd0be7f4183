"""Optuna workers started as separate processes: sampling, creating a study, killed workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import optuna
import pytest
from conftest import TINY_TAG, copy_root, write_conf
from optuna.trial import TrialState
from tune_procs import finish, space, start, started, trials, write_study

from vc_toolkit.bin import tune as tune_cli
from vc_toolkit.paths import Layout
from vc_toolkit.tune.objective import prepare, work
from vc_toolkit.tune.study import study_dir
from vc_toolkit.tune.summary import summarize


@pytest.fixture(scope="module")
def root(tiny_features_root, tmp_path_factory):
    """A private recipe root with tag 'tiny' (features built)."""
    root = copy_root(tiny_features_root, tmp_path_factory.mktemp("tune_workers"))
    write_conf(root, "tag", "tiny", TINY_TAG)
    return root


def _params(trial) -> tuple:
    return tuple(sorted(trial.params.items()))


def test_separately_started_workers_never_sample_the_same_parameters(root):
    tpe = {"type": "tpe", "seed": 0}
    write_study(root, "twins", space(), n_trials=8, epochs_per_trial=2, sampler=tpe)
    procs = [start(root, "twins") for _ in range(2)]
    logs = [finish(p) for p in procs]
    found = sorted(trials(root, "twins"), key=lambda t: t.number)
    assert [t.number for t in found] == list(range(8))
    assert all(t.state == TrialState.COMPLETE for t in found)
    assert len({_params(t) for t in found}) == 8
    ran = [started(log) for log in logs]
    assert ran[0] and ran[1] and not ran[0] & ran[1]  # both worked; no trial ran twice
    # the study stays reproducible from its seed: a single worker proposes the same trials
    write_study(root, "solo", space(), n_trials=8, epochs_per_trial=2, sampler=tpe)
    work(prepare("solo", Layout(root)))
    solo = sorted(trials(root, "solo"), key=lambda t: t.number)
    assert [t.params for t in solo] == [t.params for t in found]


_CREATE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from vc_toolkit.paths import Layout
    from vc_toolkit.tune.objective import prepare

    root, start, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    for r in range(rounds):
        time.sleep(max(0.0, start + r - time.time()))
        prepare(f"lite{r}", Layout(Path(root)))
    """
)


def test_processes_creating_one_sqlite_study_at_once_do_not_race(root):
    rounds = 3
    for r in range(rounds):
        write_study(root, f"lite{r}", space(), storage=f"sqlite:///{root}/lite{r}.db")
    begin = time.time() + 8  # every process has imported torch and optuna by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATE, str(root), str(begin), str(rounds)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    for r in range(rounds):
        studies = optuna.get_all_study_summaries(f"sqlite:///{root}/lite{r}.db")
        assert [s.study_name for s in studies] == [f"lite{r}"]
        assert "pinned" in studies[0].user_attrs


def test_a_worker_killed_mid_trial_is_replaced_on_the_rerun(root, capfd):
    write_study(root, "killed", space(), n_trials=2, epochs_per_trial=4)
    proc = start(root, "killed")
    marker = study_dir(Layout(root), "killed") / "trial_0" / "config.yaml"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert marker.exists(), proc.communicate()[1]
    os.kill(proc.pid, signal.SIGKILL)  # mid-trial: the trial stays RUNNING in the storage
    proc.communicate()
    (orphan,) = trials(root, "killed")
    assert orphan.state == TrialState.RUNNING

    assert tune_cli.main(["run", "--study", "killed", "--root", str(root)]) == 0
    capfd.readouterr()
    found = trials(root, "killed")
    assert [t.number for t in found] == [0, 1, 2]  # n_trials 2 + the replaced one
    assert found[0].state == TrialState.FAIL
    assert found[0].user_attrs["fail_reason"].startswith("interrupted: its worker")
    assert [t.state for t in found[1:]] == [TrialState.COMPLETE, TrialState.COMPLETE]
    text = summarize("killed", Layout(root), plots=False)
    assert "3 trials: 2 complete, 0 pruned, 1 failed, 0 running" in text
    assert "1 of the failed was interrupted and replaced" in text
    # a study holding its n_trials (interrupted ones not counted) runs nothing more
    assert tune_cli.main(["run", "--study", "killed", "--root", str(root)]) == 0
    assert len(trials(root, "killed")) == 3
