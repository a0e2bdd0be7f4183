"""Learning-rate schedules defined in *samples seen*, so batch size does not reshape them.

A researcher who doubles the batch size halves the number of optimizer steps
per epoch. With a step-counted warmup the learning rate would then climb for
twice as many epochs (or, shortening warmup by hand, spike). Here the schedule
is a function of the number of utterances seen, ``s = steps * global_batch``:

* ``warmup``: ``peak_lr * min(s / W, sqrt(W / s))`` (``decay: rsqrt``) or
  ``peak_lr * min(s / W, 1)`` (``decay: none``), with ``W`` the warmup length in
  samples (``warm_up_step * ref_batch_size`` or ``warmup_samples``). The peak is
  ``peak_lr`` whatever ``W`` is, so a short warmup cannot blow the rate up.
* ``noam``: the Transformer schedule [Vaswani et al., NeurIPS 2017]
  ``base_lr * hidden^-0.5 * min(n^-0.5, n * w^-1.5)`` with ``n = s / ref_batch_size``
  and ``w = W / ref_batch_size``, capped at ``base_lr * max_lr_scale``.
* ``constant``: ``peak_lr``.

``anneal_steps`` (counted at ``ref_batch_size``) multiply the rate by
``anneal_rate`` once passed; ``min_lr`` floors it after warmup. ``group_size``
plays no part.

When the batch size varies from step to step (``train.batch_frames``, a short last
batch, ``max_frames`` splits), the loop passes each step's actual utterances, summed
over the ranks, to :meth:`LRSchedule.step`, so ``s`` stays the exact count of what was
seen; the rate of the next step is taken at ``s`` plus one *nominal* batch (the mean
global batch of a frame-budget plan), as with a fixed batch size.

Example:
    >>> from vc_toolkit.config.tag import Scheduler
    >>> cfg = Scheduler(peak_lr=1e-3, warm_up_step=100, ref_batch_size=16)
    >>> a = lr_at(cfg, samples=800, hidden=256)   # 50 steps of 16
    >>> b = LRSchedule(cfg, batch_size=32, hidden=256).lr_at_step(25)  # 25 steps of 32
    >>> a == b == 5e-4
    True
"""

from __future__ import annotations

import math

import torch

from vc_toolkit.config.tag import Scheduler


def lr_at(cfg: Scheduler, samples: float, hidden: int) -> float:
    """Learning rate after ``samples`` utterances have been seen (``samples >= 1``)."""
    s = max(float(samples), 1.0)
    w = float(cfg.warmup_in_samples())
    if cfg.type == "constant":
        lr = cfg.peak_lr
    elif cfg.type == "warmup":
        rise = s / w if w > 0 else 1.0
        if cfg.decay == "rsqrt":
            fall = math.sqrt(w / s) if w > 0 else 1.0
            lr = cfg.peak_lr * min(rise, fall)
        else:
            lr = cfg.peak_lr * min(rise, 1.0)
    else:  # noam
        n = s / cfg.ref_batch_size
        wn = max(w / cfg.ref_batch_size, 1.0)
        factor = hidden**-0.5 * min(n**-0.5, n * wn**-1.5)
        lr = cfg.base_lr * min(factor, cfg.max_lr_scale)
    for step in cfg.anneal_steps:
        if s > step * cfg.ref_batch_size:
            lr *= cfg.anneal_rate
    if s >= w:
        lr = max(lr, cfg.min_lr)
    return lr


class LRSchedule:
    """Sets the optimizer's learning rate from the number of samples seen.

    Args:
        cfg: Schedule config.
        batch_size: *Global* utterances per optimizer step (per-rank batch × world size);
            with variable batches their mean. It places the next step's rate
            (:attr:`lr`) and counts a :meth:`step` given no size.
        hidden: Model width (Noam schedule only).
        optimizer: Optimizer whose param groups are updated by :meth:`step`.
    """

    def __init__(
        self,
        cfg: Scheduler,
        batch_size: float,
        hidden: int,
        optimizer: torch.optim.Optimizer | None = None,
    ):
        self.cfg = cfg
        self.batch_size = batch_size
        self.hidden = hidden
        self.optimizer = optimizer
        self.steps = 0
        self.samples = 0
        self._apply()

    def lr_at_step(self, step: int) -> float:
        """Rate used for optimizer step ``step`` (1-based: the first step sees one batch)."""
        return lr_at(self.cfg, step * self.batch_size, self.hidden)

    @property
    def lr(self) -> float:
        """Rate for the next optimizer step."""
        return lr_at(self.cfg, self.samples + self.batch_size, self.hidden)

    def _apply(self) -> None:
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr

    def step(self, samples: int | None = None) -> None:
        """Account one optimizer step and set the rate of the next one.

        Args:
            samples: Utterances the step trained on, summed over every rank (e.g.
                ``sampler.step_size(epoch, index)``); None counts the nominal ``batch_size``.
        """
        self.steps += 1
        self.samples += self.batch_size if samples is None else samples
        self._apply()

    def state_dict(self) -> dict:
        return {"steps": self.steps, "samples": self.samples, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Restore progress; ``samples`` carries over even if the batch size changed."""
        self.steps = int(state["steps"])
        samples = state["samples"]
        self.samples = samples if isinstance(samples, float) else int(samples)
        self._apply()


def lr_curve(cfg: Scheduler, batch_size: float, hidden: int, steps: int) -> list[float]:
    """Rates of optimizer steps ``1..steps`` (for plots and ``vc-lr-curve``)."""
    sched = LRSchedule(cfg, batch_size, hidden)
    return [sched.lr_at_step(k) for k in range(1, steps + 1)]
