"""Records the stages leave behind, read by the stages after them and by reports.

Core layer: every reader of another stage's outputs goes through here (or
:mod:`vc_toolkit.paths`), so stages need not import each other:

* stage 0's lists and the input audio they name: :func:`input_files`, :func:`check_inputs`
  (content hashes against the frozen fingerprint), :func:`new_corpus_files`;
* a tag's frozen config: :func:`load_tag_config`, :func:`trained_tags`;
* a spk's frozen config: :func:`load_frozen_spk`;
* training history and code identity: :func:`read_history`, :func:`code_version`.
"""

from __future__ import annotations

import difflib
import json
import platform
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vc_toolkit import __version__, log
from vc_toolkit.config import SpkConfig, TagConfig, build
from vc_toolkit.config.pin import input_changes, record_content
from vc_toolkit.config.resolve import available as available_configs
from vc_toolkit.config.resolve import read_yaml
from vc_toolkit.errors import UserError
from vc_toolkit.io import atomic_write_text, file_digests, read_scp
from vc_toolkit.paths import SKIP_EXP, SPLITS, Layout

logger = log.get("inputs")
INPUT_HASHES = "input_hashes.json"
"""Cache of the input files' content hashes, in ``dump/<SPK>/``."""
CORPUS_FILES = "corpus.json"
"""What stage 0 found under the corpus folders, in ``data/<SPK>/``."""
TEXT_FILE = "text"
"""The frozen transcripts of a text spk's split, ``data/<SPK>/<split>/text``."""


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


@dataclass
class Inputs:
    """The input files of a spk now, checked against its frozen fingerprint.

    Attributes:
        files (list[tuple[str, int]]): ``(path as listed, size)``; size -1 when missing.
        digests (dict[str, str]): ``{path as listed: SHA-256 of its content}`` (existing files).
        changes (str): what changed since the spk was frozen, one phrase ("" if nothing).
        fingerprint (dict): the frozen record (content added if it had none).
    """

    files: list[tuple[str, int]]
    digests: dict[str, str]
    changes: str
    fingerprint: dict


def input_digests(layout: Layout, spk: str, files: list[tuple[str, int]]) -> dict[str, str]:
    """SHA-256 of the content of every listed file that exists (cached, see :func:`file_digests`).

    The cache is ``dump/<spk>/input_hashes.json``: a file is hashed once, and again only
    when its size, modification time or inode change.
    """
    paths = {p: layout.resolve(p) for p, _ in files}
    return file_digests(paths, layout.dump(spk) / INPUT_HASHES)


def check_inputs(layout: Layout, spk: str, fp: dict, force: bool = False) -> Inputs:
    """Compare the spk's input files with the fingerprint it was frozen with.

    A fingerprint without content hashes (frozen by an older version) is compared by
    paths and sizes, and, when those match, gets the content recorded for next time
    (its fingerprint unchanged). New files under the corpus folders are logged as a
    warning (:func:`new_corpus_files`).

    Args:
        layout: Recipe root.
        spk: The dataset version.
        fp: Its frozen fingerprint record (``dump/<spk>/fingerprint.json``).
        force: Accept changes (the caller rebuilds and re-freezes).

    Raises:
        UserError: files changed, were added or removed, and ``force`` is false; the
            message names them.
    """
    files = input_files(layout, spk)
    digests = input_digests(layout, spk, files)
    changes = input_changes(fp, files, digests)
    if changes and not force:
        raise UserError(
            f"the input audio of spk '{spk}' changed since it was frozen ({changes}); "
            "make a new spk for the new data, or pass --force to rebuild"
        )
    if not changes and "content" not in fp:
        fp = record_content(layout.dump(spk), fp, digests)
        logger.info(
            "recorded the content hashes of the %d input files of spk '%s'", len(files), spk
        )
    new = new_corpus_files(layout, spk)
    if new:
        logger.warning(
            "%d new files under the corpus folders of spk '%s' since stage 0, not in its lists: "
            "%s; make a new spk to use them",
            len(new),
            spk,
            ", ".join(new[:10]) + (f", ... ({len(new) - 10} more)" if len(new) > 10 else ""),
        )
    return Inputs(files, digests, changes, fp)


def record_corpus_files(
    layout: Layout, spk: str, roots: list[tuple[Path, str]], files: Iterable[Path]
) -> None:
    """Write ``data/<spk>/corpus.json``: the folders stage 0 searched and the files it found.

    Args:
        layout: Recipe root.
        spk: The dataset version.
        roots: ``(folder, glob pattern)`` searched recursively by the corpus recipe (none
            for generated corpora).
        files: Every file found there (paired or not).
    """
    record = {
        "roots": [[layout.shown(folder), pattern] for folder, pattern in roots],
        "files": sorted({layout.shown(f) for f in files}),
    }
    atomic_write_text(layout.data(spk) / CORPUS_FILES, json.dumps(record, indent=1) + "\n")


def new_corpus_files(layout: Layout, spk: str) -> list[str]:
    """Files under the corpus folders of the spk that stage 0 did not find there (shown paths).

    Empty when stage 0 recorded no folders (a generated corpus, or a spk prepared
    before the record existed).
    """
    record = read_json(layout.data(spk) / CORPUS_FILES)
    if not isinstance(record, dict):
        return []
    known = set(record.get("files", []))
    found = set()
    for folder, pattern in record.get("roots", []):
        root = layout.resolve(folder)
        if root.is_dir():
            found.update(layout.shown(p) for p in root.rglob(pattern) if p.is_file())
    return sorted(found - known)


def input_files(layout: Layout, spk: str) -> list[tuple[str, int]]:
    """``(path as listed, size in bytes)`` of every file in the spk's lists.

    A text spk lists only recordings (``tgt.scp``); its frozen transcripts
    (``data/<spk>/<split>/text``) count as input files too, so they are fingerprinted.
    """
    files = []
    for split in SPLITS:
        folder = layout.data(spk) / split
        text = folder / TEXT_FILE
        for side in ("src", "tgt"):
            scp = folder / f"{side}.scp"
            if side == "src" and text.is_file() and not scp.is_file():
                continue
            for path in read_scp(scp).values():
                full = layout.resolve(path)
                files.append((path, full.stat().st_size if full.is_file() else -1))
        if text.is_file():
            files.append((layout.shown(text), text.stat().st_size))
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
