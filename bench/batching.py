"""Figure 2: padding and batches per epoch, length-grouped batches against random ones.

Length-grouped batches are the training sampler itself
(:class:`vc_toolkit.train.sampler.GroupedBatchSampler`); random batching shuffles
the utterances and cuts them into batches without sorting. Padding counts
source and target frames together, as the training log does:
``1 - real frames / (batch size * longest utterance)``, summed over both streams
and every batch of the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from timing import summarize

from vc_toolkit.train.sampler import GroupedBatchSampler


def random_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffle ``range(n)`` with ``(seed, epoch)`` and cut it into batches (no sorting).

    Example:
        >>> b = random_batches(5, 2, seed=0, epoch=0)
        >>> [len(x) for x in b], sorted(i for x in b for i in x)
        ([2, 2, 1], [0, 1, 2, 3, 4])
    """
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return [perm[i : i + batch_size].tolist() for i in range(0, n, batch_size)]


def bench_batching(
    tgt_frames: Sequence[int],
    src_frames: Sequence[int],
    batch_size: int = 16,
    group_sizes: Sequence[int] = (1, 4, 8, 16),
    epochs: int = 20,
    seed: int = 0,
    max_frames: int | None = None,
) -> dict:
    """Padding fraction and batches per epoch of each batching scheme, over ``epochs`` epochs.

    Args:
        tgt_frames: Target frames per utterance, (N,).
        src_frames: Source frames per utterance, (N,).
        batch_size: Utterances per batch.
        group_sizes: ``train.group_size`` values to measure.
        epochs: Epochs averaged (each epoch has its own shuffle).
        seed: Base seed.
        max_frames: ``train.max_frames`` of the sampler (None: no cap).

    Returns:
        ``{"utterances", "batch_size", "epochs", "schemes"}`` with, per scheme
        (``random``, ``group_1``, ...), ``padding_fraction`` (both streams, as training
        logs it), ``padding_tgt`` and ``padding_src`` (one stream each) and
        ``batches_per_epoch``, summarised over the epochs.
    """
    tgt, src = np.asarray(tgt_frames), np.asarray(src_frames)
    if len(tgt) != len(src) or len(tgt) == 0:
        raise ValueError("tgt_frames and src_frames must be non-empty and of equal length")
    schemes: dict[str, dict] = {}
    ref = GroupedBatchSampler(tgt, batch_size, 1, seed=seed, extra_lengths=src)
    plans = [random_batches(len(tgt), batch_size, seed, e) for e in range(epochs)]
    schemes["random"] = _scheme(ref, plans, tgt, src)
    for g in group_sizes:
        sampler = GroupedBatchSampler(
            tgt, batch_size, g, seed=seed, max_frames=max_frames, extra_lengths=src
        )
        plans = [sampler.all_batches(e) for e in range(epochs)]
        schemes[f"group_{g}"] = _scheme(sampler, plans, tgt, src)
    return {
        "utterances": len(tgt),
        "batch_size": batch_size,
        "epochs": epochs,
        "max_frames": max_frames,
        "schemes": schemes,
    }


def _scheme(sampler: GroupedBatchSampler, plans: list, tgt: np.ndarray, src: np.ndarray) -> dict:
    only_tgt = GroupedBatchSampler(tgt, sampler.batch_size)
    only_src = GroupedBatchSampler(src, sampler.batch_size)
    return {
        "padding_fraction": summarize([sampler.padding_fraction(p) for p in plans]),
        "padding_tgt": summarize([only_tgt.padding_fraction(p) for p in plans]),
        "padding_src": summarize([only_src.padding_fraction(p) for p in plans]),
        "batches_per_epoch": summarize([len(p) for p in plans]),
    }
