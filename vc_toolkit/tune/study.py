"""Schema of an Optuna study (``conf/optuna/<STUDY>.yaml``) and its search space.

A study tunes the resolved config of one tag (``base_tag``): every key of the
search space is a dotted key of the tag schema, checked before the first trial
(unknown key with the closest valid one, distribution against the field's
type, range against the field's min/max). :func:`load_study` returns the
validated :class:`StudyConfig` and its parsed search space.

Example:
    >>> space = parse_space(
    ...     {"loss.pitch": {"type": "float", "low": 0.1, "high": 2.0}}, "s.yaml"
    ... )
    >>> space["loss.pitch"].high
    2.0
    >>> try:
    ...     parse_space({"loss.pich": {"type": "float", "low": 0.1, "high": 2.0}}, "s.yaml")
    ... except ConfigError as err:
    ...     print(err)
    s.yaml: search_space: unknown key 'loss.pich' (did you mean 'loss.pitch'?)
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import optuna

from vc_toolkit.config.core import ConfigError, build, iter_keys, lookup_field, opt, sub, to_dict
from vc_toolkit.config.resolve import config_path, diff_configs, read_yaml
from vc_toolkit.config.tag import LOSS_NAMES, TagConfig
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout

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
class Objective:
    """What a trial is scored by."""

    name: Literal[LOSS_NAMES] = opt("post_mel", "dev loss that scores a trial")
    direction: Literal["minimize", "maximize"] = opt("minimize", "minimize or maximize it")
    value: Literal["last", "best"] = opt(
        "last", "trial value: the dev loss of the last evaluation, or the best one of the trial"
    )


@dataclass(kw_only=True)
class Sampler:
    """How parameters are proposed (seeded: a fresh single-worker study is reproducible)."""

    type: Literal["tpe", "random", "cmaes"] = opt("tpe", "tpe, random, or cmaes")
    seed: int = opt(0, "sampler seed (workers and restarts offset it)")
    n_startup_trials: int = opt(10, "tpe/cmaes: random trials before the model is used", min=0)
    multivariate: bool = opt(False, "tpe: model the parameters jointly")
    constant_liar: bool = opt(True, "tpe: count running trials as bad so workers spread out")


@dataclass(kw_only=True)
class Pruner:
    """When a trial is stopped early (steps are epochs)."""

    type: Literal["median", "percentile", "none"] = opt("median", "median, percentile or none")
    n_startup_trials: int = opt(5, "trials finished before anything is pruned", min=0)
    n_warmup_steps: int = opt(1, "epochs of a trial before it can be pruned", min=0)
    interval_steps: int = opt(1, "epochs between pruning checks", min=1)
    percentile: float = opt(
        50.0, "percentile: prune below this percentile of trials", min=0, max=100
    )


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


@dataclass(kw_only=True)
class StudyConfig:
    """A hyper-parameter study over one tag."""

    base_tag: str = opt(help="tag whose resolved config every trial starts from")
    note: str = opt("", "free text shown by vc-tune summary")
    objective: Objective = sub(Objective, "what a trial is scored by")
    search_space: dict[str, dict[str, Any]] = opt(
        help="dotted tag key -> {type: float|int|categorical, ...}"
    )
    n_trials: int | None = opt(None, "stop when this many trials exist (any state)", min=1)
    timeout: float | None = opt(
        None, "seconds after the start of vc-tune run when no new trial starts", min=1
    )
    epochs_per_trial: int | None = opt(None, "train.epochs of a trial", min=1)
    steps_per_trial: int | None = opt(None, "train.max_steps of a trial", min=1)
    eval_interval: int = opt(1, "dev evaluation (report + pruning check) every N epochs", min=1)
    sampler: Sampler = sub(Sampler, "sampler")
    pruner: Pruner = sub(Pruner, "pruner")
    storage: str | None = opt(
        None,
        "null: journal file exp/optuna/<study>/study.journal; a path: journal file; "
        "a URL (sqlite:///..., postgresql://...): database",
    )
    save_checkpoints: bool = opt(False, "keep checkpoints of every trial")
    device: str = opt("auto", "auto, cpu, cuda, cuda:N (vc-tune --device overrides)")
    threads_per_worker: int | None = opt(None, "torch threads of a worker (null: cores/workers)")
    heartbeat_seconds: float = opt(
        60.0,
        "running trials write a heartbeat this often; 5 missed ones mark a trial failed",
        min=1,
    )

    def validate(self) -> None:
        if self.n_trials is None and self.timeout is None:
            raise ValueError("give n_trials and/or timeout (seconds): when the study ends")
        if self.epochs_per_trial is None and self.steps_per_trial is None:
            raise ValueError("give epochs_per_trial (or steps_per_trial): the budget of a trial")
        if not self.search_space:
            raise ValueError("search_space is empty: name at least one dotted tag key to tune")


def load_study(name: str, layout: Layout) -> tuple[StudyConfig, dict[str, Distribution]]:
    """Validated ``conf/optuna/<name>.yaml`` and its parsed search space."""
    path = config_path(layout, "optuna", name)
    where = _shown(path, layout)
    cfg = build(StudyConfig, read_yaml(path), where=where)
    space = parse_space(cfg.search_space, where)
    if cfg.objective.name == "total" and any(k.startswith("loss.") for k in space):
        raise ConfigError(
            f"{where}: objective 'total' is weighted by the loss.* keys being searched, so trials "
            "are not comparable; score them by an unweighted loss (post_mel, pitch, ...)"
        )
    return cfg, space


def _shown(path: Path, layout: Layout) -> str:
    try:
        return str(path.relative_to(layout.root))
    except ValueError:
        return str(path)


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


def check_base(cfg: StudyConfig, base: TagConfig, space: Mapping[str, Distribution]) -> None:
    """The base tag's model logs the objective, or the search space can make it.

    Which losses a model logs comes from the model registry: a loss that depends on a
    choice (e.g. ``gmm`` on the prosody module) passes when the space searches that
    block; otherwise it must be logged by the base tag's model.
    """
    from vc_toolkit.models import loss_names, loss_slots, loss_sources

    name = cfg.objective.name
    if name in loss_names(base.model):
        return
    if any(key.startswith(f"{slot}.") for slot in loss_slots(name) for key in space):
        return
    raise ConfigError(
        f"objective '{name}' is not computed for base tag '{cfg.base_tag}' "
        f"(it needs {' or '.join(loss_sources(name))})"
    )


def study_dir(layout: Layout, name: str) -> Path:
    """``exp/optuna/<name>``: storage (default), trial folders and plots of a study."""
    return layout.exp("optuna") / name


# ---- storage, sampler, pruner ------------------------------------------------
def storage_target(cfg: StudyConfig, layout: Layout, name: str) -> str:
    """The storage as a database URL or a journal file path (what optuna-dashboard takes)."""
    if cfg.storage and "://" in cfg.storage:
        return cfg.storage
    path = layout.resolve(cfg.storage) if cfg.storage else study_dir(layout, name) / "study.journal"
    return str(path)


def make_storage(cfg: StudyConfig, layout: Layout, name: str) -> optuna.storages.BaseStorage:
    """Journal file (default; shared safely by processes on one file system) or a database.

    Raises:
        ConfigError: the database cannot be opened (driver missing, bad URL).
    """
    target = storage_target(cfg, layout, name)
    if "://" not in target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(target))
    # sqlite: wait for a busy database instead of failing with "database is locked"
    engine = {"connect_args": {"timeout": 120}} if target.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(target, engine_kwargs=engine)
    except Exception as err:  # driver import errors, SQLAlchemy URL/connection errors
        raise ConfigError(f"cannot open storage {target}: {str(err).splitlines()[0]}") from None


def make_sampler(cfg: Sampler, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """Seeded sampler; ``seed_offset`` keeps workers and restarts from repeating proposals."""
    seed = cfg.seed + seed_offset
    if cfg.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if cfg.type == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=cfg.n_startup_trials,
                multivariate=cfg.multivariate,
                constant_liar=cfg.constant_liar,
            )
        if importlib.util.find_spec("cmaes") is None:
            raise ConfigError(
                "sampler type cmaes needs the 'cmaes' package, which is not installed; "
                "use tpe or random (or pip install cmaes)"
            )
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=cfg.n_startup_trials)


def make_pruner(cfg: Pruner) -> optuna.pruners.BasePruner:
    """Median / percentile pruner over epochs, or none."""
    if cfg.type == "none":
        return optuna.pruners.NopPruner()
    percentile = 50.0 if cfg.type == "median" else cfg.percentile
    return optuna.pruners.PercentilePruner(
        percentile,
        n_startup_trials=cfg.n_startup_trials,
        n_warmup_steps=cfg.n_warmup_steps,
        interval_steps=cfg.interval_steps,
    )


_PINNED = ("base_tag", "objective", "epochs_per_trial", "steps_per_trial", "eval_interval")


def open_study(
    cfg: StudyConfig,
    name: str,
    layout: Layout,
    sampler: optuna.samplers.BaseSampler | None = None,
    create: bool = True,
) -> optuna.Study:
    """Create or load study ``name`` in its storage.

    Raises:
        UserError: ``create`` is false and the study does not exist yet.
    """
    storage = make_storage(cfg, layout, name)
    pruner = make_pruner(cfg.pruner)
    if create:
        return optuna.create_study(
            storage=storage,
            study_name=name,
            direction=cfg.objective.direction,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        raise UserError(
            f"study '{name}' has not started yet ({storage_target(cfg, layout, name)}); "
            f"run: vc-tune run --study {name}"
        ) from None


def pin(study: optuna.Study, cfg: StudyConfig, base: dict) -> None:
    """Record what makes trials comparable; refuse to continue a study where it changed.

    Args:
        study: The opened study.
        cfg: Current study config.
        base: Current resolved config of the base tag (plain dict).

    Raises:
        ConfigError: base tag, objective or trial budget differ from the study's start.
    """
    now = {k: to_dict(getattr(cfg, k)) for k in _PINNED}
    now["base_config"] = {k: v for k, v in base.items() if k != "note"}
    old = study.user_attrs.get("pinned")
    if old is None:
        study.set_user_attr("pinned", now)
        return
    lines = diff_configs(old.get("base_config", {}), now["base_config"])
    lines += [f"{k}: {old.get(k)!r} -> {now[k]!r}" for k in _PINNED if old.get(k) != now[k]]
    if lines:
        shown = "; ".join(lines[:5]) + ("; ..." if len(lines) > 5 else "")
        raise ConfigError(
            f"study '{study.study_name}' was started with other settings, so new trials would not "
            f"be comparable ({shown}); restore them or start a study under a new name"
        )
