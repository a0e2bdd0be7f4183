"""Records the stages leave behind, read by the stages after them and by reports.

Core layer: every reader of another stage's outputs goes through here (or
:mod:`vc_toolkit.paths`), so stages need not import each other:

* stage 0's lists: :func:`input_files`;
* a tag's frozen config: :func:`load_tag_config`, :func:`trained_tags`;
* a spk's frozen config: :func:`load_frozen_spk`;
* training history and code identity: :func:`read_history`, :func:`code_version`.
"""

from __future__ import annotations

import difflib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from vc_toolkit import __version__
from vc_toolkit.config import SpkConfig, TagConfig, build
from vc_toolkit.config.resolve import available as available_configs
from vc_toolkit.config.resolve import read_yaml
from vc_toolkit.errors import UserError
from vc_toolkit.io import read_scp
from vc_toolkit.paths import SKIP_EXP, SPLITS, Layout


def code_version() -> dict:
    """Package version and, when run from a git checkout, its commit (``+dirty`` if modified)."""
    import torch

    here = Path(__file__).resolve().parent
    info = {
        "vc_toolkit": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        if commit:
            info["commit"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def input_files(layout: Layout, spk: str) -> list[tuple[str, int]]:
    """``(path as listed, size in bytes)`` of every file in the spk's lists."""
    files = []
    for split in SPLITS:
        for side in ("src", "tgt"):
            scp = layout.data(spk) / split / f"{side}.scp"
            for path in read_scp(scp).values():
                full = layout.resolve(path)
                files.append((path, full.stat().st_size if full.is_file() else -1))
    return files


def trained_tags(layout: Layout) -> list[str]:
    """Tags under ``exp/`` that have a frozen config (``exp/optuna``, ``exp/report`` skipped)."""
    exp = layout.root / "exp"
    if not exp.is_dir():
        return []
    return sorted(
        p.name for p in exp.iterdir() if p.name not in SKIP_EXP and (p / "config.yaml").is_file()
    )


def unknown_tag(layout: Layout, tag: str) -> UserError:
    trained = trained_tags(layout)
    configured = available_configs(layout, "tag")
    close = difflib.get_close_matches(tag, trained + configured, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return UserError(
        f"unknown tag '{tag}'{hint}: no exp/{tag}/ and no conf/tag/{tag}.yaml; trained tags: "
        f"{', '.join(trained) or 'none'}; configured: {', '.join(configured) or 'none'}"
    )


def not_trained(tag: str) -> UserError:
    return UserError(
        f"tag '{tag}' has not been trained (no checkpoint in exp/{tag}/checkpoints); "
        f"train it first: ./run.sh --stage 2 --stop_stage 2 --tag {tag}"
    )


def load_tag_config(layout: Layout, tag: str) -> TagConfig:
    """The frozen resolved config ``exp/<tag>/config.yaml`` of a tag that has started training.

    Raises:
        UserError: unknown tag (lists the tags that exist) or untrained tag (gives the command).
    """
    path = layout.exp(tag) / "config.yaml"
    if not path.is_file():
        if layout.tag_conf(tag).is_file():
            raise not_trained(tag)
        raise unknown_tag(layout, tag)
    return build(TagConfig, read_yaml(path), where=str(path))


def load_frozen_spk(layout: Layout, spk: str) -> SpkConfig:
    """The frozen resolved config ``dump/<spk>/config.yaml`` of a spk that went through stage 0.

    Raises:
        UserError: the spk was never prepared (gives the command).
    """
    path = layout.dump(spk) / "config.yaml"
    if not path.is_file():
        raise UserError(
            f"spk '{spk}' has no frozen config {layout.shown(path)}; "
            f"run ./run.sh --stage 0 --stop_stage 1 --spk {spk}"
        )
    return build(SpkConfig, read_yaml(path), where=str(path))


def read_json(path: Path) -> Any:
    """The JSON document at ``path``, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError):
        return None


def read_history(exp_dir: Path) -> list[dict]:
    """Rows of ``history.jsonl`` (empty when missing).

    A last row without its newline was cut short (the disk filled up, the process was
    killed while appending it) and is left out: its epoch is redone on resume.
    """
    path = exp_dir / "history.jsonl"
    if not path.is_file():
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in text.splitlines() if line.strip()]
