"""Training loss of the FastSpeech2-style VC model.

Every term is a mean over real (unpadded) elements only, so padding never
changes a loss:

- ``mel``, ``post_mel``: L1 between predicted and target mel, before/after the postnet;
- ``pitch``, ``energy``: MSE of the normalised log-F0 / log energy per frame;
- ``duration``: MSE between the predicted and ``log(d + 1)`` target durations
  [Ren et al., "FastSpeech 2", ICLR 2021];
- ``gmm``, ``global_gmm``: negative log-likelihood of the extracted prosody
  embeddings under the predicted mixtures (per real segment / per utterance),
  present only when the model outputs them;
- ``total``: the weighted sum, weights from :class:`~vc_toolkit.config.tag.Loss`
  (``beta`` and ``g_beta`` for the two NLLs).

Example:
    >>> import torch
    >>> mask = torch.tensor([[True, False]])
    >>> float(masked_l1(torch.tensor([[[1.0], [9.0]]]), torch.zeros(1, 2, 1), mask))
    1.0
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vc_toolkit.config.tag import Loss
from vc_toolkit.data.batch import Batch
from vc_toolkit.models.frames import masked_mean
from vc_toolkit.models.prosody import gmm_log_likelihood


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
    """Weighted sum of the VC training losses.

    Args:
        cfg (Loss): loss weights.
    """

    def __init__(self, cfg: Loss) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, outputs: dict[str, Tensor], batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Compute the losses.

        Args:
            outputs (dict[str, Tensor]): :meth:`FastSpeech2VC.forward` outputs; the masks
                ``src_mask`` (B, Ls) reduced and ``tgt_mask`` (B, Tt) select the real elements.
            batch (Batch): the batch the outputs were computed from.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: ``total`` and every term by its name in
            ``LOSS_NAMES`` (``gmm``/``global_gmm`` only when the outputs carry mixtures).
        """
        src_mask, tgt_mask = outputs["src_mask"], outputs["tgt_mask"]
        duration = batch.duration.to(outputs["log_duration"].dtype)
        terms = {
            "mel": masked_l1(outputs["mel"], batch.tgt_mel, tgt_mask),
            "post_mel": masked_l1(outputs["post_mel"], batch.tgt_mel, tgt_mask),
            "duration": masked_mse(outputs["log_duration"], torch.log1p(duration), src_mask),
            "pitch": masked_mse(outputs["pitch"], batch.tgt_lf0, tgt_mask),
            "energy": masked_mse(outputs["energy"], batch.tgt_energy, tgt_mask),
        }
        if "gmm_logits" in outputs:
            terms["gmm"] = masked_mean(-self._log_likelihood(outputs, "gmm"), outputs["seg_mask"])
        if "global_gmm_logits" in outputs:
            terms["global_gmm"] = -self._log_likelihood(outputs, "global_gmm").mean()
        weights = {
            "mel": self.cfg.mel,
            "post_mel": self.cfg.post_mel,
            "duration": self.cfg.duration,
            "pitch": self.cfg.pitch,
            "energy": self.cfg.energy,
            "gmm": self.cfg.beta,
            "global_gmm": self.cfg.g_beta,
        }
        total = sum(weights[name] * value for name, value in terms.items())
        terms["total"] = total
        return total, terms

    @staticmethod
    def _log_likelihood(outputs: dict[str, Tensor], prefix: str) -> Tensor:
        target_key = "prosody_target" if prefix == "gmm" else "global_prosody_target"
        mixture = tuple(outputs[f"{prefix}_{part}"] for part in ("logits", "means", "log_scales"))
        return gmm_log_likelihood(outputs[target_key].detach(), mixture)
