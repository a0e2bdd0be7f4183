"""ARNAR pitch: autoregressive within each sentence segment, independent across segments.

The idea follows the ``pitch_ARNAR`` predictor of vc_tts_template
(Y. Nishimura): the pitch of a sentence is predicted autoregressively, frame by
frame, but the sentences of an utterance do not feed each other — the
previous-pitch history and the LSTM state restart at every segment start, so
segments are autoregressive inside and non-autoregressive across. Everything
else is the ``ar`` predictor (:mod:`vc_toolkit.models.ar_pitch`), with the same
parameters and settings (``model.pitch_predictor.ar``): a conv front-end over
the WHOLE utterance (so a frame near a boundary still sees its neighbours),
then an LSTM and a projection per reduced frame.

The segments of all utterances of a batch are packed as rows of one batch,
(N_segments, longest segment, channels) (:class:`SegmentPacking`): training
runs the teacher-forced LSTM on it, inference the autoregressive decoding (the
folded fast path when :meth:`~ARPitchPredictor.foldable`), and the results are
scattered back to (B, L, r). Inference thus takes as many steps as the longest
segment, not the longest utterance. Without segments (``seg_ids`` ``None`` or
all zeros) an utterance is one segment and the predictor equals ``ar``.

Example:
    >>> import torch
    >>> from vc_toolkit.config.tag import PitchPredictor, ARPitch
    >>> cfg = PitchPredictor(type="arnar", channels=8, ar=ARPitch(lstm_hidden=8, zoneout=0.0))
    >>> pred = ARNARPitchPredictor(16, cfg, r=2).eval()
    >>> x, mask = torch.randn(1, 5, 16), torch.ones(1, 5, dtype=torch.bool)
    >>> seg_ids = torch.tensor([[0, 0, 0, 1, 1]])
    >>> pred.infer(x, mask, seg_ids).shape
    torch.Size([1, 5, 2])
    >>> SegmentPacking(seg_ids, mask).lengths.tolist()
    [3, 2]
"""

from __future__ import annotations

import torch
from torch import Tensor

from vc_toolkit.models.ar_pitch import ARPitchPredictor
from vc_toolkit.models.registry import PITCH_PREDICTORS


class SegmentPacking:
    """Where each real frame goes when the segments of a batch are stacked as rows.

    A segment is a run of consecutive real frames with the same segment id; segments are
    numbered row by row (utterance 0's first, ...), and a frame's column is its position
    inside its segment.

    Args:
        seg_ids (Tensor | None): segment id of every frame, (B, L) long (values on padding
            are ignored); ``None``: one segment per utterance.
        mask (Tensor): real frames, (B, L) bool.

    Attributes:
        n_rows (int): segments in the batch, N.
        lengths (Tensor): frames per segment, (N,) long.
        max_len (int): the longest segment (0 without real frames).
    """

    def __init__(self, seg_ids: Tensor | None, mask: Tensor) -> None:
        b, length = mask.shape
        if seg_ids is None:
            seg_ids = torch.zeros_like(mask, dtype=torch.long)
        start = mask.clone()
        start[:, 1:] &= (seg_ids[:, 1:] != seg_ids[:, :-1]) | ~mask[:, :-1]
        steps = torch.arange(length, device=mask.device).expand(b, length)
        first = torch.where(start, steps, torch.zeros_like(steps)).cummax(dim=1).values
        n_runs = start.sum(dim=1)
        offset = n_runs.cumsum(dim=0) - n_runs
        self.mask = mask
        self.row = (start.long().cumsum(dim=1) - 1 + offset[:, None])[mask]  # (n_real,)
        self.col = (steps - first)[mask]  # (n_real,)
        self.n_rows = int(n_runs.sum())
        self.lengths = torch.bincount(self.row, minlength=self.n_rows)
        self.max_len = int(self.lengths.max()) if self.n_rows else 0

    def pack(self, x: Tensor) -> Tensor:
        """Frames (B, L, C) → segments (N, max_len, C), zero past each segment's end."""
        out = x.new_zeros(self.n_rows, self.max_len, x.shape[-1])
        out[self.row, self.col] = x[self.mask]
        return out

    def unpack(self, packed: Tensor) -> Tensor:
        """Segments (N, max_len, C) → frames (B, L, C), zero on padding."""
        out = packed.new_zeros(*self.mask.shape, packed.shape[-1])
        out[self.mask] = packed[self.row, self.col]
        return out


@PITCH_PREDICTORS.register("arnar")
class ARNARPitchPredictor(ARPitchPredictor):
    """The ``ar`` predictor decoding each sentence segment on its own.

    Same constructor, parameters (``front``, ``lstm``, ``proj``) and settings as
    :class:`~vc_toolkit.models.ar_pitch.ARPitchPredictor`.
    """

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        target: Tensor | None = None,
        seg_ids: Tensor | None = None,
    ) -> Tensor:
        """Teacher-forced prediction, segment by segment.

        Args:
            x (Tensor): hidden sequence at reduced target frames, (B, L, in_dim).
            mask (Tensor): real frames, (B, L) bool.
            target (Tensor | None): ground-truth normalised log-F0, (B, L, r); ``None``:
                free-running (:meth:`generate`).
            seg_ids (Tensor | None): segment of every frame, (B, L) long; ``None``: one
                segment per utterance.

        Returns:
            Tensor: predicted pitch, (B, L, r), zero on padding; the history of a segment's
            first frame is zero and its LSTM starts from a zero state.
        """
        if target is None:
            return self.generate(x, mask, seg_ids=seg_ids)
        packing = SegmentPacking(seg_ids, mask)
        if packing.n_rows == 0:
            return x.new_zeros(*mask.shape, self.r)
        front = packing.pack(self._front(x, mask))
        return packing.unpack(self.decode_forced(front, packing.pack(target)))

    def infer(self, x: Tensor, mask: Tensor, seg_ids: Tensor | None = None) -> Tensor:
        """Autoregressive prediction within each segment (:meth:`generate`)."""
        return self.generate(x, mask, seg_ids=seg_ids)

    def generate(
        self,
        x: Tensor,
        mask: Tensor,
        teacher: Tensor | None = None,
        fold: bool = True,
        seg_ids: Tensor | None = None,
    ) -> Tensor:
        """Autoregressive prediction within each segment, all segments of the batch at once.

        Args:
            x (Tensor): hidden sequence at reduced target frames, (B, L, in_dim).
            mask (Tensor): real frames, (B, L) bool.
            teacher (Tensor | None): if given, (B, L, r) values fed back instead of the
                predictions.
            fold (bool): use the folded recursion when :meth:`foldable`.
            seg_ids (Tensor | None): segment of every frame, (B, L) long; ``None``: one
                segment per utterance.

        Returns:
            Tensor: predicted pitch, (B, L, r), zero on padding.
        """
        packing = SegmentPacking(seg_ids, mask)
        if packing.n_rows == 0:
            return x.new_zeros(*mask.shape, self.r)
        front = packing.pack(self._front(x, mask))
        given = None if teacher is None else packing.pack(teacher)
        return packing.unpack(self.decode(front, given, fold))
