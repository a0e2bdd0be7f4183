"""The README documents the configuration schema as it is."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_readme_key_tables_match_the_schema():
    out = subprocess.run(
        [sys.executable, str(REPO / "utils/sync_readme_keys.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout


def test_every_console_script_has_help():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        module = target.split(":")[0]
        out = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True
        )
        assert out.returncode == 0, f"{name}: {out.stderr[-500:]}"
        assert "usage:" in out.stdout and len(out.stdout.splitlines()) > 5, name
