"""Strict, typed configuration: dataclass schemas built from plain dicts.

Every config in the toolkit (spk, tag, optuna study) is a tree of dataclasses.
:func:`build` turns a nested dict (from YAML) into that tree and refuses
anything it does not understand: an unknown key names the closest valid key, a
wrong type names the expected type, and a value outside its documented range
names the range. Nothing silently falls back to a default.

Field constraints and help text live in ``dataclasses.field(metadata=...)``
(see :func:`opt`), so the schema is also the documentation
(``vc-config keys``).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(kw_only=True)
    ... class Train:
    ...     batch_size: int = opt(16, "utterances per step", min=1)
    >>> build(Train, {"batch_size": 8}).batch_size
    8
    >>> try:
    ...     build(Train, {"batch_sise": 8}, where="t.yaml")
    ... except ConfigError as err:
    ...     print(err)
    t.yaml: unknown key 'batch_sise' (did you mean 'batch_size'?)
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from vc_toolkit.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A configuration problem, reported as one line that says what and where."""


def opt(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    min: float | None = None,
    max: float | None = None,
    factory: Any = dataclasses.MISSING,
    **extra: Any,
) -> Any:
    """Declare a config field with help text and an optional numeric range.

    Args:
        default: Default value (immutable). Use ``factory`` for lists/dicts/dataclasses.
        help: One-line description, shown by ``vc-config keys``.
        min: Smallest allowed value (inclusive).
        max: Largest allowed value (inclusive).
        factory: Zero-argument callable producing the default.
        **extra: Further metadata for code that reads the schema (e.g. ``term="gmm"``: the
            loss term a weight applies to); ``build`` ignores it.

    Returns:
        A ``dataclasses.field``.

    Example:
        >>> f = opt(0.01, "weight", min=0, term="gmm")
        >>> f.metadata["term"], f.metadata["min"]
        ('gmm', 0)
    """
    meta = {"help": help, "min": min, "max": max, **extra}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def sub(cls: type, help: str = "") -> Any:
    """A nested dataclass field defaulting to ``cls()``."""
    return opt(factory=cls, help=help)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of {_type_name(get_args(tp)[1])}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


