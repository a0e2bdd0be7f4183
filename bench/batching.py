"""Figure 2: padding and batches per epoch, length-grouped batches against random ones.

Length-grouped batches are the training sampler itself
(:class:`vc_toolkit.train.sampler.GroupedBatchSampler`); random batching shuffles
the utterances and cuts them into batches without sorting; frame-budget batches
(``train.batch_frames``) are :class:`vc_toolkit.train.frame_sampler.FrameBudgetSampler`.
Padding counts source and target frames together, as the training log does:
``1 - real frames / (batch size * longest utterance)``, summed over both streams
and every batch of the epoch.

:func:`bench_read_speech` measures the same on a synthetic corpus of read speech
(:func:`read_speech_lengths`: lengths only, no audio), the settings grid behind the
recommended ``group_size`` and ``batch_frames``; ``python bench/batching.py``
prints it as a table.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
from timing import summarize

from vc_toolkit.train.frame_sampler import FrameBudgetSampler
from vc_toolkit.train.sampler import GroupedBatchSampler, PlannedBatchSampler

FRAMES_PER_SECOND = 22050 / 256
"""Mel frames per second of the shipped spks (22.05 kHz, hop 256)."""


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
    batch_frames: Sequence[int] = (),
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
        batch_frames: ``train.batch_frames`` values to measure (schemes ``frames_<N>``).

    Returns:
        ``{"utterances", "batch_size", "epochs", "schemes"}`` with, per scheme
        (``random``, ``group_1``, ..., ``frames_8000``, ...), ``padding_fraction`` (both
        streams, as training logs it), ``padding_tgt`` and ``padding_src`` (one stream
        each), ``batches_per_epoch`` and ``utts_per_batch`` (mean of each epoch),
        summarised over the epochs.
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
    for budget in batch_frames:
        frames = FrameBudgetSampler(tgt, budget, src, seed=seed)
        plans = [frames.all_batches(e) for e in range(epochs)]
        schemes[f"frames_{budget}"] = _scheme(frames, plans, tgt, src)
    return {
        "utterances": len(tgt),
        "batch_size": batch_size,
        "epochs": epochs,
        "max_frames": max_frames,
        "schemes": schemes,
    }


def _scheme(sampler: PlannedBatchSampler, plans: list, tgt: np.ndarray, src: np.ndarray) -> dict:
    only_tgt = GroupedBatchSampler(tgt, 1)
    only_src = GroupedBatchSampler(src, 1)
    return {
        "padding_fraction": summarize([sampler.padding_fraction(p) for p in plans]),
        "padding_tgt": summarize([only_tgt.padding_fraction(p) for p in plans]),
        "padding_src": summarize([only_src.padding_fraction(p) for p in plans]),
        "batches_per_epoch": summarize([len(p) for p in plans]),
        "utts_per_batch": summarize([len(tgt) / len(p) for p in plans]),
    }


def read_speech_lengths(
    n: int = 1000,
    sigma: float = 0.3,
    ratio_sd: float = 0.05,
    seed: int = 0,
    median_seconds: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Target and source frames of ``n`` synthetic parallel read sentences.

    Target durations are log-normal (median ``median_seconds``, log-sd ``sigma``)
    clipped to 1-8 s, at :data:`FRAMES_PER_SECOND`; each source is the target times
    ``exp(N(0, ratio_sd))`` (the other reader of the same sentence is a few percent
    faster or slower). ``sigma`` 0.25 reproduces the 15.4% padding the demo recipe
    (``batch_size`` 16, ``group_size`` 4) logged on a real corpus of this kind; 0.35
    spreads the sentences over the whole 1-8 s.

    Example:
        >>> tgt, src = read_speech_lengths(200, seed=1)
        >>> len(tgt), int(tgt.min()) >= 86, int(tgt.max()) <= 690
        (200, True, True)
    """
    rng = np.random.default_rng(seed)
    seconds = np.exp(rng.normal(np.log(median_seconds), sigma, size=n)).clip(1.0, 8.0)
    tgt = np.round(seconds * FRAMES_PER_SECOND).astype(np.int64)
    src = np.round(tgt * np.exp(rng.normal(0.0, ratio_sd, size=n))).astype(np.int64)
    return tgt, np.maximum(src, 1)


READ_SPEECH = {"calibrated": 0.25, "wide": 0.35}
"""Corpora of :func:`bench_read_speech`: name → log-sd of the durations."""


def bench_read_speech(
    batch_sizes: Sequence[int] = (8, 16, 32),
    group_sizes: Sequence[int] = (4, 8, 16, 32, 64),
    batch_frames: Sequence[int] = (4000, 8000, 12000, 16000, 24000),
    ratio_sds: Sequence[float] = (0.05, 0.08),
    epochs: int = 10,
    seed: int = 0,
) -> list[dict]:
    """Padding of every setting on the corpora of :data:`READ_SPEECH` (1,000 sentences).

    Returns:
        One row per corpus, source/target ratio spread and setting: ``corpus``,
        ``ratio_sd``, ``setting`` (``batch_size 16, group_size 8`` or ``batch_frames
        8000``), and the medians over ``epochs`` of ``padding``, ``utts_per_step``
        (utterances per batch) and ``steps`` (batches per epoch).
    """
    rows = []
    for corpus, sigma in READ_SPEECH.items():
        for sd in ratio_sds:
            tgt, src = read_speech_lengths(sigma=sigma, ratio_sd=sd, seed=seed)
            for b in batch_sizes:
                rec = bench_batching(tgt, src, b, group_sizes, epochs, seed)
                for g in group_sizes:
                    scheme = rec["schemes"][f"group_{g}"]
                    rows.append(_row(corpus, sd, f"batch_size {b}, group_size {g}", scheme))
            rec = bench_batching(tgt, src, 16, (), epochs, seed, batch_frames=batch_frames)
            for budget in batch_frames:
                scheme = rec["schemes"][f"frames_{budget}"]
                rows.append(_row(corpus, sd, f"batch_frames {budget}", scheme))
    return rows


def _row(corpus: str, sd: float, setting: str, scheme: dict) -> dict:
    return {
        "corpus": corpus,
        "ratio_sd": sd,
        "setting": setting,
        "padding": scheme["padding_fraction"]["median"],
        "utts_per_step": scheme["utts_per_batch"]["median"],
        "steps": scheme["batches_per_epoch"]["median"],
    }


def main() -> None:
    """Print :func:`bench_read_speech` as a Markdown table."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--epochs", type=int, default=10, help="epochs averaged per setting")
    args = parser.parse_args()
    print("| corpus | src/tgt ratio sd | setting | padding | utterances/step | steps/epoch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in bench_read_speech(epochs=args.epochs):
        print(
            f"| {r['corpus']} | {r['ratio_sd']:.2f} | {r['setting']} | {100 * r['padding']:.1f}% "
            f"| {r['utts_per_step']:.1f} | {r['steps']:.0f} |"
        )


if __name__ == "__main__":
    main()
