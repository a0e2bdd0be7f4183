"""Search space of a study: distributions over dotted keys of the tag schema, checked.

Every key is a leaf of :class:`~vc_toolkit.config.tag.TagConfig` that a study may search
(not a budget key set for every trial, not ``spk``); every distribution fits its field's
type, and its range or choices pass the field's own checks (min/max, choices).

Example:
    >>> space = parse_space(
    ...     {"loss.pitch": {"type": "float", "low": 0.1, "high": 2.0}}, "s.yaml"
    ... )
    >>> space["loss.pitch"].high
    2.0
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from vc_toolkit.config.core import ConfigError, build, iter_keys, lookup_field, opt
from vc_toolkit.config.tag import TagConfig

# Keys every trial sets from the study (budget and bookkeeping): not searchable, not exported.
TRIAL_ONLY_KEYS = (
    "note",
    "train.epochs",
    "train.max_steps",
    "train.eval_interval",
    "train.dev_images",
    "train.num_threads",
)
_NOT_SEARCHABLE = {
    **dict.fromkeys(
        TRIAL_ONLY_KEYS,
        "is set by the study for every trial (epochs_per_trial, eval_interval, ...)",
    ),
    "model.preset": "is already applied to the base tag's resolved config",
    "spk": "selects the dataset; make one study per spk instead",
}


@dataclass(kw_only=True)
class FloatDist:
    """``suggest_float(low, high, log, step)``."""

    type: Literal["float"]
    low: float = opt(help="smallest value")
    high: float = opt(help="largest value")
    log: bool = opt(False, "sample log-uniformly (low > 0)")
    step: float | None = opt(None, "discretisation step (not with log)")


@dataclass(kw_only=True)
class IntDist:
    """``suggest_int(low, high, step, log)``."""

    type: Literal["int"]
    low: int = opt(help="smallest value")
    high: int = opt(help="largest value")
    log: bool = opt(False, "sample log-uniformly (low > 0, step 1)")
    step: int = opt(1, "step", min=1)


@dataclass(kw_only=True)
class CategoricalDist:
    """``suggest_categorical(choices)``."""

    type: Literal["categorical"]
    choices: list[Any] = opt(help="values to choose from (null, bool, int, float or str)")


Distribution = FloatDist | IntDist | CategoricalDist
_DISTS: dict[str, type] = {"float": FloatDist, "int": IntDist, "categorical": CategoricalDist}


def parse_space(raw: Mapping[str, Any], where: str) -> dict[str, Distribution]:
    """Build and check every distribution of a search space against the tag schema.

    Raises:
        ConfigError: unknown or unsearchable key, distribution not fitting the
            field's type, bad range, or a choice the field does not accept.
    """
    space: dict[str, Distribution] = {}
    for key, spec in raw.items():
        tp, field = _leaf(key, where)
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        if kind not in _DISTS:
            raise ConfigError(
                f"{where}: search_space '{key}' needs 'type: float', 'type: int' or "
                f"'type: categorical', got {kind!r}"
            )
        dist = build(_DISTS[kind], spec, where=where, prefix=f"search_space.{key}")
        _check(key, tp, field, dist, f"{where}: search_space '{key}'")
        space[key] = dist
    return space


def _leaf(key: str, where: str) -> tuple[Any, dataclasses.Field]:
    if key in _NOT_SEARCHABLE:
        raise ConfigError(f"{where}: search_space: key '{key}' {_NOT_SEARCHABLE[key]}")
    leaves = [k for k, *_ in iter_keys(TagConfig)]
    try:
        tp, field = lookup_field(TagConfig, key)
    except ConfigError as err:
        close = difflib.get_close_matches(key, leaves, n=1, cutoff=0.6)
        hint = f"unknown key '{key}' (did you mean '{close[0]}'?)" if close else str(err)
        raise ConfigError(f"{where}: search_space: {hint}") from None
    if dataclasses.is_dataclass(tp):
        inner = [k for k in leaves if k.startswith(key + ".")][:4]
        raise ConfigError(
            f"{where}: search_space: '{key}' is a section; name one of its keys "
            f"({', '.join(inner)}, ...)"
        )
    return tp, field


def _kinds(tp: Any) -> set[Any]:
    """Scalar types a field accepts (``None`` dropped, ``Literal`` kept as ``Literal``)."""
    if get_origin(tp) in (Union, types.UnionType):
        return set().union(*(_kinds(a) for a in get_args(tp) if a is not type(None)))
    return {Literal if get_origin(tp) is Literal else get_origin(tp) or tp}


def _check(key: str, tp: Any, field: dataclasses.Field, dist: Distribution, where: str) -> None:
    kinds = _kinds(tp)
    if isinstance(dist, CategoricalDist):
        _check_choices(key, tp, field, dist.choices, where)
        return
    wanted = {float} if isinstance(dist, FloatDist) else {int, float}
    if not kinds & wanted:
        fix = "use type: int" if isinstance(dist, FloatDist) and int in kinds else "use categorical"
        raise ConfigError(
            f"{where}: type {dist.type} does not fit this {_kind_name(kinds)} field; {fix}"
        )
    if not dist.low < dist.high:
        raise ConfigError(f"{where}: needs low < high, got low {dist.low}, high {dist.high}")
    if dist.log and dist.low <= 0:
        raise ConfigError(f"{where}: log sampling needs low > 0, got {dist.low}")
    if dist.log and dist.step not in (None, 1):
        raise ConfigError(f"{where}: give either log: true or a step, not both")
    if dist.step is not None and dist.step <= 0:
        raise ConfigError(f"{where}: step must be > 0, got {dist.step}")
    if dist.step is not None and not _multiple(dist.high - dist.low, dist.step):
        raise ConfigError(
            f"{where}: high - low ({dist.high - dist.low}) must be a multiple of step"
        )
    for what, value in (("low", dist.low), ("high", dist.high)):
        _probe(key, tp, field, value, f"{where} {what}")


def _check_choices(key: str, tp: Any, field: dataclasses.Field, choices: list, where: str) -> None:
    if not choices:
        raise ConfigError(f"{where}: choices is empty")
    for choice in choices:
        if not (choice is None or isinstance(choice, bool | int | float | str)):
            raise ConfigError(
                f"{where}: choice {choice!r} is not a scalar (null, bool, int, float or str); "
                "tune list or mapping keys one element at a time"
            )
        _probe(key, tp, field, choice, f"{where} choice {choice!r}")
    if len({repr(c) for c in choices}) != len(choices):
        raise ConfigError(f"{where}: choices repeat a value: {choices}")


def _multiple(span: float, step: float) -> bool:
    ratio = span / step
    return math.isclose(ratio, round(ratio), rel_tol=1e-9, abs_tol=1e-9)


def _kind_name(kinds: set[Any]) -> str:
    return "/".join(
        sorted("choice" if k is Literal else getattr(k, "__name__", str(k)) for k in kinds)
    )


def _probe(key: str, tp: Any, field: dataclasses.Field, value: Any, where: str) -> None:
    """Validate ``value`` as field ``key`` alone (type and min/max, no cross-field checks)."""
    parent, _, leaf = key.rpartition(".")
    probe = dataclasses.make_dataclass(
        "Probe", [(leaf, tp, dataclasses.field(default=None, metadata=field.metadata))]
    )
    build(probe, {leaf: value}, where=where, prefix=parent)
