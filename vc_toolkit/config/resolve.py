"""Load spk/tag/voc configs from ``conf/``: YAML, ``base:`` inheritance, model presets.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "conf" / "spk").mkdir(parents=True)
    >>> _ = (root / "conf/spk/a.yaml").write_text("corpus: {name: demo}\\nsample_rate: 16000\\n")
    >>> _ = (root / "conf/spk/b.yaml").write_text("base: a\\ntrim: {silence_thresh_t: -60}\\n")
    >>> cfg = load_spk("b", root)
    >>> cfg.sample_rate, cfg.trim.silence_thresh_t
    (16000, -60.0)
"""

from __future__ import annotations

import contextlib
import copy
import difflib
from pathlib import Path
from typing import Any

import yaml

from vc_toolkit.config.core import ConfigError, build, to_dict
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.config.tag import TagConfig
from vc_toolkit.config.voc import VocConfig
from vc_toolkit.paths import Layout


def read_yaml(path: Path) -> dict:
    """Parse a YAML mapping; syntax errors become one-line :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (lists are replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def available(layout: Layout, kind: str) -> list[str]:
    """Names of the configs of one kind (``spk``, ``tag``, ``model``, ``optuna``)."""
    folder = layout.conf / kind
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def config_path(layout: Layout, kind: str, name: str) -> Path:
    """Path of ``conf/<kind>/<name>.yaml``; a missing one lists what exists."""
    path = layout.conf / kind / f"{name}.yaml"
    if not path.is_file():
        names = available(layout, kind)
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        listing = ", ".join(names) if names else "none"
        raise ConfigError(
            f"unknown {kind} '{name}': {layout.shown(path)} not found{hint}; available: {listing}"
        )
    return path


def load_raw(
    layout: Layout, kind: str, name: str, _seen: tuple[str, ...] = ()
) -> tuple[dict, list[Path]]:
    """Load ``conf/<kind>/<name>.yaml`` with its ``base:`` chain merged in.

    Returns:
        ``(merged_dict_without_base, files)`` where ``files`` lists the chain,
        the named file last.
    """
    if name in _seen:
        chain = " -> ".join((*_seen, name))
        raise ConfigError(f"conf/{kind}: 'base' inheritance has a cycle: {chain}")
    path = config_path(layout, kind, name)
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data, [path]
    if not isinstance(base, str):
        raise ConfigError(f"{path}: key 'base' must be the name of another {kind}, got {base!r}")
    parent, files = load_raw(layout, kind, base, (*_seen, name))
    return deep_merge(parent, data), [*files, path]


def _apply_preset(layout: Layout, data: dict, where: Path) -> dict:
    model = data.get("model")
    if not isinstance(model, dict) or not model.get("preset"):
        return data
    preset = model["preset"]
    if not isinstance(preset, str):
        raise ConfigError(f"{where}: key 'model.preset' must be a preset name, got {preset!r}")
    preset_data, _ = load_raw(layout, "model", preset)
    preset_data.pop("preset", None)
    data = dict(data)
    data["model"] = deep_merge(preset_data, model)
    return data


def load_spk(name: str, root: str | Path | None = None) -> SpkConfig:
    """Resolved, validated spk config ``conf/spk/<name>.yaml``."""
    layout = Layout.from_env(root)
    data, files = load_raw(layout, "spk", name)
    return build(SpkConfig, data, where=_where(files))


def load_tag(name: str, root: str | Path | None = None) -> TagConfig:
    """Resolved, validated tag config ``conf/tag/<name>.yaml`` (bases and preset applied)."""
    layout = Layout.from_env(root)
    data, files = load_raw(layout, "tag", name)
    data = _apply_preset(layout, data, files[-1])
    return build(TagConfig, data, where=_where(files))


def load_voc(name: str, root: str | Path | None = None) -> VocConfig:
    """Resolved, validated vocoder config ``conf/voc/<name>.yaml`` (bases applied)."""
    layout = Layout.from_env(root)
    data, files = load_raw(layout, "voc", name)
    return build(VocConfig, data, where=_where(files))


def _where(files: list[Path]) -> str:
    named = files[-1]
    with contextlib.suppress(ValueError):
        named = named.relative_to(Path.cwd())
    if len(files) == 1:
        return str(named)
    return f"{named} (with base {', '.join(p.stem for p in files[:-1])})"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dict → ``{"a.b.c": leaf}`` (lists are leaves)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, full))
        else:
            out[full] = value
    return out


def diff_configs(old: Any, new: Any) -> list[str]:
    """Key-by-key differences between two resolved configs (dataclasses or dicts).

    Returns:
        Lines like ``"trim.silence_thresh_t: -100.0 -> -60.0"``; empty if equal.
    """
    a = flatten(to_dict(old) if not isinstance(old, dict) else old)
    b = flatten(to_dict(new) if not isinstance(new, dict) else new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            lines.append(f"{key}: (absent) -> {b[key]!r}")
        elif key not in b:
            lines.append(f"{key}: {a[key]!r} -> (absent)")
        elif a[key] != b[key]:
            lines.append(f"{key}: {a[key]!r} -> {b[key]!r}")
    return lines


def dump_yaml(data: Any, path: Path, header: str = "") -> None:
    """Write a resolved config as YAML (atomic: temp file + rename)."""
    from vc_toolkit.io import atomic_write_text

    text = yaml.safe_dump(
        to_dict(data), sort_keys=False, allow_unicode=True, default_flow_style=None
    )
    atomic_write_text(path, (header + "\n" if header else "") + text)
