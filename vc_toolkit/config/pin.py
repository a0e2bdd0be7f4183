"""Pinning: freeze a resolved config next to what it produced, refuse silent changes.

The first time a spk (or tag) is used, its fully resolved config is written to
``dump/<SPK>/config.yaml`` (``exp/<TAG>/config.yaml``). Later runs compare the
current ``conf/`` file with the frozen copy; any difference other than the
free-text ``note`` is refused with a key-by-key diff unless the user passes
``--force`` (which rebuilds). A fingerprint hashes the resolved config together
with the list of input files, their sizes and (since content hashes were
added) a SHA-256 of each file's content, so reports can show at a glance whether
two experiments saw the same data, and a file changed in place is noticed.

Spks frozen before content hashes have a size-only fingerprint; their content is
recorded beside it at their next run (:func:`record_content`) without changing the
fingerprint, and compared from then on (:func:`input_changes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
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


def content_hash(digests: dict[str, str]) -> str:
    """SHA-256 (16 hex digits) of sorted ``(path, content digest)`` pairs."""
    blob = "\n".join(f"{p}\t{d}" for p, d in sorted(digests.items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprint(
    cfg: Any, files: list[tuple[str, int]], digests: dict[str, str] | None = None
) -> dict:
    """Fingerprint record of a dataset version.

    Args:
        cfg: Resolved config (dataclass or dict).
        files: ``(path, size_in_bytes)`` of every input file.
        digests: ``{path: SHA-256 of its content}`` of every input file; recorded (and part
            of the fingerprint) when given.

    Returns:
        ``{"fingerprint", "config_hash", "files_hash", "num_files"}``, plus
        ``"content_hash"`` and ``"content"`` (the digests) with ``digests``.
    """
    c, f = config_hash(cfg), files_hash(files)
    parts = f"{c}:{f}" if digests is None else f"{c}:{f}:{content_hash(digests)}"
    fp = {
        "fingerprint": hashlib.sha256(parts.encode()).hexdigest()[:16],
        "config_hash": c,
        "files_hash": f,
        "num_files": len(files),
    }
    if digests is not None:
        fp.update(content_hash=content_hash(digests), content=dict(sorted(digests.items())))
    return fp


def input_changes(fp: dict, files: list[tuple[str, int]], digests: dict[str, str]) -> str:
    """What changed in the input files since ``fp`` was frozen, as one phrase ("" if nothing).

    With content recorded, the changed, added and removed files are named; a fingerprint
    without content (frozen by an older version) can only tell that sizes or files differ.

    Args:
        fp: The frozen fingerprint record.
        files: ``(path, size)`` of the files the lists name now (size -1: missing).
        digests: ``{path: content digest}`` of those that exist.

    Example:
        >>> fp = fingerprint({}, [("a", 1), ("b", 1)], {"a": "1", "b": "2"})
        >>> input_changes(fp, [("a", 1), ("c", 1)], {"a": "9", "c": "3"})
        '1 changed: a; 1 added: c; 1 removed: b'
    """
    if "content" not in fp:
        if files_hash(files) == fp["files_hash"]:
            return ""
        missing = [p for p, size in files if size < 0]
        return f"{len(missing)} missing, e.g. {missing[0]}" if missing else "sizes differ"
    old: dict[str, str] = fp["content"]
    now = {p for p, _ in files}
    groups = (
        ("changed", [p for p in sorted(now & old.keys()) if p in digests and digests[p] != old[p]]),
        ("added", sorted(now - old.keys())),
        ("removed", sorted((old.keys() - now) | {p for p in now & old.keys() if p not in digests})),
    )
    return "; ".join(f"{len(names)} {what}: {_some(names)}" for what, names in groups if names)


def _some(names: list[str], shown: int = 5) -> str:
    more = f", ... ({len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def record_content(directory: Path, fp: dict, digests: dict[str, str]) -> dict:
    """Add content hashes to a fingerprint frozen without them; the fingerprint stays.

    Args:
        directory: Where its ``fingerprint.json`` is.
        fp: The frozen record (without ``content``).
        digests: ``{path: content digest}`` of the input files as they are now.

    Returns:
        The record written.
    """
    fp = {
        **fp,
        "content_hash": content_hash(digests),
        "content": dict(sorted(digests.items())),
        "content_recorded_at": dt.datetime.now().isoformat("T", "seconds"),
    }
    atomic_write_text(directory / "fingerprint.json", json.dumps(fp, indent=2) + "\n")
    return fp


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
