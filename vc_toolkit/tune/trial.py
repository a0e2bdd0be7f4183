"""One trial: the base tag's resolved config with the suggested values, trained by the shared loop.

A trial's config is the base tag's resolved config, the sampled values set at
their dotted keys, and the study's per-trial budget (``TRIAL_ONLY_KEYS``). It is
validated like any tag (every constraint the model enforces is a config check)
and its ``train.best_metric`` must be a loss its model logs; an invalid
combination (e.g. heads not dividing hidden, an even conformer kernel) ends the
trial as pruned before anything is trained. Training is
:func:`vc_toolkit.train.setup.setup` plus :class:`vc_toolkit.train.loop.Trainer`,
with a hook that reports the objective after every dev evaluation (step = epoch)
and asks the pruner.

Outcomes:

* COMPLETE: value = the objective at the last (or best) evaluation.
* PRUNED: stopped by the pruner, or an invalid sampled combination.
* FAIL: diverged (non-finite losses or objective), out of memory, or an error
  raised by the trial's own values (``ValueError``, ``RuntimeError``,
  ``ArithmeticError`` while building or training its model; the traceback is kept in
  ``trial_<N>/error.txt``); the study goes on. Any other error (``KeyError``,
  ``TypeError``, a missing file, a :class:`~vc_toolkit.errors.UserError` of the set-up)
  also marks the trial FAIL and stops the worker: it is a bug or a setup problem
  that would repeat in every trial.

The reason of every PRUNED/FAIL trial is its user attribute ``fail_reason``.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from vc_toolkit import log
from vc_toolkit.config.core import build
from vc_toolkit.config.resolve import dump_yaml
from vc_toolkit.config.tag import TagConfig
from vc_toolkit.errors import UserError
from vc_toolkit.io import atomic_write_text
from vc_toolkit.paths import Layout
from vc_toolkit.train.loop import Trainer, TrainingDivergedError
from vc_toolkit.train.setup import check_best_metric, setup
from vc_toolkit.tune.study import (
    CategoricalDist,
    Distribution,
    FloatDist,
    StudyConfig,
    study_dir,
)

logger = log.get("tune")


@dataclass
class Context:
    """Everything a worker needs (picklable for spawned workers); ``base`` is the resolved
    base tag as a dict, ``threads`` the torch CPU threads of one worker."""

    name: str
    cfg: StudyConfig
    space: dict[str, Distribution]
    base: dict
    layout: Layout
    device: str = "auto"
    threads: int = 1

    @property
    def folder(self) -> Path:
        return study_dir(self.layout, self.name)

    def trial_dir(self, number: int) -> Path:
        return self.folder / f"trial_{number}"


@dataclass
class Outcome:
    """How a trial ended."""

    state: TrialState
    value: float | None = None
    reason: str | None = None


class _DivergedError(Exception):
    """The objective is non-finite (or missing from the dev losses)."""


def set_dotted(data: dict, key: str, value: Any) -> None:
    """Set ``data["a"]["b"]["c"] = value`` for ``key`` ``"a.b.c"`` (sections created as needed).

    Example:
        >>> d = {"train": {"scheduler": {"peak_lr": 0.001}}}
        >>> set_dotted(d, "train.scheduler.peak_lr", 0.002)
        >>> set_dotted(d, "loss.pitch", 0.5)
        >>> d
        {'train': {'scheduler': {'peak_lr': 0.002}}, 'loss': {'pitch': 0.5}}
    """
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def budget(cfg: StudyConfig, base: dict, threads: int) -> dict[str, Any]:
    """Per-trial values of ``TRIAL_ONLY_KEYS`` (except ``note``), by dotted key."""
    return {
        "train.epochs": cfg.epochs_per_trial or base["train"]["epochs"],
        "train.max_steps": cfg.steps_per_trial,
        "train.eval_interval": cfg.eval_interval,
        "train.dev_images": 0,
        "train.num_threads": threads,
    }


def trial_config(base: dict, params: dict[str, Any], overrides: dict[str, Any]) -> dict:
    """The config dict of a trial: ``base`` with ``params`` and then ``overrides`` set.

    Example:
        >>> base = {"loss": {"pitch": 1.0}, "train": {"epochs": 60}}
        >>> trial_config(base, {"loss.pitch": 0.3}, {"train.epochs": 2})
        {'loss': {'pitch': 0.3}, 'train': {'epochs': 2}}
        >>> base["loss"]["pitch"]
        1.0
    """
    data = copy.deepcopy(base)
    for key, value in {**params, **overrides}.items():
        set_dotted(data, key, value)
    return data


def suggest(trial: optuna.Trial, space: dict[str, Distribution]) -> dict[str, Any]:
    """Ask ``trial`` for a value of every key of ``space``."""
    params: dict[str, Any] = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDist):
            params[key] = trial.suggest_categorical(key, dist.choices)
        elif isinstance(dist, FloatDist):
            params[key] = trial.suggest_float(
                key, dist.low, dist.high, log=dist.log, step=dist.step
            )
        else:
            params[key] = trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return params


class _Scorer:
    """``on_eval`` hook: record the objective, report it (step = epoch), prune."""

    def __init__(self, ctx: Context, trial: optuna.Trial, params: dict[str, Any]):
        self.ctx, self.trial, self.params = ctx, trial, params
        self.values: dict[int, float] = {}
        self.pruned_at: int | None = None

    def __call__(self, epoch: int, dev: dict[str, float]) -> None:
        name = self.ctx.cfg.objective.name
        if name not in dev:
            raise _DivergedError(f"dev losses have no '{name}' (they have {', '.join(dev)})")
        value = float(dev[name])
        if not math.isfinite(value):
            raise _DivergedError(f"objective {name} is {value} at epoch {epoch}")
        first = epoch not in self.values
        self.values[epoch] = value
        write_metrics(
            self.ctx, self.trial.number, self.params, self.values, Outcome(TrialState.RUNNING)
        )
        if not first:  # a step budget ending mid-epoch re-evaluates the same epoch
            return
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            pruner = self.ctx.cfg.pruner.type
            raise optuna.TrialPruned(
                f"pruned at epoch {epoch} by the {pruner} pruner ({name} {value:.4g})"
            )

    def value(self) -> float | None:
        if not self.values:
            return None
        if self.ctx.cfg.objective.value == "last":
            return self.values[max(self.values)]
        pick = min if self.ctx.cfg.objective.direction == "minimize" else max
        return pick(self.values.values())


def write_metrics(
    ctx: Context, number: int, params: dict[str, Any], values: dict[int, float], outcome: Outcome
) -> None:
    """``trial_<n>/metrics.json``: objective per epoch, state, value, params, reason."""
    data = {
        "study": ctx.name,
        "trial": number,
        "state": outcome.state.name,
        "objective": ctx.cfg.objective.name,
        "direction": ctx.cfg.objective.direction,
        "value": outcome.value,
        "values": {str(e): v for e, v in sorted(values.items())},
        "params": params,
        "fail_reason": outcome.reason,
    }
    atomic_write_text(ctx.trial_dir(number) / "metrics.json", json.dumps(data, indent=2) + "\n")


# Errors that a trial's own values can raise while its model is built or trained (a shape,
# size or value the model refuses); anything else is a bug or a set-up problem.
_TRIAL_ERRORS = (ValueError, RuntimeError, ArithmeticError)


def _failure(err: BaseException) -> str | None:
    """The reason of a failure of this trial alone; None for an error that would repeat.

    Example:
        >>> _failure(ValueError("conformer kernel_size must be odd, got 4"))
        'error: ValueError: conformer kernel_size must be odd, got 4'
        >>> _failure(KeyError("bug")) is None
        True
    """
    first = str(err).splitlines()[0] if str(err) else ""
    if isinstance(err, TrainingDivergedError | _DivergedError):
        return f"diverged: {err}"
    if isinstance(err, RuntimeError) and "out of memory" in str(err).lower():
        return f"out of memory: {first}"
    if isinstance(err, _TRIAL_ERRORS) and not isinstance(err, UserError):
        return f"error: {type(err).__name__}: {first}"
    return None


def run_trial(ctx: Context, trial: optuna.Trial) -> Outcome:
    """Train one trial; expected failures become the returned outcome, others are raised."""
    number = trial.number
    folder = ctx.trial_dir(number)
    if folder.exists():  # left by an older study of the same name whose storage was deleted
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    params = suggest(trial, ctx.space)
    overrides = {"note": f"optuna study {ctx.name}, trial {number}"}
    overrides.update(budget(ctx.cfg, ctx.base, ctx.threads))
    data = trial_config(ctx.base, params, overrides)
    try:
        cfg = build(TagConfig, data, where=f"study {ctx.name} trial {number}")
        check_best_metric(cfg)
    except UserError as err:  # ConfigError, or a best_metric the sampled model does not log
        outcome = Outcome(TrialState.PRUNED, reason=f"invalid combination: {err}")
        write_metrics(ctx, number, params, {}, outcome)
        return outcome
    dump_yaml(cfg, folder / "config.yaml", header=f"# resolved config of {overrides['note']}")
    scorer = _Scorer(ctx, trial, params)
    exp = trainer = None
    try:
        exp = setup(
            f"optuna/{ctx.name}/trial_{number}", ctx.layout, ctx.device, cfg=cfg, exp_dir=folder
        )
        trainer = Trainer(exp, on_eval=scorer, save_checkpoints=ctx.cfg.save_checkpoints)
        trainer.run()
        outcome = Outcome(TrialState.COMPLETE, scorer.value())
    except optuna.TrialPruned as err:
        outcome = Outcome(TrialState.PRUNED, scorer.value(), str(err))
    except Exception as err:
        reason = _failure(err)
        if reason is None:
            write_metrics(
                ctx, number, params, scorer.values, Outcome(TrialState.FAIL, None, repr(err))
            )
            raise
        if reason.startswith("error:"):
            atomic_write_text(folder / "error.txt", traceback.format_exc())
        outcome = Outcome(TrialState.FAIL, reason=reason)
    finally:
        del exp, trainer
        free_memory()
    write_metrics(ctx, number, params, scorer.values, outcome)
    return outcome


def free_memory() -> None:
    """Release what a finished trial held (Python garbage, CUDA cache)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def tell(ctx: Context, study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """Store the outcome (with ``fail_reason``) and log one line about it."""
    if outcome.reason:
        trial.set_user_attr("fail_reason", outcome.reason)
    if outcome.state != TrialState.COMPLETE:
        study.tell(trial, state=outcome.state)
        logger.info("trial %d %s: %s", trial.number, outcome.state.name, outcome.reason)
        return
    study.tell(trial, outcome.value)
    best = study.best_trial
    logger.info(
        "trial %d finished: %s %.4g (best so far: trial %d, %.4g)",
        trial.number,
        ctx.cfg.objective.name,
        outcome.value,
        best.number,
        best.value,
    )
