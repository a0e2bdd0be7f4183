"""The interfaces of the model's interchangeable parts (see :mod:`vc_toolkit.models.registry`).

- :class:`PitchPredictorBase` (``model.pitch_predictor.type``): pitch from the
  length-regulated hidden sequence, ``r`` values per reduced target frame. It
  declares the ``pitch`` loss term.
- :class:`ProsodyBase` (``model.prosody.type``): a module that adds prosody to
  the encoder output and returns whatever its loss terms need.

Segment ids: every reduced target frame carries the index of the sentence
segment it belongs to (``seg_ids``, (B, L) long), the source segments mapped
through the durations; predictors may ignore them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from torch import Tensor, nn

from vc_toolkit.config.tag import PitchPredictor
from vc_toolkit.data.batch import Batch
from vc_toolkit.models.registry import Choice, LossTerm
from vc_toolkit.models.terms import masked_mse


def _pitch_loss(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """MSE of the normalised log-F0 over real target frames."""
    return masked_mse(outputs["pitch"], batch.tgt_lf0, outputs["tgt_mask"])


PITCH_TERM = LossTerm("pitch", "pitch", _pitch_loss, header="dev pitch")


class PitchPredictorBase(Choice, nn.Module, ABC):
    """A pitch predictor: ``(B, L, hidden)`` at reduced target frames → ``(B, L, r)``.

    Registered classes are built as ``cls(in_dim, cfg, r)`` with ``in_dim`` the model
    width, ``cfg`` the :class:`~vc_toolkit.config.tag.PitchPredictor` block and ``r`` the
    reduction factor.
    """

    @abstractmethod
    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        target: Tensor | None = None,
        seg_ids: Tensor | None = None,
    ) -> Tensor:
        """Training prediction.

        Args:
            x (Tensor): hidden sequence at reduced target frames, (B, L, hidden).
            mask (Tensor): real frames, (B, L) bool.
            target (Tensor | None): ground-truth normalised log-F0, (B, L, r), for teacher
                forcing (autoregressive predictors; others ignore it).
            seg_ids (Tensor | None): sentence segment of every frame, (B, L) long.

        Returns:
            Tensor: predicted pitch, (B, L, r), zero on padding.
        """

    @abstractmethod
    def infer(self, x: Tensor, mask: Tensor, seg_ids: Tensor | None = None) -> Tensor:
        """Inference prediction (no target); arguments and result as :meth:`forward`."""

    @classmethod
    def loss_terms(cls, cfg: PitchPredictor) -> tuple[LossTerm, ...]:
        """``pitch``: MSE of the normalised log-F0 (weight ``loss.pitch``)."""
        return (PITCH_TERM,)

    @classmethod
    def all_loss_terms(cls) -> tuple[LossTerm, ...]:
        return (PITCH_TERM,)


class ProsodyBase(Choice, nn.Module, ABC):
    """A prosody module acting on the encoder output.

    Registered classes are built as ``cls(hidden, mel_dim, cfg)`` with ``mel_dim`` the width
    of a reduced target mel frame (``n_mels * r``) and ``cfg`` the
    :class:`~vc_toolkit.config.tag.Prosody` block. ``segment_outputs`` names the
    :meth:`infer` outputs that hold one row per source segment, (B, K, ...).
    """

    segment_outputs: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def forward(
        self,
        enc: Tensor,
        src_mask: Tensor,
        src_ids: Tensor,
        n_cols: int,
        tgt_mel: Tensor,
        tgt_mask: Tensor,
        tgt_ids: Tensor,
        seg_mask: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Training: the encoder output with prosody added, and the outputs its loss needs.

        Args:
            enc (Tensor): encoder output, (B, Ls, hidden).
            src_mask (Tensor): real reduced source frames, (B, Ls) bool.
            src_ids (Tensor): source segment ids, (B, Ls) long.
            n_cols (int): segment columns K.
            tgt_mel (Tensor): reduced target mel, (B, Lt, mel_dim).
            tgt_mask (Tensor): real reduced target frames, (B, Lt) bool.
            tgt_ids (Tensor): target segment ids, (B, Lt) long.
            seg_mask (Tensor | None): real segments, (B, K) bool (``None``: every segment
                that has a source frame).

        Returns:
            tuple[Tensor, dict[str, Tensor]]: (B, Ls, hidden), and named outputs.
        """

    @abstractmethod
    def infer(
        self,
        enc: Tensor,
        src_mask: Tensor,
        src_ids: Tensor,
        n_cols: int,
        mode: str = "mean",
        temperature: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Inference: the encoder output with prosody added, and named outputs.

        Args:
            enc (Tensor): encoder output, (B, Ls, hidden).
            src_mask (Tensor): real reduced source frames, (B, Ls) bool.
            src_ids (Tensor): source segment ids, (B, Ls) long.
            n_cols (int): segment columns K.
            mode (str): how to choose prosody (``mean`` or ``sample``).
            temperature (float): sampling temperature.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: (B, Ls, hidden), and named outputs (those in
            ``segment_outputs`` are (B, K, ...)).
        """
