"""The training loop shared by stage 2 and Optuna trials.

Deterministic on CPU: the batch plan is a function of ``(seed, epoch)``, the
data loader has its own seeded generator, and checkpoints carry every RNG
state, so an interrupted run resumed from its last checkpoint ends with the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from tqdm import tqdm

from vc_toolkit import checkpoint, log
from vc_toolkit.data.batch import Batch
from vc_toolkit.errors import UserError
from vc_toolkit.paths import checkpoints_dir
from vc_toolkit.records import code_version
from vc_toolkit.train.reporting import RunLog
from vc_toolkit.train.setup import Experiment

logger = log.get("train")
EvalHook = Callable[[int, dict[str, float]], None]


class TrainingDivergedError(UserError):
    """Too many non-finite losses in a row."""


def _amp(exp: Experiment) -> bool:
    return bool(exp.cfg.train.amp and exp.device.type == "cuda")


@torch.no_grad()
def evaluate(exp: Experiment) -> dict[str, float]:
    """Teacher-forced dev losses, averaged over utterances."""
    model = exp.core
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in exp.dev_loader():
        batch = batch.to(exp.device)
        _, losses = exp.criterion(model(batch), batch)
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + float(value) * len(batch)
        count += len(batch)
    model.train(was_training)
    return {k: v / max(count, 1) for k, v in sums.items()}


def _padding(batch: Batch) -> float:
    real = float(batch.src_lens.sum() + batch.tgt_lens.sum())
    padded = len(batch) * float(batch.src_lens.max() + batch.tgt_lens.max())
    return 1.0 - real / padded


class Trainer:
    """Runs epochs of :class:`Experiment` ``exp`` until its budget is spent.

    Args:
        exp: Built by :func:`vc_toolkit.train.setup.setup`.
        on_eval: Called as ``on_eval(epoch, dev_losses)`` after each dev evaluation
            (Optuna reports and prunes here by raising).
        save_checkpoints: False keeps nothing but logs (small Optuna trials).
    """

    def __init__(
        self, exp: Experiment, on_eval: EvalHook | None = None, save_checkpoints: bool = True
    ):
        self.exp = exp
        self.on_eval = on_eval
        self.save_checkpoints = save_checkpoints and exp.write
        state = exp.resume or {}
        self.epoch = int(state.get("epoch", 0))
        self.step = int(state.get("step", 0))
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        self.best = state.get("best", {"value": math.inf, "epoch": None, "losses": {}})
        self.epoch_seconds: list[float] = list(state.get("epoch_seconds", []))
        self.last_dev: dict[str, float] = state.get("last_dev", {})
        self.baselines: dict[str, dict[str, float]] = state.get("baselines", {})
        if state:
            checkpoint.set_rng_state(state["rng"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=_amp(exp))
        if state.get("scaler") and _amp(exp):
            self.scaler.load_state_dict(state["scaler"])
        self.runlog = RunLog(exp.exp_dir, exp.write, self.step, self.epoch)
        self._nonfinite = 0

    # ---- checkpoints -------------------------------------------------
    def _state(self) -> dict:
        exp = self.exp
        return {
            "model": exp.core.state_dict(),
            "optimizer": exp.optimizer.state_dict(),
            "scheduler": exp.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if _amp(exp) else None,
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "best": self.best,
            "last_dev": self.last_dev,
            "baselines": self.baselines,
            "epoch_seconds": self.epoch_seconds,
            "rng": checkpoint.rng_state(),
            "tag": exp.tag,
            "spk": exp.cfg.spk,
            "spk_fingerprint": exp.fingerprint["fingerprint"],
        }

    def _save(self, names: list[str]) -> None:
        if not self.save_checkpoints or not names:
            return
        folder = checkpoints_dir(self.exp.exp_dir)
        state = self._state()
        for name in names:
            checkpoint.save(folder / f"{name}.pt", state)
        checkpoint.rotate(folder, self.exp.cfg.train.keep_checkpoints)

    # ---- one step ----------------------------------------------------
    def _step(self, batch: Batch) -> dict[str, float] | None:
        exp = self.exp
        cfg = exp.cfg.train
        ctx = torch.autocast("cuda") if _amp(exp) else nullcontext()
        with ctx:
            outputs = exp.model(batch)
            total, losses = exp.criterion(outputs, batch)
        exp.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(total):
            return self._skip(f"loss is {float(total.detach())}")
        self.scaler.scale(total).backward()
        self.scaler.unscale_(exp.optimizer)
        params = [p for p in exp.model.parameters() if p.requires_grad]
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not math.isfinite(grad_norm):
            exp.optimizer.zero_grad(set_to_none=True)
            if _amp(exp):
                self.scaler.update()
            return self._skip(f"gradient norm is {grad_norm}")
        self.scaler.step(exp.optimizer)
        self.scaler.update()
        lr = exp.scheduler.lr
        exp.scheduler.step()
        self._nonfinite = 0
        out = {k: float(v.detach()) for k, v in losses.items()}
        out.update(lr=lr, grad_norm=grad_norm)
        return out

    def _skip(self, why: str) -> None:
        self._nonfinite += 1
        limit = self.exp.cfg.train.max_nonfinite
        logger.warning(
            "step %d: %s; step skipped (%d in a row)", self.step + 1, why, self._nonfinite
        )
        if self._nonfinite >= limit:
            raise TrainingDivergedError(
                f"{limit} non-finite losses in a row at step {self.step + 1} "
                f"(last lr {self.exp.scheduler.lr:.3g}); lower train.scheduler.peak_lr or check "
                "the features"
            )
        return None

    # ---- epochs ------------------------------------------------------
    def _loader(self):
        exp = self.exp
        exp.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        # the loader's own generator: worker seeds must not draw from the global RNG
        gen = torch.Generator()
        gen.manual_seed(exp.cfg.train.seed * 1000003 + self.epoch)
        return exp.train_loader(gen)

    def _train_epoch(self, bar: tqdm) -> bool:
        """One (possibly partial) epoch; True when the step budget was reached."""
        exp = self.exp
        cfg = exp.cfg.train
        sums: dict[str, float] = {}
        n = 0
        tick = time.perf_counter()
        for batch in self._loader():
            data_time = time.perf_counter() - tick
            batch = batch.to(exp.device)
            result = self._step(batch)
            self.batch_in_epoch += 1
            bar.update()
            step_time = time.perf_counter() - tick
            tick = time.perf_counter()
            if result is None:
                continue
            self.step += 1
            for k, v in result.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
            extra = {
                "padding_fraction": _padding(batch),
                "frames_per_sec": float(batch.tgt_lens.sum()) / max(step_time, 1e-9),
                "data_time_share": data_time / max(step_time, 1e-9),
            }
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
                self._save(["latest"])
            if cfg.max_steps and self.step >= cfg.max_steps:
                self._epoch_means = {k: v / n for k, v in sums.items()}
                return True
        self._epoch_means = {k: v / max(n, 1) for k, v in sums.items()}
        return False

    def _after_epoch(self, finished: bool) -> None:
        exp = self.exp
        cfg = exp.cfg.train
        names = ["latest"]
        dev = None
        if self.epoch % cfg.eval_interval == 0 or finished:
            dev = evaluate(exp) if exp.world.is_main else None
            if dev is not None:
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
                if exp.write and cfg.dev_images:
                    from vc_toolkit.train.devplots import log_dev_examples

                    log_dev_examples(exp, self.runlog, self.step)
        if self.batch_in_epoch == 0 and self.epoch > 0 and self.epoch % cfg.ckpt_interval == 0:
            names.append(f"epoch{self.epoch}")
        row = {
            "epoch": self.epoch,
            "step": self.step,
            "lr": exp.scheduler.lr,
            "seconds": self.epoch_seconds[-1] if self.epoch_seconds else None,
            "train": getattr(self, "_epoch_means", {}),
        }
        if dev is not None:
            row["dev"] = dev
        self.runlog.history(row)
        self._save(names)
        self.runlog.summary(self.summary(finished))
        if dev is not None and self.on_eval is not None:
            self.on_eval(self.epoch, dev)

    def _baselines(self) -> None:
        """Dev losses before the first step and of copying the source (RNG state kept)."""
        from vc_toolkit.train.baselines import copy_source_losses

        exp = self.exp
        rng = checkpoint.rng_state()
        initial = evaluate(exp)
        batches = (b.to(exp.device) for b in exp.dev_loader())
        copy = copy_source_losses(batches, exp.stats, exp.spk_cfg.reduction_factor)
        checkpoint.set_rng_state(rng)
        self.baselines = {"initial": initial, "copy_source": copy}
        self.runlog.scalars("dev", initial, 0)
        self.runlog.scalars("baseline", {"copy_source_mel": copy["mel"]}, 0)
        metric = exp.cfg.train.best_metric
        copy_text = f"; copying the source mel: {copy[metric]:.4f}" if metric in copy else ""
        logger.info(
            "dev %s before training: %.4f%s", metric, initial.get(metric, math.nan), copy_text
        )

    def summary(self, finished: bool) -> dict:
        exp = self.exp
        secs = self.epoch_seconds
        return {
            "tag": exp.tag,
            "spk": exp.cfg.spk,
            "spk_fingerprint": exp.fingerprint["fingerprint"],
            "note": exp.cfg.note,
            "pretrain": exp.cfg.pretrain.tag if exp.cfg.pretrain else None,
            "epochs_done": self.epoch,
            "epochs_planned": exp.cfg.train.epochs,
            "steps": self.step,
            "finished": finished,
            "seconds_per_epoch": float(np.mean(secs)) if secs else None,
            "wall_seconds": float(np.sum(secs)) if secs else 0.0,
            "best_metric": exp.cfg.train.best_metric,
            "best": self.best if math.isfinite(self.best["value"]) else None,
            "last_dev": self.last_dev,
            "baselines": self.baselines,
            "params": exp.core.num_params(),
            "trainable_params": exp.core.num_params(trainable_only=True),
            "device": str(exp.device),
            "threads": torch.get_num_threads(),
            "world_size": exp.world.world_size,
            "code": code_version(),
        }

    def run(self, max_epochs: int | None = None) -> dict:
        """Train to ``train.epochs`` (or ``max_epochs``/``train.max_steps``)."""
        exp = self.exp
        cfg = exp.cfg.train
        epochs = max_epochs or cfg.epochs
        plan = exp.sampler.all_batches(self.epoch)
        logger.info(
            "tag %s: %d params, %d train / %d dev utts, %d batches/epoch (padding %.1f%%), "
            "device %s, %d threads",
            exp.tag,
            exp.core.num_params(),
            len(exp.train_set),
            len(exp.dev_set),
            len(exp.sampler.batches(self.epoch)),
            100 * exp.sampler.padding_fraction(plan),
            exp.device,
            torch.get_num_threads(),
        )
        if self.epoch >= epochs:
            logger.info("tag %s already trained for %d epochs; nothing to do", exp.tag, self.epoch)
            self.runlog.close()
            return self.summary(True)
        if self.step == 0 and self.batch_in_epoch == 0 and exp.world.is_main:
            self._baselines()
        budget = False
        try:
            while self.epoch < epochs and not budget:
                exp.sampler.set_epoch(self.epoch, self.batch_in_epoch)
                bar = tqdm(
                    total=len(exp.sampler) + self.batch_in_epoch,
                    initial=self.batch_in_epoch,
                    desc=f"epoch {self.epoch + 1}/{epochs}",
                    unit="batch",
                    disable=not exp.world.is_main,
                    leave=False,
                )
                start = time.perf_counter()
                budget = self._train_epoch(bar)
                bar.close()
                if not budget:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                self.epoch_seconds.append(time.perf_counter() - start)
                finished = budget or self.epoch >= epochs
                self._after_epoch(finished)
        finally:
            self.runlog.close()
        return self.summary(True)
