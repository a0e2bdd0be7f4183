"""The life of one training run, whatever it trains: epochs, checkpoints, resume, logs.

:class:`RunLoop` owns everything a run has in common — the acoustic model of
stage 2 (:class:`~vc_toolkit.train.loop.Trainer`) and a vocoder
(:class:`~vc_toolkit.train.voc_loop.VocoderTrainer`) alike:

* the epoch/step counters and an exact resume: a checkpoint carries every RNG
  state, the position inside the epoch and the loop's bookkeeping, and the batch
  plan is a function of ``(seed, epoch)``, so an interrupted run resumed from its
  last checkpoint ends with the same weights as an uninterrupted one;
* checkpoints ``latest`` (every epoch, and every ``save_interval_steps``), ``best``
  (lowest ``best_metric`` dev loss) and ``epochN`` (every ``ckpt_interval``,
  the newest ``keep_checkpoints`` kept), written atomically;
* skipping non-finite steps, and stopping after ``max_nonfinite`` in a row;
* the progress bar, the text log, TensorBoard, ``history.jsonl`` and ``summary.json``
  (:class:`~vc_toolkit.train.reporting.RunLog`).

A subclass says what one step, one dev evaluation and one model state are.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vc_toolkit import checkpoint, log
from vc_toolkit.errors import UserError
from vc_toolkit.paths import checkpoints_dir
from vc_toolkit.records import code_version
from vc_toolkit.train.ddp import World
from vc_toolkit.train.reporting import RunLog

logger = log.get("train")
EvalHook = Callable[[int, dict[str, float]], None]


class TrainingDivergedError(UserError):
    """Too many non-finite losses in a row."""


@dataclass
class Run:
    """Where a run lives and what identifies it.

    Attributes:
        name (str): the tag (or voc) name, for messages.
        exp_dir (Path): its folder (checkpoints, logs).
        budget (Any): its ``train`` block: ``epochs``, ``max_steps``, ``eval_interval``,
            ``ckpt_interval``, ``save_interval_steps``, ``keep_checkpoints``, ``best_metric``,
            ``max_nonfinite``, ``log_interval``, ``seed``.
        world (World): data-parallel placement.
        write (bool): whether this process writes files (rank 0).
        identity (dict): stored in every checkpoint and the summary (tag, spk, fingerprint).
        resume (dict | None): the checkpoint state resumed from.
    """

    name: str
    exp_dir: Path
    budget: Any
    world: World
    write: bool
    identity: dict
    resume: dict | None = None


class RunLoop(ABC):
    """Runs epochs until the budget is spent; subclasses define the steps.

    Args:
        run: The run.
        on_eval: Called as ``on_eval(epoch, dev_losses)`` after each dev evaluation
            (Optuna reports and prunes here by raising).
        save_checkpoints: False keeps nothing but logs (small Optuna trials).
    """

    def __init__(self, run: Run, on_eval: EvalHook | None = None, save_checkpoints: bool = True):
        self.run_info = run
        self.on_eval = on_eval
        self.save_checkpoints = save_checkpoints and run.write
        state = run.resume or {}
        self.epoch = int(state.get("epoch", 0))
        self.step = int(state.get("step", 0))
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        self.best = state.get("best", {"value": math.inf, "epoch": None, "losses": {}})
        self.epoch_seconds: list[float] = list(state.get("epoch_seconds", []))
        self.last_dev: dict[str, float] = state.get("last_dev", {})
        self.baselines: dict[str, dict[str, float]] = state.get("baselines", {})
        # running sums of the epoch's logged values: a mid-epoch resume continues them
        partial = state.get("epoch_sums") if self.batch_in_epoch else None
        self._sums: dict[str, float] = dict(partial["sums"]) if partial else {}
        self._count: int = int(partial["count"]) if partial else 0
        if state:
            checkpoint.set_rng_state(state["rng"])
        self._init_task(state)
        self.runlog = RunLog(run.exp_dir, run.write, self.step, self.epoch)
        self._nonfinite = 0

    # ---- what a subclass defines ---------------------------------------------------------
    def _init_task(self, state: dict) -> None:
        """Restore what the subclass keeps beside the models (e.g. a loss scaler)."""
        return None

    @abstractmethod
    def _task_state(self) -> dict:
        """Model, optimizer and schedule states for a checkpoint."""

    @abstractmethod
    def _loader(self) -> Iterable:
        """Batches of the current epoch from ``batch_in_epoch`` on (seeded by epoch)."""

    @abstractmethod
    def _epoch_length(self) -> int:
        """Batches of the current epoch left to run."""

    @abstractmethod
    def _step(self, batch: Any) -> dict[str, float] | None:
        """One optimisation step: logged values (with ``total`` and ``lr``), or None when
        the step was skipped (see :meth:`_skip`)."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Dev losses (``best_metric`` among them)."""

    def _to_device(self, batch: Any) -> Any:
        return batch

    def _step_extras(self, batch: Any, step_seconds: float, data_seconds: float) -> dict:
        """Per-step values for TensorBoard beside the losses."""
        return {"data_time_share": data_seconds / max(step_seconds, 1e-9)}

    def _start_baselines(self) -> None:
        """Reference losses before the first step (optional)."""
        return None

    def _epoch_done(self) -> None:
        """After a whole epoch, before its evaluation and checkpoint (e.g. an lr decay)."""
        return None

    def _log_examples(self, step: int) -> None:
        """Dev examples for TensorBoard after an evaluation (optional)."""
        return None

    def _diverged_hint(self) -> str:
        """The end of the divergence message: what to change."""
        return f"(last lr {self._lr():.3g}); lower the learning rate or check the data"

    def _summary_fields(self) -> dict:
        """Summary entries of the subclass (parameters, device, ...)."""
        return {}

    def _start_message(self) -> str:
        return f"{self.run_info.name}: {self._epoch_length()} batches/epoch"

    # ---- checkpoints -------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            **self._task_state(),
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "best": self.best,
            "last_dev": self.last_dev,
            "baselines": self.baselines,
            "epoch_seconds": self.epoch_seconds,
            "epoch_sums": {"sums": self._sums, "count": self._count},
            "rng": checkpoint.rng_state(),
            **self.run_info.identity,
        }

    def _save(self, names: list[str]) -> None:
        if not self.save_checkpoints or not names:
            return
        folder = checkpoints_dir(self.run_info.exp_dir)
        state = self._state()
        for name in names:
            checkpoint.save(folder / f"{name}.pt", state)
        checkpoint.rotate(folder, self.run_info.budget.keep_checkpoints)

    def _restart_hint(self) -> str:
        """What the user can do after a divergence (commands)."""
        return "lower the learning rate and start over with --force, or resume from 'best'"

    def _weights_finite(self) -> bool:
        """Whether every trained weight is finite (nothing else is saved)."""
        return True

    def _diverged(self, what: str) -> TrainingDivergedError:
        return TrainingDivergedError(
            f"{what}: training diverged, and nothing was saved from it; {self._restart_hint()}"
        )

    def _too_far(self, value: float, reference: float | None) -> bool:
        ratio = getattr(self.run_info.budget, "max_dev_ratio", 0.0)
        return bool(ratio and reference and math.isfinite(reference) and value > ratio * reference)

    def _check_health(self, dev: dict[str, float] | None) -> None:
        """Refuse to go on (and to save) with non-finite weights or a diverged dev loss.

        Raises:
            TrainingDivergedError: weights are non-finite, or the dev ``best_metric`` is more
                than ``max_dev_ratio`` times the untrained model's.
        """
        if not self._weights_finite():
            raise self._diverged(f"non-finite weights after step {self.step}")
        if dev is None:
            return
        metric = self.run_info.budget.best_metric
        reference = self.baselines.get("initial", {}).get(metric)
        if not math.isfinite(dev[metric]) or self._too_far(dev[metric], reference):
            raise self._diverged(
                f"dev {metric} {dev[metric]:.4g} at epoch {self.epoch} against "
                f"{reference:.4g} before training"
            )

    def _skip(self, why: str) -> None:
        """Count a skipped non-finite step; stop the run after ``max_nonfinite`` in a row."""
        self._nonfinite += 1
        limit = self.run_info.budget.max_nonfinite
        logger.warning(
            "step %d: %s; step skipped (%d in a row)", self.step + 1, why, self._nonfinite
        )
        if self._nonfinite >= limit:
            raise TrainingDivergedError(
                f"{limit} non-finite losses in a row at step {self.step + 1} "
                f"{self._diverged_hint()}; nothing was saved from them; {self._restart_hint()}"
            )
        return None

    # ---- epochs ------------------------------------------------------------------------
    def _train_epoch(self, bar: tqdm) -> bool:
        """One (possibly partial) epoch; True when the step budget was reached."""
        cfg = self.run_info.budget
        if self.batch_in_epoch == 0:
            self._sums, self._count = {}, 0
        sums = self._sums
        tick = time.perf_counter()
        for batch in self._loader():
            data_time = time.perf_counter() - tick
            batch = self._to_device(batch)
            result = self._step(batch)
            self.batch_in_epoch += 1
            bar.update()
            step_time = time.perf_counter() - tick
            tick = time.perf_counter()
            if result is None:
                continue
            self._nonfinite = 0
            self.step += 1
            for k, v in result.items():
                sums[k] = sums.get(k, 0.0) + v
            self._count += 1
            extra = self._step_extras(batch, step_time, data_time)
            self.runlog.scalars("train", {**result, **extra}, self.step)
            bar.set_postfix(loss=f"{result['total']:.3f}", lr=f"{result['lr']:.2e}")
            if self.step % cfg.log_interval == 0:
                logger.info(
                    "epoch %d step %d: %s lr %.3g",
                    self.epoch + 1,
                    self.step,
                    " ".join(
                        f"{k} {result[k]:.4f}" for k in result if k not in ("lr", "grad_norm")
                    ),
                    result["lr"],
                )
            if cfg.save_interval_steps and self.step % cfg.save_interval_steps == 0:
                self._check_health(None)
                self._save(["latest"])
            if cfg.max_steps and self.step >= cfg.max_steps:
                self._epoch_means = {k: v / self._count for k, v in sums.items()}
                return True
        self._epoch_means = {k: v / max(self._count, 1) for k, v in sums.items()}
        return False

    def _after_epoch(self, finished: bool) -> None:
        run, cfg = self.run_info, self.run_info.budget
        names = ["latest"]
        dev = None
        if self.epoch % cfg.eval_interval == 0 or finished:
            dev = self.evaluate() if run.world.is_main else None
            if dev is not None:
                self._check_health(dev)
                self.last_dev = dev
                self.runlog.scalars("dev", dev, self.step)
                value = dev[cfg.best_metric]
                if value < self.best["value"]:
                    self.best = {"value": value, "epoch": self.epoch, "losses": dev}
                    names.append("best")
                logger.info(
                    "epoch %d dev: %s%s",
                    self.epoch,
                    " ".join(f"{k} {v:.4f}" for k, v in dev.items()),
                    "  (best)" if "best" in names else "",
                )
                if run.write:
                    self._log_examples(self.step)
        if self.batch_in_epoch == 0 and self.epoch > 0 and self.epoch % cfg.ckpt_interval == 0:
            names.append(f"epoch{self.epoch}")
        row = {
            "epoch": self.epoch,
            "step": self.step,
            "lr": self._lr(),
            "seconds": self.epoch_seconds[-1] if self.epoch_seconds else None,
            "train": getattr(self, "_epoch_means", {}),
        }
        if dev is not None:
            row["dev"] = dev
        self.runlog.history(row)
        self._check_health(None)
        self._save(names)
        self.runlog.summary(self.summary(finished))
        if dev is not None and self.on_eval is not None:
            self.on_eval(self.epoch, dev)

    @abstractmethod
    def _lr(self) -> float:
        """The current learning rate (of the main optimizer)."""

    def summary(self, finished: bool) -> dict:
        """What ``summary.json`` holds: identity, progress, best and last dev losses, code."""
        run, cfg = self.run_info, self.run_info.budget
        secs = self.epoch_seconds
        return {
            **{k: v for k, v in run.identity.items() if k != "spk_fingerprint"},
            "spk_fingerprint": run.identity.get("spk_fingerprint"),
            **self._summary_head(),
            "epochs_done": self.epoch,
            "epochs_planned": cfg.epochs,
            "steps": self.step,
            "finished": finished,
            "seconds_per_epoch": float(np.mean(secs)) if secs else None,
            "wall_seconds": float(np.sum(secs)) if secs else 0.0,
            "best_metric": cfg.best_metric,
            "best": self.best if math.isfinite(self.best["value"]) else None,
            "last_dev": self.last_dev,
            "baselines": self.baselines,
            **self._summary_fields(),
            "threads": torch.get_num_threads(),
            "world_size": run.world.world_size,
            "code": code_version(),
        }

    def _summary_head(self) -> dict:
        """Summary entries shown right after the identity (e.g. note, pretrain)."""
        return {}

    def _keep_initial(self) -> dict:
        """``epochs: 0``: evaluate the initial (pretrained) weights and keep them as this run's
        ``latest`` and ``best``, so later stages use them under this run's own settings."""
        run, cfg = self.run_info, self.run_info.budget
        try:
            if run.world.is_main:
                self._start_baselines()
                dev = self.evaluate()
                self.last_dev = dev
                self.best = {"value": dev[cfg.best_metric], "epoch": 0, "losses": dev}
                logger.info(
                    "%s: epochs 0, keeping the initial weights (dev %s %.4f)",
                    run.name,
                    cfg.best_metric,
                    dev[cfg.best_metric],
                )
            self._save(["latest", "best"])
            self.runlog.summary(self.summary(True))
        finally:
            self.runlog.close()
        return self.summary(True)

    def run(self, max_epochs: int | None = None) -> dict:
        """Train to ``epochs`` (or ``max_epochs``/``max_steps``); returns the summary."""
        run, cfg = self.run_info, self.run_info.budget
        epochs = max_epochs or cfg.epochs
        logger.info("%s", self._start_message())
        if epochs == 0 and run.resume is None:
            return self._keep_initial()
        if self.epoch >= epochs or (cfg.max_steps and self.step >= cfg.max_steps):
            logger.info(
                "%s already trained for %d epochs (%d steps); nothing to do",
                run.name,
                self.epoch,
                self.step,
            )
            self.runlog.close()
            return self.summary(True)
        if self.step == 0 and self.batch_in_epoch == 0 and run.world.is_main:
            self._start_baselines()
        budget = False
        try:
            while self.epoch < epochs and not budget:
                bar = tqdm(
                    total=self._epoch_length() + self.batch_in_epoch,
                    initial=self.batch_in_epoch,
                    desc=f"epoch {self.epoch + 1}/{epochs}",
                    unit="batch",
                    disable=not run.world.is_main,
                    leave=False,
                )
                start = time.perf_counter()
                budget = self._train_epoch(bar)
                bar.close()
                if not budget:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    self._epoch_done()
                self.epoch_seconds.append(time.perf_counter() - start)
                finished = budget or self.epoch >= epochs
                self._after_epoch(finished)
        finally:
            self.runlog.close()
        return self.summary(True)
