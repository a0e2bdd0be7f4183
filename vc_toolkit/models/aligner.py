"""Learned text-to-mel aligner (``model.aligner``): no external aligner needed.

Following Badlani et al., "One TTS Alignment To Rule Them All" (ICASSP 2022):

1. A text encoder (convs over the token hidden sequence) and a mel encoder (convs over
   the mel frames) map both sides into one space; the soft alignment of frame ``t`` is a
   softmax over the tokens of ``-temperature * |mel_enc(t) - text_enc(n)|^2``, plus the
   log of a beta-binomial prior that favours the diagonal when ``prior`` is on.
2. It is trained with the forward-sum loss (:func:`forward_sum_loss`, a CTC loss over the
   tokens in order; Graves et al. 2006), which sums over every monotonic alignment.
3. Monotonic alignment search (:func:`monotonic_alignment_search`, Viterbi as in Kim et
   al., Glow-TTS 2020) turns the soft alignment into a hard one, hence integer durations
   (:func:`durations_from_alignment`) summing exactly to the frame count.
4. After ``bin_start_steps`` the binarisation loss (:func:`binarization_loss`) pulls the
   soft alignment towards the hard one (its weight ramps in by
   :meth:`~vc_toolkit.config.aligner.Aligner.bin_scale`).

Choices are registered in :data:`~vc_toolkit.models.registry.ALIGNERS` and built as
``cls(text_dim, mel_dim, cfg)`` with ``cfg`` the :class:`~vc_toolkit.config.aligner.Aligner`
block. :func:`attention_image` draws an alignment for TensorBoard.

Example:
    >>> from vc_toolkit.config.aligner import Aligner
    >>> from vc_toolkit.models.frames import lengths_to_mask
    >>> aligner = ALIGNERS.get("conv")(16, 20, Aligner(hidden=8))
    >>> text, mel = torch.randn(2, 4, 16), torch.randn(2, 9, 20)
    >>> text_lens, mel_lens = torch.tensor([4, 3]), torch.tensor([9, 7])
    >>> log_attn, _ = aligner(text, lengths_to_mask(text_lens), mel, lengths_to_mask(mel_lens))
    >>> loss = forward_sum_loss(log_attn, text_lens, mel_lens)
    >>> hard = monotonic_alignment_search(log_attn, text_lens, mel_lens)
    >>> durations_from_alignment(hard).sum(dim=1).tolist()
    [9, 7]
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vc_toolkit.config.aligner import Aligner
from vc_toolkit.models.layers import MaskedConv
from vc_toolkit.models.mas import (
    TooFewFramesError,
    beta_binomial_prior,
    binarization_loss,
    durations_from_alignment,
    forward_sum_loss,
    monotonic_alignment_search,
)
from vc_toolkit.models.registry import ALIGNERS, Choice

__all__ = [
    "ALIGNERS",
    "AlignerBase",
    "ConvAligner",
    "TooFewFramesError",
    "attention_image",
    "beta_binomial_prior",
    "binarization_loss",
    "durations_from_alignment",
    "forward_sum_loss",
    "monotonic_alignment_search",
]


class AlignerBase(Choice, nn.Module, ABC):
    """A learned aligner: token hidden sequence and mel frames → soft alignment.

    Registered classes are built as ``cls(text_dim, mel_dim, cfg)`` with ``cfg`` the
    :class:`~vc_toolkit.config.aligner.Aligner` block.
    """

    @abstractmethod
    def forward(
        self,
        text: Tensor,
        text_mask: Tensor,
        mel: Tensor,
        mel_mask: Tensor,
        prior: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Soft alignment of every mel frame over the tokens.

        Args:
            text (Tensor): token hidden sequence, (B, N, text_dim).
            text_mask (Tensor): real tokens, (B, N) bool.
            mel (Tensor): mel frames, (B, T, mel_dim).
            mel_mask (Tensor): real frames, (B, T) bool.
            prior (Tensor | None): log-prior added to the logits, (B, T, N) (e.g.
                :func:`beta_binomial_prior`); ``None``: the config decides.

        Returns:
            tuple[Tensor, Tensor]: ``log_attn`` (B, T, N), a log-softmax over the real
            tokens of (logits + prior), ``-inf`` on padded tokens and 0 on padded frames;
            and the raw logits (B, T, N) before the prior, masked the same way.
            (``hard * log_attn`` is NaN where ``log_attn`` is ``-inf``: use
            :func:`binarization_loss`, which selects instead of multiplying.)
        """


def _encode(convs: nn.ModuleList, x: Tensor, mask: Tensor) -> Tensor:
    """Masked convs (each zeroes padded inputs) with ReLU between them."""
    for i, conv in enumerate(convs):
        x = conv(x, mask)
        if i < len(convs) - 1:
            x = F.relu(x)
    return x


