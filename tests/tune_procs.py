"""Helpers of the Optuna tests that start real ``vc-tune`` processes (separate workers)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import write_conf

from vc_toolkit.paths import Layout
from vc_toolkit.tune.study import load_study, open_study

LR = "train.scheduler.peak_lr"


def write_study(root: Path, name: str, space: dict, **changes) -> None:
    """``conf/optuna/<name>.yaml`` over tag 'tiny': one epoch per trial, no pruner, CPU."""
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


def space() -> dict:
    """Two continuous parameters: every proposal is a new point."""
    return {
        LR: {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "loss.pitch": {"type": "float", "low": 0.3, "high": 3.0},
    }


def tune_cmd(root: Path | str, study: str, *extra: str, command: str = "run") -> list[str]:
    """The ``vc-tune`` command line (this interpreter, this checkout's package)."""
    return [
        sys.executable,
        "-m",
        "vc_toolkit.bin.tune",
        command,
        "--study",
        study,
        "--root",
        str(root),
        *extra,
    ]


def start(root: Path, study: str, *extra: str) -> subprocess.Popen:
    """Start ``vc-tune run`` as a separate process (as another shell or machine would)."""
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        tune_cmd(root, study, *extra),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for ``proc``; its stderr (the log). Fails the test when it did not exit 0."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"vc-tune exited {proc.returncode}:\n{err}\n{out}"
    return err


def started(log: str) -> set[int]:
    """Numbers of the trials a worker's log says it started."""
    return {int(n) for n in re.findall(r"trial (\d+) started", log)}


def trials(root: Path, name: str) -> list:
    """The study's trials, read back from its storage."""
    layout = Layout(root)
    return open_study(load_study(name, layout)[0], name, layout, create=False).get_trials()
