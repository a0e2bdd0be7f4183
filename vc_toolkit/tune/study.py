"""Schema of an Optuna study (``conf/optuna/<STUDY>.yaml``), its storage, sampler and pruner.

A study tunes the resolved config of one tag (``base_tag``): every key of the
search space is a dotted key of the tag schema, checked before the first trial
(unknown key with the closest valid one, distribution against the field's
type, range against the field's min/max; :mod:`~vc_toolkit.tune.space`).
:func:`load_study` returns the validated :class:`StudyConfig` and its parsed
search space; :func:`open_study` opens it in its storage
(:mod:`~vc_toolkit.tune.storage`) with a sampler seeded per trial
(:mod:`~vc_toolkit.tune.sampling`).

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

import contextlib
import dataclasses
import importlib.util
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from vc_toolkit.config.core import ConfigError, build, opt, sub, to_dict
from vc_toolkit.config.resolve import config_path, diff_configs, read_yaml
from vc_toolkit.config.tag import LOSS_NAMES, TagConfig
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout
from vc_toolkit.tune.sampling import TrialSeededSampler
from vc_toolkit.tune.space import TRIAL_ONLY_KEYS as TRIAL_ONLY_KEYS
from vc_toolkit.tune.space import CategoricalDist as CategoricalDist
from vc_toolkit.tune.space import Distribution, parse_space
from vc_toolkit.tune.space import FloatDist as FloatDist
from vc_toolkit.tune.space import IntDist as IntDist
from vc_toolkit.tune.storage import open_storage, redacted, study_lock


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
    """How parameters are proposed (seeded per trial: a single-worker study is reproducible)."""

    type: Literal["tpe", "random", "cmaes"] = opt("tpe", "tpe, random, or cmaes")
    seed: int = opt(0, "sampler seed (trial N is sampled with a seed drawn from it and N)")
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
class StudyConfig:
    """A hyper-parameter study over one tag."""

    base_tag: str = opt(help="tag whose resolved config every trial starts from")
    note: str = opt("", "free text shown by vc-tune summary")
    objective: Objective = sub(Objective, "what a trial is scored by")
    search_space: dict[str, dict[str, Any]] = opt(
        help="dotted tag key -> {type: float|int|categorical, ...}"
    )
    n_trials: int | None = opt(
        None, "stop when this many trials exist (any state; interrupted ones are replaced)", min=1
    )
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
    slots = loss_slots(name)  # a block (model.prosody) or a key (model.type)
    if any(key == slot or key.startswith(f"{slot}.") for slot in slots for key in space):
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
        ConfigError: the database cannot be opened (driver missing, bad URL, no server).
    """
    return open_storage(storage_target(cfg, layout, name))


def locked(cfg: StudyConfig, layout: Layout, name: str) -> contextlib.AbstractContextManager:
    """The lock of study ``name`` shared by all its workers (see :func:`storage.study_lock`)."""
    target = storage_target(cfg, layout, name)
    return study_lock(target, name, fallback=study_dir(layout, name) / "workers.lock")


def trial_sampler(cfg: Sampler) -> TrialSeededSampler:
    """The sampler of a worker: trial ``N`` is sampled with a seed drawn from ``(seed, N)``.

    Raises:
        ConfigError: the sampler cannot be built (now, not when the first trial starts).
    """
    make_sampler(cfg)
    return TrialSeededSampler(
        lambda seed: make_sampler(dataclasses.replace(cfg, seed=seed)), cfg.seed
    )


def make_sampler(cfg: Sampler, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler of ``cfg`` seeded ``cfg.seed + seed_offset``."""
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
            f"study '{name}' has not started yet ({redacted(storage_target(cfg, layout, name))}); "
            f"run: vc-tune run --study {name}"
        ) from None


def interrupted(trial: FrozenTrial) -> bool:
    """Whether ``trial`` failed because its worker stopped (it is replaced, not counted)."""
    if trial.state != TrialState.FAIL:
        return False
    reason = str(trial.user_attrs.get("fail_reason", ""))
    return bool(trial.user_attrs.get("interrupted")) or reason.startswith("interrupted")


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
