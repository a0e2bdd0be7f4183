"""Frame-budget batches (``train.batch_frames``, ESPnet's ``batch_bins``); choosing a sampler.

A batch costs what the model computes on: its *padded* frames, ``len(batch) ×
longest target + len(batch) × longest source``. :class:`FrameBudgetSampler` fills
every batch up to ``batch_frames`` of that cost, so short utterances make big
batches and long ones small, and the work of a step (and its memory) stays about
constant.

Each epoch, from ``(seed, epoch)`` alone:

1. sort every utterance by the two-stream key of
   :class:`~vc_toolkit.train.sampler.GroupedBatchSampler` (its larger relative
   length), ties in a random order;
2. pack the sorted list greedily: an utterance joins the open batch while the
   batch's cost stays within the budget; the first batch of the epoch gets a random
   share of the budget, so the batch boundaries (and with them which utterances
   share a batch) move from epoch to epoch;
3. shuffle the order of the batches.

Sorting the whole epoch keeps the padding low: 2–4% at budgets of 4000–8000 on
1,000 read sentences of 1–8 s, where ``batch_size`` 16 needs ``group_size`` 32
for 4–6% (``bench/batching.py``, ``bench/README.md``). The price, as with ESPnet's
``batch_bins``, is that an utterance always shares its batch with utterances of
about its length.

An utterance whose own cost exceeds the budget forms a batch of its own (the
budget cannot be kept, the utterance is not dropped); :func:`build_sampler`
logs them. ``group_size`` and ``max_frames`` play no part.

Data-parallel training: every rank computes the same plan and takes every
``world_size``-th batch, the plan's first batches repeated up to a multiple of
the world size (:class:`~vc_toolkit.train.sampler.PlannedBatchSampler`), so all
ranks run the same number of steps; the budget is per rank. Since the ranks' batches
of one step differ in size, the loop feeds the learning-rate schedule
:meth:`~vc_toolkit.train.sampler.PlannedBatchSampler.step_size`, the step's
utterances summed over the ranks, which every rank computes alike.

Example:
    >>> s = FrameBudgetSampler([100, 20, 30, 90, 25], batch_frames=100, seed=0)
    >>> batches = s.all_batches(epoch=0)
    >>> sorted(i for b in batches for i in b)
    [0, 1, 2, 3, 4]
    >>> all(len(b) == 1 or s.cost(b) <= 100 for b in batches)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vc_toolkit import log
from vc_toolkit.config.core import ConfigError
from vc_toolkit.config.tag import Train
from vc_toolkit.train.sampler import GroupedBatchSampler, PlannedBatchSampler

logger = log.get("setup")


class FrameBudgetSampler(PlannedBatchSampler):
    """Batches of about ``batch_frames`` padded frames (source + target), deterministic.

    Args:
        lengths: Target frames of every utterance.
        batch_frames: Padded frames per batch, both streams together (per rank).
        extra_lengths: Source frames of every utterance (None: one stream only).
        seed: Base seed; each epoch uses ``(seed, epoch)``.
        shuffle: False packs the length-sorted list from the longest on, full budget
            and fixed order (evaluation).
        rank: This process' rank in data-parallel training.
        world_size: Number of ranks (sharding: :class:`PlannedBatchSampler`).

    Raises:
        ValueError: ``batch_frames`` below 1, or a bad rank.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_frames: int,
        extra_lengths: Sequence[int] | None = None,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_frames < 1:
            raise ValueError("batch_frames must be >= 1")
        super().__init__(lengths, extra_lengths, seed, shuffle, rank, world_size)
        self.batch_frames = batch_frames

    def utterance_costs(self) -> np.ndarray:
        """Cost of each utterance alone (its target plus source frames), (N,)."""
        return self.lengths if self.extra is None else self.lengths + self.extra

    def oversized(self) -> np.ndarray:
        """Indices of the utterances whose own cost exceeds the budget (a batch each)."""
        return np.flatnonzero(self.utterance_costs() > self.batch_frames)

    def _pack(self, order: np.ndarray, first_budget: float) -> list[list[int]]:
        """Cut ``order`` greedily into batches within the budget (the first: ``first_budget``)."""
        tgt = self.lengths[order].tolist()
        src = self.extra[order].tolist() if self.extra is not None else [0] * len(order)
        batches: list[list[int]] = []
        batch: list[int] = []
        top_t = top_s = 0
        budget = first_budget
        for i, t, s in zip(order.tolist(), tgt, src, strict=True):
            new_t, new_s = max(top_t, t), max(top_s, s)
            if batch and (len(batch) + 1) * (new_t + new_s) > budget:
                batches.append(batch)
                batch, new_t, new_s, budget = [], t, s, self.batch_frames
            batch.append(i)
            top_t, top_s = new_t, new_s
        if batch:
            batches.append(batch)
        return batches

    def all_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of ``epoch`` (all ranks), in training order."""
        if not self.shuffle:
            return self._pack(np.argsort(-self.key, kind="stable"), self.batch_frames)
        rng = np.random.default_rng([self.seed, epoch])
        ties = rng.permutation(len(self.lengths))
        order = ties[np.argsort(-self.key[ties], kind="stable")]
        batches = self._pack(order, rng.uniform(0.0, 1.0) * self.batch_frames)
        return [batches[i] for i in rng.permutation(len(batches))]


def check_budget(sampler: FrameBudgetSampler) -> None:
    """Refuse a budget below the median utterance; log the utterances above it.

    Raises:
        ConfigError: most utterances would be batches of one (the budget counts padded
            frames of source and target together, not seconds or one stream).
    """
    costs = sampler.utterance_costs()
    if len(costs) == 0:
        return
    median, budget = int(np.median(costs)), sampler.batch_frames
    if budget < median:
        raise ConfigError(
            f"train.batch_frames {budget} is below the median utterance's {median} frames "
            f"(source + target); use at least {8 * median} for batches of about 8 utterances"
        )
    over = sampler.oversized()
    if len(over):
        logger.warning(
            "train.batch_frames %d: %d utterance(s) are longer (up to %d frames, source + "
            "target); each forms a batch of its own",
            budget,
            len(over),
            int(costs[over].max()),
        )


def build_sampler(
    train: Train,
    tgt_frames: Sequence[int],
    src_frames: Sequence[int],
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
) -> PlannedBatchSampler:
    """The sampler ``train`` asks for: frame budget, or ``batch_size`` × ``group_size``.

    Args:
        train: The tag's ``train`` block.
        tgt_frames: Target frames per utterance.
        src_frames: Source frames per utterance.
        rank: This process' rank.
        world_size: Number of ranks.
        shuffle: False for evaluation (fixed, length-sorted batches).

    Raises:
        ConfigError: ``train.batch_frames`` is below the median utterance (training only).
    """
    if train.batch_frames is not None:
        sampler = FrameBudgetSampler(
            tgt_frames, train.batch_frames, src_frames, train.seed, shuffle, rank, world_size
        )
        if shuffle:
            check_budget(sampler)
        return sampler
    if not shuffle:  # evaluation: as before frame budgets existed
        return GroupedBatchSampler(tgt_frames, train.batch_size, shuffle=False)
    return GroupedBatchSampler(
        tgt_frames,
        train.batch_size,
        train.group_size,
        seed=train.seed,
        max_frames=train.max_frames,
        extra_lengths=src_frames,
        rank=rank,
        world_size=world_size,
    )


def describe(sampler: PlannedBatchSampler, epoch: int = 0) -> str:
    """One line on ``epoch``'s plan: the scheme, steps, utterances per step, padding.

    Example:
        >>> line = describe(FrameBudgetSampler([100, 20, 30, 90, 25], batch_frames=100))
        >>> line.split(": ")[1]
        '3 steps/epoch, utterances/step mean 1.7 min 1 max 3, padding 5.4%'
    """
    st = sampler.plan_stats(epoch)
    if isinstance(sampler, FrameBudgetSampler):
        scheme = f"batch_frames {sampler.batch_frames} (padded source + target)"
    else:
        scheme = f"batch_size {sampler.batch_size}, group_size {sampler.group_size}"  # type: ignore[attr-defined]
    ranks = f" per rank ({sampler.world_size} ranks)" if sampler.world_size > 1 else ""
    return (
        f"{scheme}: {st['steps']} steps/epoch{ranks}, utterances/step mean "
        f"{st['utts_mean']:.1f} min {st['utts_min']} max {st['utts_max']}, "
        f"padding {100 * st['padding']:.1f}%"
    )
