"""A full disk stops a stage with one line, and the same command continues once space is freed.

The disk is simulated: writes start failing with ``ENOSPC`` after a budget, the way a
real full file system fails them (part of the file written, then the error).
"""

from __future__ import annotations

import errno
import logging

import numpy as np
import pytest
import torch
from conftest import TINY_TAG, copy_root, write_conf

from vc_toolkit import io as vc_io
from vc_toolkit.bin import preprocess as preprocess_cli
from vc_toolkit.bin import train as train_cli

FULL = "error: no space left on device while writing "


@pytest.fixture(autouse=True)
def _console_logging_restored():
    """The entry points point logging at the (captured) stderr; later tests log elsewhere."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err and "inline_container" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("nj", [1, 2])
def test_stage1_disk_full_is_one_line_and_a_rerun_finishes(
    tiny_root, tmp_path, monkeypatch, capsys, nj
):
    root = copy_root(tiny_root, tmp_path)
    savez, budget = np.savez, {"left": 4}

    def filling_savez(file, *args, **kwargs):
        if budget["left"] <= 0:
            file.write(b"PK\x03\x04 half a feature file")
            raise _disk_full()
        budget["left"] -= 1
        return savez(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", filling_savez)
    argv = ["--spk", "tiny", "--root", str(root), "--nj", str(nj)]
    assert preprocess_cli.main(argv) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(FULL + "dump/tiny/raw/") and "nothing finished was lost" in line
    raw = root / "dump/tiny/raw"
    done = {p.name: p.stat().st_mtime_ns for p in raw.glob("*.npz")}
    assert len(done) == 4 if nj == 1 else 4 <= len(done) < 10  # each worker has its own budget
    assert not [p for p in raw.iterdir() if p.suffix not in (".npz", ".bad")]  # no half files

    monkeypatch.setattr(np, "savez", savez)  # space freed
    assert preprocess_cli.main(argv) == 0
    assert {p: raw.joinpath(p).stat().st_mtime_ns for p in done} == done  # not redone
    assert len(list(raw.glob("*.npz"))) == 10
    assert '"complete": true' in (root / "dump/tiny/features.json").read_text()


class _FillingFile:
    """A binary file that accepts ``budget["bytes"]`` more bytes, then fails like a full disk."""

    def __init__(self, f, budget: dict):
        self._f, self._budget = f, budget

    def write(self, data) -> int:
        n = len(memoryview(data).cast("B"))
        if n > self._budget["bytes"]:
            self._f.write(bytes(memoryview(data).cast("B")[: self._budget["bytes"]]))
            self._budget["bytes"] = 0
            raise _disk_full()
        self._budget["bytes"] -= n
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def test_stage2_disk_full_while_saving_a_checkpoint_is_one_line_and_resumes(
    tiny_features_root, tmp_path, monkeypatch, capsys
):
    root = copy_root(tiny_features_root, tmp_path)
    write_conf(root, "tag", "t", TINY_TAG)
    real_open = open
    checkpoints: list[str] = []

    def filling_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if ".pt." in str(path) and "w" in mode:
            checkpoints.append(str(path))
            if len(checkpoints) > 3:  # epoch 1 saved latest, best, epoch1; epoch 2 fills the disk
                return _FillingFile(f, {"bytes": 5000})
        return f

    monkeypatch.setattr(vc_io, "open", filling_open, raising=False)
    argv = ["--tag", "t", "--root", str(root), "--device", "cpu"]
    assert train_cli.main(argv) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(FULL + "exp/t/checkpoints/") and "nothing finished was lost" in line
    folder = root / "exp/t/checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "epoch1.pt", "latest.pt"]
    assert torch.load(folder / "latest.pt", weights_only=False)["epoch"] == 1

    monkeypatch.undo()  # space freed
    assert train_cli.main(argv) == 0
    assert "resuming from" in capsys.readouterr().err
    assert torch.load(folder / "latest.pt", weights_only=False)["epoch"] == 2
    history = (root / "exp/t/history.jsonl").read_text()
    assert history.count('"epoch": 1') == 1 and history.count('"epoch": 2') == 1


@pytest.mark.parametrize("partial", [True, False])
def test_a_history_row_cut_by_a_full_disk_is_ignored(tmp_path, partial):
    from vc_toolkit.records import read_history

    path = tmp_path / "history.jsonl"
    path.write_text('{"epoch": 1}\n' + ('{"epoch": 2, "tr' if partial else '{"epoch": 2}\n'))
    assert [r["epoch"] for r in read_history(tmp_path)] == ([1] if partial else [1, 2])
