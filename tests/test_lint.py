"""The one lint command (ruff) covers every tracked Python file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


def _tracked_python() -> set[Path]:
    out = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return {(REPO / line).resolve() for line in out.stdout.splitlines() if line}


def test_ruff_sees_every_tracked_python_file():
    shown = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--show-files", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = {Path(line.strip()).resolve() for line in shown.splitlines() if line.endswith(".py")}
    missing = sorted(str(p.relative_to(REPO)) for p in _tracked_python() - seen)
    assert not missing, f"ruff skips tracked files: {missing}"
