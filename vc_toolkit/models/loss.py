"""Training loss of the FastSpeech2-style VC model.

Every term is a mean over real (unpadded) elements only, so padding never
changes a loss:

- ``mel``, ``post_mel``: L1 between predicted and target mel, before/after the postnet;
- ``pitch``, ``energy``: MSE of the normalised log-F0 / log energy per frame;
- ``duration``: MSE between the predicted and ``log(d + 1)`` target durations
  [Ren et al., "FastSpeech 2", ICLR 2021];
- ``gmm``, ``global_gmm``: negative log-likelihood of the extracted prosody
  embeddings under the predicted mixtures (per real segment / per utterance),
  with ``model.prosody.type: gmm`` (and ``use_global``);
- ``total``: the weighted sum, weights from :class:`~vc_toolkit.config.tag.Loss`
  (``beta`` and ``g_beta`` for the two NLLs).

Which terms a model has is declared by its parts
(:func:`vc_toolkit.models.registry.loss_terms`); :class:`VCLoss` sums exactly
those.

Example:
    >>> import torch
    >>> mask = torch.tensor([[True, False]])
    >>> float(masked_l1(torch.tensor([[[1.0], [9.0]]]), torch.zeros(1, 2, 1), mask))
    1.0
"""

from __future__ import annotations

from torch import Tensor, nn

from vc_toolkit.config.tag import Loss, ModelConfig
from vc_toolkit.data.batch import Batch
from vc_toolkit.models.frames import masked_mean
from vc_toolkit.models.registry import loss_terms


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


class VCLoss(nn.Module):
    """Weighted sum of the loss terms a model declares.

    Args:
        cfg (Loss): loss weights (each term is weighted by the field its ``weight`` names).
        model (ModelConfig | None): the model whose terms are summed
            (:func:`~vc_toolkit.models.registry.loss_terms`); ``None``: the default model
            (``conv`` pitch, no prosody).
    """

    def __init__(self, cfg: Loss, model: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.terms = loss_terms(model if model is not None else ModelConfig())

    def forward(self, outputs: dict[str, Tensor], batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Compute the losses.

        Args:
            outputs (dict[str, Tensor]): :meth:`FastSpeech2VC.forward` outputs; the masks
                ``src_mask`` (B, Ls) reduced and ``tgt_mask`` (B, Tt) select the real elements.
            batch (Batch): the batch the outputs were computed from.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: ``total`` and every declared term by its name
            (in declaration order), then ``total``.
        """
        terms = {term.name: term.fn(outputs, batch) for term in self.terms}
        total = sum(getattr(self.cfg, term.weight) * terms[term.name] for term in self.terms)
        terms["total"] = total
        return total, terms