@ALIGNERS.register("conv")
class ConvAligner(AlignerBase):
    """Conv encoders and a squared-L2 attention (Badlani et al. 2022).

    Text encoder: conv(``text_kernel``) → ReLU → conv(1); mel encoder: conv(``mel_kernel``)
    → ReLU → conv(1) → ReLU → conv(1); both ``hidden`` wide. Logits are
    ``-temperature * |q_t - k_n|^2``. With ``cfg.prior`` and no ``prior`` argument, the
    beta-binomial prior of the masks' lengths (``cfg.prior_scaling``) is added. The
    attention is computed in float32 even under autocast (the distances need the range).

    Args:
        text_dim (int): width of the token hidden sequence.
        mel_dim (int): width of a mel frame.
        cfg (Aligner): the ``model.aligner`` block.
    """

    def __init__(self, text_dim: int, mel_dim: int, cfg: Aligner) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.text_encoder = nn.ModuleList(
            [MaskedConv(text_dim, h, cfg.text_kernel), MaskedConv(h, h, 1)]
        )
        self.mel_encoder = nn.ModuleList(
            [MaskedConv(mel_dim, h, cfg.mel_kernel), MaskedConv(h, h, 1), MaskedConv(h, h, 1)]
        )

    def encode(
        self, text: Tensor, text_mask: Tensor, mel: Tensor, mel_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Keys and queries of the attention, in float32.

        Args:
            text (Tensor): token hidden sequence, (B, N, text_dim).
            text_mask (Tensor): real tokens, (B, N) bool.
            mel (Tensor): mel frames, (B, T, mel_dim).
            mel_mask (Tensor): real frames, (B, T) bool.

        Returns:
            tuple[Tensor, Tensor]: keys (B, N, hidden) and queries (B, T, hidden); what
            padded positions hold is never used.
        """
        keys = _encode(self.text_encoder, text.float(), text_mask)
        queries = _encode(self.mel_encoder, mel.float(), mel_mask)
        return keys, queries

    def forward(
        self,
        text: Tensor,
        text_mask: Tensor,
        mel: Tensor,
        mel_mask: Tensor,
        prior: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        with torch.autocast(device_type=mel.device.type, enabled=False):
            keys, queries = self.encode(text, text_mask, mel, mel_mask)
            dist = (
                queries.pow(2).sum(-1)[:, :, None]
                + keys.pow(2).sum(-1)[:, None, :]
                - 2.0 * torch.bmm(queries, keys.transpose(1, 2))
            ).clamp(min=0.0)
            logits = -self.cfg.temperature * dist
            if prior is None and self.cfg.prior:
                prior = beta_binomial_prior(
                    text_mask.sum(1),
                    mel_mask.sum(1),
                    self.cfg.prior_scaling,
                    max_frames=mel.shape[1],
                    max_tokens=text.shape[1],
                )
            scores = logits if prior is None else logits + prior.float()
            tok, frames = ~text_mask[:, None, :], ~mel_mask[:, :, None]
            log_attn = F.log_softmax(scores.masked_fill(tok, float("-inf")), dim=-1)
            log_attn = log_attn.masked_fill(frames, 0.0)
            logits = logits.masked_fill(tok, float("-inf")).masked_fill(frames, 0.0)
        return log_attn, logits


def attention_image(
    log_attn: Tensor | np.ndarray,
    hard: Tensor | np.ndarray | None,
    text_len: int,
    mel_len: int,
    title: str = "",
):
    """Figure of one utterance's alignment, for TensorBoard (``RunLog.figure``).

    Top: the soft alignment (probabilities, tokens up, frames across); bottom: the hard
    alignment (MAS) when given, drawn like :mod:`vc_toolkit.plots` draws mels.

    Args:
        log_attn (Tensor | np.ndarray): soft alignment, (T, N) or (1, T, N).
        hard (Tensor | np.ndarray | None): hard alignment, same shape, or None.
        text_len (int): real tokens N_b.
        mel_len (int): real frames T_b.
        title (str): figure title (e.g. the utterance id).

    Returns:
        matplotlib.figure.Figure: the figure (close it after logging, or let
        ``SummaryWriter.add_figure`` close it).
    """
    from vc_toolkit.plots import plt  # the Agg backend, as the toolkit's other figures

    def crop(x: Tensor | np.ndarray) -> np.ndarray:
        x = x.detach().float().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
        x = x.reshape(x.shape[-2:]) if x.ndim == 3 else x
        return x[:mel_len, :text_len].astype(np.float32)

    panels = [("soft alignment (probability)", np.exp(crop(log_attn)))]
    if hard is not None:
        panels.append(("hard alignment (monotonic alignment search)", crop(hard)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.5 * len(panels)), squeeze=False)
    for ax, (label, img) in zip(axes[:, 0], panels, strict=True):
        ax.imshow(img.T, origin="lower", aspect="auto", vmin=0, vmax=1, interpolation="none")
        ax.set_ylabel("token")
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("frame")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
