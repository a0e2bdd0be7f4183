"""Optuna on a real PostgreSQL server: one study, two workers on two "machines".

The fixture starts a throw-away server (the Debian ``postgresql`` package's ``initdb`` and
``pg_ctl``, as the ``postgres`` user when the tests run as root) on 127.0.0.1 and a free
port, and stops it at the end. Each worker is a separately started ``vc-tune run`` with
its own recipe root, as on two machines that share only the database.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY_TAG, copy_root, write_conf
from optuna.trial import TrialState
from tune_procs import finish, space, start, started, trials, write_study

from vc_toolkit.bin import tune as tune_cli
from vc_toolkit.paths import Layout
from vc_toolkit.tune.study import study_dir

INSTALL = "install the Debian package postgresql (./test.sh does: apt-get install postgresql)"


def _bindir() -> Path | None:
    """``/usr/lib/postgresql/<newest version>/bin`` holding initdb and pg_ctl, if installed."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    found.sort(key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """URL of database ``vc_tune`` on a throw-away PostgreSQL server (stopped afterwards)."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip(f"PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; {INSTALL}")
    try:
        import psycopg
    except ImportError:
        pytest.fail("the pinned PostgreSQL driver psycopg is not installed: run utils/install.sh")
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="vc_pg_"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(f"running as root and there is no 'postgres' user; {INSTALL}")
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]

    def pg(tool: str, *args: str) -> None:
        cmd = [*prefix, str(bindir / tool), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=base)
        assert out.returncode == 0, f"{tool} failed: {out.stderr}{out.stdout}"

    data, port = base / "data", _free_port()
    pg("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-F -c listen_addresses=127.0.0.1 -p {port} -k {base}"
    pg("pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-w", "-o", options, "start")
    try:
        server = f"postgresql://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE vc_tune")
        yield f"{server}/vc_tune"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _machine(tiny_features_root: Path, base: Path, url: str) -> Path:
    """A recipe root of one machine: the tiny tag and features, and study 'pg' in ``url``."""
    root = copy_root(tiny_features_root, base)
    write_conf(root, "tag", "tiny", TINY_TAG)
    tpe = {"type": "tpe", "seed": 0}
    write_study(root, "pg", space(), n_trials=6, epochs_per_trial=1, sampler=tpe, storage=url)
    return root


def test_one_study_on_postgresql_from_two_machines(postgres, tiny_features_root, tmp_path, capsys):
    roots = [_machine(tiny_features_root, tmp_path / m, postgres) for m in ("a", "b")]
    procs = [start(root, "pg") for root in roots]
    logs = [finish(proc) for proc in procs]

    found = trials(roots[0], "pg")
    # no lost or duplicated trials: exactly n_trials, numbered 0..5, each run by one worker
    assert sorted(t.number for t in found) == list(range(6))
    assert len({t._trial_id for t in found}) == 6
    assert all(t.state == TrialState.COMPLETE for t in found)
    ran = [started(log) for log in logs]
    assert not ran[0] & ran[1] and ran[0] | ran[1] == set(range(6))
    for root, numbers in zip(roots, ran):
        folders = {int(p.name.split("_")[1]) for p in study_dir(Layout(root), "pg").glob("trial_*")}
        assert folders == numbers
    # no parameter set sampled twice
    assert len({tuple(sorted(t.params.items())) for t in found}) == 6

    # vc-tune summary shows what the database holds
    capsys.readouterr()
    assert tune_cli.main(["summary", "--study", "pg", "--root", str(roots[1]), "--no_plots"]) == 0
    text = capsys.readouterr().out
    assert "6 trials: 6 complete, 0 pruned, 0 failed, 0 running" in text
    rows = text.split("top 6 trials:\n")[1].split("\n\n")[0].splitlines()[1:]
    by_number = {t.number: t for t in found}
    assert len(rows) == 6
    for row in rows:
        number, state, value, epochs, lr, pitch = row.split()
        t = by_number[int(number)]
        assert (state, value, epochs) == (t.state.name, f"{t.value:.4g}", "1")
        assert lr == f"{t.params['train.scheduler.peak_lr']:.4g}"
        assert pitch == f"{t.params['loss.pitch']:.4g}"
    best = min(found, key=lambda t: t.value)
    assert rows[0].split()[0] == str(best.number)
    assert "postgresql://postgres@127.0.0.1" in text  # the dashboard line names the storage