def _closest(key: str, valid: list[str], prefix: str = "", values: bool = False) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if match:
        return f" (did you mean '{_join(prefix, match[0])}'?)"
    if values:
        return ""
    return f" (valid keys{' under ' + repr(prefix) if prefix else ''}: {', '.join(valid)})"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _convert(tp: Any, value: Any, key: str, where: str) -> Any:
    """Check ``value`` against annotation ``tp`` and convert it (dicts → dataclasses)."""
    origin = get_origin(tp)
    fail = ConfigError(f"{where}: key '{key}' must be {_type_name(tp)}, got {_describe(value)}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise fail
        tagged = [o for o in options if dataclasses.is_dataclass(o)]
        if len(tagged) > 1 and isinstance(value, Mapping):
            return _build_tagged(tagged, value, key, where)
        for option in options:
            if option is type(None):
                continue
            if dataclasses.is_dataclass(option) and isinstance(value, Mapping):
                return _convert(option, value, key, where)  # its own errors are the precise ones
            try:
                return _convert(option, value, key, where)
            except ConfigError:
                continue
        raise fail
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if value == choice and type(value) is type(choice):
                return choice
        raise ConfigError(
            f"{where}: key '{key}' must be one of {', '.join(repr(c) for c in choices)}, "
            f"got {value!r}"
            + (
                _closest(str(value), [str(c) for c in choices], values=True)
                if isinstance(value, str)
                else " (quote it in YAML)"
                if str(value) in [str(c) for c in choices]
                else ""
            )
        )
    if origin is list:
        if not isinstance(value, list | tuple):
            raise fail
        (item_tp,) = get_args(tp)
        return [_convert(item_tp, v, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise fail
        key_tp, val_tp = get_args(tp)
        return {
            _convert(key_tp, k, key, where): _convert(val_tp, v, _join(key, k), where)
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise fail
        return build(tp, value, where=where, prefix=key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise fail
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail
    raise ConfigError(f"{where}: key '{key}' has an unsupported schema type {tp!r}")


def _build_tagged(options: list[type], value: Mapping, key: str, where: str) -> Any:
    """Build one of several dataclasses chosen by their ``name`` Literal field."""
    by_name = {}
    for option in options:
        hints = typing.get_type_hints(option)
        for name in get_args(hints["name"]):
            by_name[name] = option
    name = value.get("name")
    if name not in by_name:
        raise ConfigError(
            f"{where}: key '{_join(key, 'name')}' must be one of "
            f"{', '.join(repr(n) for n in by_name)}, got {name!r}"
            + (_closest(str(name), list(by_name), values=True) if isinstance(name, str) else "")
        )
    return build(by_name[name], value, where=where, prefix=key)


def build(cls: type[T], data: Mapping | None, where: str = "<config>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, strictly.

    Args:
        cls: Dataclass type describing the schema.
        data: Nested mapping (e.g. parsed YAML). ``None`` means "all defaults".
        where: File name (or other origin) used in error messages.
        prefix: Dotted key of ``data`` inside the whole config, for messages.

    Returns:
        An instance of ``cls``. Its ``validate()`` method, if any, has been run.

    Raises:
        ConfigError: unknown key, wrong type, missing required key, or a value
            outside the field's range.
    """
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where}: key '{prefix or '<top>'}' must be a mapping, got {_describe(data)}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown key '{_join(prefix, key)}'"
                + _closest(str(key), list(fields), prefix)
            )
    kwargs = {}
    for name, f in fields.items():
        full = _join(prefix, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: required key '{full}' is missing")
            continue
        value = _convert(hints[name], data[name], full, where)
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if lo is not None and value < lo:
                raise ConfigError(f"{where}: key '{full}' must be >= {lo}, got {value}")
            if hi is not None and value > hi:
                raise ConfigError(f"{where}: key '{full}' must be <= {hi}, got {value}")
        kwargs[name] = value
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"{where}: {err}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclass tree → plain nested dicts/lists (YAML-ready, field order kept)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def added_later(field: Any) -> Any:
    """Mark a field (from :func:`opt`/:func:`sub`) as added after configs were first frozen.

    Its default must reproduce the earlier behaviour. While a config holds the
    default, the key is left out of the pinned form (:func:`pinned_dict`), so
    dataset versions and experiments frozen before the key existed keep their
    fingerprints and are not reported as changed.
    """
    field.metadata = types.MappingProxyType({**field.metadata, "added": True})
    return field


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def pinned_dict(obj: Any) -> Any:
    """:func:`to_dict`, without :func:`added_later` keys that hold their default.

    Example:
        >>> @dataclasses.dataclass(kw_only=True)
        ... class Feats:
        ...     hop: int = opt(256)
        ...     bands: int | None = added_later(opt(None))
        >>> pinned_dict(Feats()), pinned_dict(Feats(bands=20))
        ({'hop': 256}, {'hop': 256, 'bands': 20})
    """
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("added") and value == _default(f):
                continue
            out[f.name] = pinned_dict(value)
        return out
    if isinstance(obj, list | tuple):
        return [pinned_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: pinned_dict(v) for k, v in obj.items()}
    return obj


def iter_keys(
    cls: type, prefix: str = "", instance: Any = None
) -> typing.Iterator[tuple[str, str, Any, str]]:
    """Yield ``(dotted_key, type_name, default, help)`` for every leaf of a schema.

    Nested sections report the defaults of the section instance their parent
    creates (e.g. the demo corpus' target voice), not of the bare section class.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = _join(prefix, f.name)
        if instance is not None:
            default = getattr(instance, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        if dataclasses.is_dataclass(tp):
            yield from iter_keys(tp, key, default if dataclasses.is_dataclass(default) else None)
            continue
        yield key, _type_name(tp), to_dict(default), f.metadata.get("help", "")


def lookup_field(cls: type, dotted: str) -> tuple[Any, dataclasses.Field]:
    """Return ``(type, field)`` of the leaf ``dotted`` key in schema ``cls``.

    Raises:
        ConfigError: the key does not exist (names the closest valid key).
    """
    parts = dotted.split(".")
    current = cls
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"key '{dotted}': '{'.'.join(parts[:i])}' is not a section")
        fields = {f.name: f for f in dataclasses.fields(current)}
        if part not in fields:
            parent = ".".join(parts[:i])
            match = difflib.get_close_matches(part, list(fields), n=1, cutoff=0.5)
            hint = (
                f" (did you mean '{_join(parent, match[0])}'?)"
                if match
                else f" (keys under '{parent or '<top>'}': {', '.join(fields)})"
            )
            raise ConfigError(f"unknown key '{dotted}'{hint}")
        tp = typing.get_type_hints(current)[part]
        if i == len(parts) - 1:
            return tp, fields[part]
        current = tp
    raise ConfigError(f"empty key '{dotted}'")
