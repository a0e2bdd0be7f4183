"""Pinning: freeze a resolved config next to what it produced, refuse silent changes.

The first time a spk (or tag) is used, its fully resolved config is written to
``dump/<SPK>/config.yaml`` (``exp/<TAG>/config.yaml``). Later runs compare the
current ``conf/`` file with the frozen copy; any difference other than the
free-text ``note`` is refused with a key-by-key diff unless the user passes
``--force`` (which rebuilds). A fingerprint hashes the resolved config together
with the list of input files and their sizes, so reports can show at a glance
whether two experiments saw the same data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from vc_toolkit.config.core import ConfigError, build, pinned_dict
from vc_toolkit.config.resolve import diff_configs, dump_yaml, read_yaml
from vc_toolkit.io import atomic_write_text

UNPINNED_KEYS = ("note",)


class ConfigChangedError(ConfigError):
    """The config file differs from the frozen copy of an existing run."""

    def __init__(self, message: str, diff: list[str]):
        super().__init__(message)
        self.diff = diff

    def __str__(self) -> str:
        return super().__str__() + "".join(f"\n    {line}" for line in self.diff)


def _pinned_part(cfg: Any, schema: type | None = None) -> dict:
    """The part of a config that pins a run: ``note`` and defaulted late keys left out.

    A frozen config read back as a dict is first rebuilt with ``schema`` (when it still
    builds), so keys added to the schema later compare equal to their absence.
    """
    if schema is not None and not dataclasses.is_dataclass(cfg):
        with contextlib.suppress(ConfigError):  # an old config the schema no longer reads
            cfg = build(schema, cfg)
    data = pinned_dict(cfg)
    return {k: v for k, v in data.items() if k not in UNPINNED_KEYS}


def config_hash(cfg: Any) -> str:
    """SHA-256 (16 hex digits) of the resolved config, ``note`` excluded."""
    blob = json.dumps(_pinned_part(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def files_hash(files: list[tuple[str, int]]) -> str:
    """SHA-256 (16 hex digits) of sorted ``(path, size)`` pairs."""
    blob = "\n".join(f"{p}\t{s}" for p, s in sorted(files))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprint(cfg: Any, files: list[tuple[str, int]]) -> dict:
    """Fingerprint record of a dataset version.

    Args:
        cfg: Resolved config (dataclass or dict).
        files: ``(path, size_in_bytes)`` of every input file.

    Returns:
        ``{"fingerprint", "config_hash", "files_hash", "num_files"}``.
    """
    c, f = config_hash(cfg), files_hash(files)
    return {
        "fingerprint": hashlib.sha256(f"{c}:{f}".encode()).hexdigest()[:16],
        "config_hash": c,
        "files_hash": f,
        "num_files": len(files),
    }


def check_frozen(frozen: Path, cfg: Any, source: str, force: bool, what: str) -> list[str]:
    """Compare ``cfg`` with the frozen copy at ``frozen``.

    Args:
        frozen: Path of the frozen ``config.yaml`` (may not exist yet).
        cfg: Resolved config now in ``conf/``.
        source: Name of the config file, for the message.
        force: Accept the change (the caller rebuilds).
        what: Human name of the thing pinned, e.g. ``"spk 'demo'"``.

    Returns:
        The diff lines (empty when unchanged or nothing was frozen yet).

    Raises:
        ConfigChangedError: the config changed and ``force`` is false.
    """
    if not frozen.is_file():
        return []
    schema = type(cfg) if dataclasses.is_dataclass(cfg) else None
    diff = diff_configs(_pinned_part(read_yaml(frozen), schema), _pinned_part(cfg))
    if diff and not force:
        raise ConfigChangedError(
            f"{source} changed since {what} was frozen in {frozen}; "
            f"make a new {what.split()[0]} for the new settings, or pass --force to rebuild:",
            diff,
        )
    return diff


def freeze(frozen: Path, cfg: Any, header: str, extra: dict | None = None) -> None:
    """Write the frozen config (and, with ``extra``, a ``fingerprint.json`` beside it)."""
    dump_yaml(cfg, frozen, header=header)
    if extra is not None:
        atomic_write_text(frozen.with_name("fingerprint.json"), json.dumps(extra, indent=2) + "\n")


def read_fingerprint(directory: Path) -> dict | None:
    """The ``fingerprint.json`` in ``directory``, or ``None``."""
    path = directory / "fingerprint.json"
    return json.loads(path.read_text()) if path.is_file() else None
