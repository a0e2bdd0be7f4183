"""One trial: the base tag's resolved config with the suggested values, trained by the shared loop.

A trial's config is the base tag's resolved config, the sampled values set at
their dotted keys, and the study's per-trial budget (``TRIAL_ONLY_KEYS``). It is
validated like any tag; an invalid combination (e.g. heads not dividing
hidden) ends the trial as pruned. Training is :func:`vc_toolkit.train.setup.setup`
plus :class:`vc_toolkit.train.loop.Trainer`, with a hook that reports the
objective after every dev evaluation (step = epoch) and asks the pruner.

Outcomes:

* COMPLETE: value = the objective at the last (or best) evaluation.
* PRUNED: stopped by the pruner, or an invalid sampled combination.
* FAIL: diverged (non-finite losses or objective) or out of memory; the study goes on.
  Any other error also marks the trial FAIL and stops the worker (it is a bug
  or a setup problem that would repeat).

The reason of every PRUNED/FAIL trial is its user attribute ``fail_reason``.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import gc
import json
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from vc_toolkit import log
from vc_toolkit.config import load_tag
from vc_toolkit.config.core import ConfigError, build, to_dict
from vc_toolkit.config.resolve import dump_yaml
from vc_toolkit.config.tag import TagConfig
from vc_toolkit.io import atomic_write_text
from vc_toolkit.lock import pid_alive
from vc_toolkit.paths import Layout
from vc_toolkit.train.loop import Trainer, TrainingDivergedError
from vc_toolkit.train.setup import ensure_features, setup
from vc_toolkit.tune.study import (
    CategoricalDist,
    Distribution,
    FloatDist,
    StudyConfig,
    check_base,
    load_study,
    make_sampler,
    open_study,
    pin,
    study_dir,
)

logger = log.get("tune")
HOST = socket.gethostname()


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


def _failure(err: BaseException) -> str | None:
    """The reason of an expected failure (divergence, out of memory); None for anything else."""
    if isinstance(err, TrainingDivergedError | _DivergedError):
        return f"diverged: {err}"
    if isinstance(err, RuntimeError) and "out of memory" in str(err).lower():
        return f"out of memory: {str(err).splitlines()[0]}"
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
    except ConfigError as err:
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


# ---- workers -------------------------------------------------------------
def prepare(name: str, layout: Layout, n_workers: int = 1, device: str | None = None) -> Context:
    """Check everything before the first trial; create or resume the study.

    Validates the study config and search space, the base tag (and that it can
    produce the objective), its features, and the study's pinned settings;
    marks trials left running by stopped workers as failed.

    Raises:
        UserError: any of those checks failed.
    """
    cfg, space = load_study(name, layout)
    base_cfg = load_tag(cfg.base_tag, layout.root)
    check_base(cfg, base_cfg, space)
    ensure_features(base_cfg.spk, layout)
    base = to_dict(base_cfg)
    threads = cfg.threads_per_worker or max(1, (os.cpu_count() or 1) // n_workers)
    build(TagConfig, trial_config(base, {}, budget(cfg, base, threads)), where=f"study {name}")
    ctx = Context(name, cfg, space, base, layout, device or cfg.device, threads)
    study = open_study(cfg, name, layout)
    pin(study, cfg, base)
    fail_stale_trials(study, 5 * cfg.heartbeat_seconds)
    return ctx


def work(ctx: Context, worker: int = 0) -> int:
    """Run trials until the study has ``n_trials`` trials or ``timeout`` passed.

    Several workers (processes, machines) may share the storage: taking a new
    trial happens under a file lock next to the study, so local workers never
    start more than ``n_trials`` in total.

    Returns:
        The number of trials this worker ran.
    """
    study = open_study(ctx.cfg, ctx.name, ctx.layout)
    offset = 1000 * worker + len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(ctx.cfg.sampler, offset)
    started, done = time.monotonic(), 0
    while True:
        with _exclusive(ctx.folder / "ask.lock"):
            fail_stale_trials(study, 5 * ctx.cfg.heartbeat_seconds)
            if not _budget_left(ctx.cfg, study, started):
                return done
            trial = study.ask()
            for key, value in (("host", HOST), ("pid", os.getpid()), ("heartbeat", time.time())):
                trial.set_user_attr(key, value)
        logger.info("trial %d started", trial.number)
        try:
            with _Heartbeat(trial, ctx.cfg.heartbeat_seconds):
                outcome = run_trial(ctx, trial)
            tell(ctx, study, trial, outcome)
        except optuna.exceptions.UpdateFinishedTrialError:
            logger.warning("trial %d was marked failed by another worker; dropped", trial.number)
        except BaseException as err:
            _give_up(study, trial, err)
            raise
        done += 1


def _budget_left(cfg: StudyConfig, study: optuna.Study, started: float) -> bool:
    if cfg.timeout is not None and time.monotonic() - started >= cfg.timeout:
        logger.info("timeout of %g s reached; no new trial", cfg.timeout)
        return False
    started_states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    if (
        cfg.n_trials is not None
        and len(study.get_trials(False, states=started_states)) >= cfg.n_trials
    ):
        logger.info("the study has its %d trials", cfg.n_trials)
        return False
    return True


def _give_up(study: optuna.Study, trial: optuna.Trial, err: BaseException) -> None:
    """Mark ``trial`` failed after an unexpected error (the worker stops)."""
    reason = "interrupted" if isinstance(err, KeyboardInterrupt) else f"error: {err!r}"
    with contextlib.suppress(Exception):
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _Heartbeat:
    """Background thread writing the time to the trial's ``heartbeat`` attribute."""

    def __init__(self, trial: optuna.Trial, seconds: float):
        self.trial, self.seconds = trial, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except optuna.exceptions.UpdateFinishedTrialError:
                return
            except Exception as err:  # storage hiccup: try again at the next beat
                logger.warning("trial %d: heartbeat not written (%s)", self.trial.number, err)


def fail_stale_trials(study: optuna.Study, grace: float) -> list[int]:
    """Mark RUNNING trials whose worker is gone as FAIL (``fail_reason`` says why).

    A trial is stale when its worker ran on this host and that process no
    longer exists, or when its heartbeat is older than ``grace`` seconds.

    Returns:
        Numbers of the trials marked failed.
    """
    now, failed = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs, pid = t.user_attrs, t.user_attrs.get("pid")
        beat = attrs.get("heartbeat") or (t.datetime_start.timestamp() if t.datetime_start else now)
        if attrs.get("host") == HOST and isinstance(pid, int) and not pid_alive(pid):
            reason = f"interrupted: its worker (pid {pid} on {HOST}) is gone"
        elif now - beat > grace:
            reason = f"interrupted: no heartbeat from its worker for {now - beat:.0f} s"
        else:
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "fail_reason", reason)
            study.tell(t.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            continue  # it finished meanwhile
        logger.warning("trial %d was left running (%s); marked failed", t.number, reason)
        failed.append(t.number)
    return failed
