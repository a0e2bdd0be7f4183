"""The terms every model's loss has, and the masked means they are built from.

Every term is a mean over real (unpadded) elements only, so padding never
changes a loss: ``mel``/``post_mel`` (L1 of the mel before/after the postnet),
``duration`` (MSE of ``log(d + 1)`` [Ren et al., "FastSpeech 2", ICLR 2021]) and
``energy`` (MSE of the normalised log energy). The interchangeable parts declare
their own terms beside their classes (``pitch`` in
:mod:`vc_toolkit.models.interfaces`, the wGMM NLLs in :mod:`vc_toolkit.models.prosody`).

Example:
    >>> import torch
    >>> mask = torch.tensor([[True, False]])
    >>> float(masked_l1(torch.tensor([[[1.0], [9.0]]]), torch.zeros(1, 2, 1), mask))
    1.0
"""

from __future__ import annotations

import torch
from torch import Tensor

from vc_toolkit.data.batch import Batch
from vc_toolkit.models.frames import masked_mean
from vc_toolkit.models.registry import LossTerm


def _crop(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Cut prediction, target and mask to their common time length."""
    n = min(pred.shape[1], target.shape[1], mask.shape[1])
    return pred[:, :n], target[:, :n], mask[:, :n]


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute error over real frames; (B, T, ...) pairs, mask (B, T) → scalar."""
    pred, target, mask = _crop(pred, target, mask)
    return masked_mean((pred - target).abs(), mask)


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over real frames; (B, T, ...) pairs, mask (B, T) → scalar."""
    pred, target, mask = _crop(pred, target, mask)
    return masked_mean((pred - target) ** 2, mask)


def _mel_loss(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    return masked_l1(outputs["mel"], batch.tgt_mel, outputs["tgt_mask"])


def _post_mel_loss(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    return masked_l1(outputs["post_mel"], batch.tgt_mel, outputs["tgt_mask"])


def _duration_loss(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    duration = batch.duration.to(outputs["log_duration"].dtype)
    return masked_mse(outputs["log_duration"], torch.log1p(duration), outputs["src_mask"])


def _energy_loss(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    return masked_mse(outputs["energy"], batch.tgt_energy, outputs["tgt_mask"])


CORE_LOSS_TERMS = (
    LossTerm("mel", "mel", _mel_loss),
    LossTerm("post_mel", "post_mel", _post_mel_loss, header="dev post_mel"),
    LossTerm("duration", "duration", _duration_loss, header="dev dur"),
    LossTerm("energy", "energy", _energy_loss, header="dev energy"),
)
"""Terms of every model: mel L1 before/after the postnet, log-duration and energy MSE."""
