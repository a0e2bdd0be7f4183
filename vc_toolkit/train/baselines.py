"""Reference dev losses a run is judged against, computed once before its first step.

* ``initial``: every dev loss of the model before training (random weights, or the
  loaded pretrain weights of a fine-tuning tag — so its load is visible at once).
* ``copy_source``: the mel L1 of doing no conversion at all: the source log-mel,
  put into the target's normalisation and time-aligned to the target by the
  ground-truth DTW durations of stage 1 (an *oracle* timing, so this floor is if
  anything too kind). It is the ``mel``/``post_mel`` a model must beat to have
  learnt any spectral conversion.

Both land in ``summary.json`` under ``baselines`` and in TensorBoard at step 0.

Example:
    >>> import torch
    >>> from vc_toolkit.data.batch import Batch
    >>> st = {"src_mel_mean": [0.0], "src_mel_std": [1.0], "tgt_mel_mean": [1.0],
    ...       "tgt_mel_std": [2.0]}
    >>> z = torch.zeros(1, 2)
    >>> b = Batch(["u"], torch.tensor([[[3.0], [5.0]]]), z, z, z, torch.tensor([2]),
    ...           torch.zeros(1, 2, 1), z, z, z, torch.tensor([2]),
    ...           torch.tensor([[0, 2]]), z.long(), z.long(), torch.tensor([0]))
    >>> copy_source_mel(b, st, r=1)[0, :, 0].tolist()  # frame 0 dropped, frame 1 twice
    [2.0, 2.0]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vc_toolkit.data.batch import Batch
from vc_toolkit.features.stats import denormalize_mel
from vc_toolkit.models.frames import lengths_to_mask, stack_frames, unstack_frames
from vc_toolkit.models.terms import masked_l1
from vc_toolkit.models.variance import regulate_length


def _vector(stats: dict, key: str, like: Tensor) -> Tensor:
    return torch.as_tensor(np.asarray(stats[key]), dtype=like.dtype, device=like.device)


def copy_source_mel(batch: Batch, stats: dict, r: int) -> Tensor:
    """The source log-mel as a "conversion": target normalisation, DTW timing.

    Args:
        batch (Batch): a batch; ``src_mel`` normalised with the source statistics.
        stats (dict): stage-1 statistics (``src_mel_mean`` ... ``tgt_mel_std``, (n_mels,)).
        r (int): reduction factor (``batch.duration`` counts reduced frames).

    Returns:
        Tensor: (B, r * max(sum(duration)), n_mels), comparable with ``batch.tgt_mel``.
    """
    log_mel = denormalize_mel(batch.src_mel, stats, side="src")
    mean, std = _vector(stats, "tgt_mel_mean", log_mel), _vector(stats, "tgt_mel_std", log_mel)
    in_target_norm = (log_mel - mean) / std
    reduced = stack_frames(in_target_norm, r)[:, : batch.duration.shape[1]]
    expanded, _ = regulate_length(reduced, batch.duration)
    return unstack_frames(expanded, r)


@torch.no_grad()
def copy_source_losses(batches, stats: dict, r: int) -> dict[str, float]:
    """Utterance-weighted mean ``mel`` L1 of :func:`copy_source_mel` over ``batches``.

    ``post_mel`` is the same number (no postnet), reported under both names so the
    baseline sits beside either loss.
    """
    total, count = 0.0, 0
    for batch in batches:
        pred = copy_source_mel(batch, stats, r)
        mask = lengths_to_mask(batch.tgt_lens, batch.tgt_mel.shape[1])
        total += float(masked_l1(pred, batch.tgt_mel, mask)) * len(batch)
        count += len(batch)
    value = total / max(count, 1)
    return {"mel": value, "post_mel": value}
