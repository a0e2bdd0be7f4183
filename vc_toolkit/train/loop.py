"""Stage-2 training of the acoustic model: the steps of :class:`Trainer` on a :class:`RunLoop`.

The run's life (epochs, exact resume, checkpoints, non-finite guard, logs) is
:class:`~vc_toolkit.train.runloop.RunLoop`'s, shared with every other training
run; this module says what one step and one dev evaluation of the acoustic
model are, and what stage 2 reports beside them (reference losses, dev images).
"""

from __future__ import annotations

import math

import torch

from vc_toolkit import checkpoint, log
from vc_toolkit.data.batch import Batch
from vc_toolkit.paths import checkpoints_dir
from vc_toolkit.train.runloop import EvalHook, Run, RunLoop, TrainingDivergedError
from vc_toolkit.train.setup import Experiment
from vc_toolkit.train.speed import compile_stacks, prefetched, resolve_precision

__all__ = ["EvalHook", "Trainer", "TrainingDivergedError", "evaluate"]
logger = log.get("train")


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


class Trainer(RunLoop):
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
        identity = {
            "tag": exp.tag,
            "spk": exp.cfg.spk,
            "spk_fingerprint": exp.fingerprint["fingerprint"],
        }
        run = Run(exp.tag, exp.exp_dir, exp.cfg.train, exp.world, exp.write, identity, exp.resume)
        super().__init__(run, on_eval, save_checkpoints)

    def _init_task(self, state: dict) -> None:
        exp, cfg = self.exp, self.exp.cfg.train
        # a checkpoint from before train.precision keeps its run's old meaning of train.amp
        legacy = bool(state) and "precision" not in state
        self.precision = resolve_precision(cfg.precision, cfg.amp, exp.device, legacy)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision.scaled)
        if state.get("scaler") and self.precision.scaled:
            self.scaler.load_state_dict(state["scaler"])
        if cfg.compile:
            compile_stacks(exp.model, exp.exp_dir)

    # ---- checkpoints -------------------------------------------------------------------
    def _task_state(self) -> dict:
        exp = self.exp
        return {
            "model": exp.core.state_dict(),
            "optimizer": exp.optimizer.state_dict(),
            "scheduler": exp.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.precision.scaled else None,
            "precision": self.precision.name,
            "speakers": exp.speakers.as_dict(),
            **exp.family.checkpoint_extras(exp.layout.dump(exp.cfg.spk)),
        }

    # ---- one step ----------------------------------------------------------------------
    def _to_device(self, batch: Batch) -> Batch:
        return batch.to(self.exp.device)

    def _step(self, batch: Batch) -> dict[str, float] | None:
        exp = self.exp
        cfg = exp.cfg.train
        exp.core.set_step(self.step)  # schedules inside the model (TTS binarisation loss)
        with self.precision.autocast():
            total, losses = exp.criterion(exp.model(batch), batch)
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
            if self.precision.scaled:
                self.scaler.update()
            return self._skip(f"gradient norm is {grad_norm}")
        self.scaler.step(exp.optimizer)
        self.scaler.update()
        lr = exp.scheduler.lr
        exp.scheduler.step(exp.sampler.step_size(self.epoch, self.batch_in_epoch))  # all ranks
        out = {k: float(v.detach()) for k, v in losses.items()}
        out.update(lr=lr, grad_norm=grad_norm)
        return out

    def _step_extras(self, batch: Batch, step_seconds: float, data_seconds: float) -> dict:
        return {
            "padding_fraction": self.exp.family.padding(batch),
            "frames_per_sec": float(batch.tgt_lens.sum()) / max(step_seconds, 1e-9),
            "data_time_share": data_seconds / max(step_seconds, 1e-9),
        }

    def _diverged_hint(self) -> str:
        return (
            f"(last lr {self.exp.scheduler.lr:.3g}); lower train.scheduler.peak_lr or check "
            "the features"
        )

    def _lr(self) -> float:
        return self.exp.scheduler.lr

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.exp.core.parameters())

    def _restart_hint(self) -> str:
        tag = self.exp.tag
        hint = (
            f"lower train.scheduler.peak_lr in conf/tag/{tag}.yaml and start over with "
            f"./run.sh --stage 2 --stop_stage 2 --tag {tag} --force"
        )
        if (checkpoints_dir(self.exp.exp_dir) / "best.pt").is_file():
            hint += (
                ", or continue from the last good checkpoint with ./run.sh --stage 2 "
                f"--stop_stage 2 --tag {tag} --resume_from best"
            )
        return hint

    # ---- epochs ------------------------------------------------------------------------
    def _loader(self):
        exp = self.exp
        exp.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        # the loader's own generator: worker seeds must not draw from the global RNG
        gen = torch.Generator()
        gen.manual_seed(exp.cfg.train.seed * 1000003 + self.epoch)
        return prefetched(exp.train_loader(gen), exp.device)

    def _epoch_length(self) -> int:
        self.exp.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        return len(self.exp.sampler)

    def evaluate(self) -> dict[str, float]:
        return evaluate(self.exp)

    def _log_examples(self, step: int) -> None:
        if self.exp.cfg.train.dev_images:
            self.exp.family.log_dev_examples(self.exp, self.runlog, step)

    def _start_baselines(self) -> None:
        """Dev losses before the first step, and the family's reference losses (VC: of
        copying the source), RNG state kept."""
        exp = self.exp
        rng = checkpoint.rng_state()
        initial = evaluate(exp)
        extra = exp.family.baselines(exp)
        checkpoint.set_rng_state(rng)
        self.baselines = {"initial": initial, **extra}
        self.runlog.scalars("dev", initial, 0)
        copy = extra.get("copy_source")
        if copy is not None:
            self.runlog.scalars("baseline", {"copy_source_mel": copy["mel"]}, 0)
        metric = exp.cfg.train.best_metric
        copy_text = (
            f"; copying the source mel: {copy[metric]:.4f}" if copy and metric in copy else ""
        )
        logger.info(
            "dev %s before training: %.4f%s", metric, initial.get(metric, math.nan), copy_text
        )

    def _start_message(self) -> str:
        exp = self.exp
        plan = exp.sampler.all_batches(self.epoch)
        return (
            f"tag {exp.tag}: {exp.core.num_params()} params, {len(exp.train_set)} train / "
            f"{len(exp.dev_set)} dev utts, {len(exp.sampler.batches(self.epoch))} batches/epoch "
            f"(padding {100 * exp.sampler.padding_fraction(plan):.1f}%), device {exp.device}, "
            f"{torch.get_num_threads()} threads, {self.precision.name}"
            f"{', compiled' if exp.cfg.train.compile else ''}"
        )

    def _summary_head(self) -> dict:
        exp = self.exp
        return {
            "note": exp.cfg.note,
            "pretrain": exp.cfg.pretrain.tag if exp.cfg.pretrain else None,
        }

    def _summary_fields(self) -> dict:
        exp = self.exp
        return {
            "params": exp.core.num_params(),
            "trainable_params": exp.core.num_params(trainable_only=True),
            "device": str(exp.device),
            "precision": self.precision.name,
            "compiled": exp.cfg.train.compile,
        }
