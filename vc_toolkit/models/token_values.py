"""Between tokens and frames: token averages, hard alignments from durations, expansion.

Helpers of the text-input family (:mod:`vc_toolkit.models.fastspeech2tts`). Durations
count *reduced* frames per token; frame values are at the full frame rate (``r`` frames
per reduced frame).

- :func:`token_average`: the mean of frame values over each token's frames, weighted
  (FastPitch's per-token pitch and energy targets [Łańcucki, "FastPitch: Parallel
  text-to-speech with pitch prediction", ICASSP 2021]).
- :func:`hard_alignment`: the 0/1 alignment (B, T, N) that durations describe.
- :func:`expand_tokens`: token values repeated over their frames.

Example:
    >>> import torch
    >>> d = torch.tensor([[2, 1]])
    >>> token_average(torch.tensor([[1.0, 3.0, 5.0]]), torch.ones(1, 3), d, r=1).tolist()
    [[2.0, 5.0]]
    >>> hard_alignment(d, 3)[0].tolist()
    [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    >>> expand_tokens(torch.tensor([[7.0, 9.0]]), d, r=2).tolist()
    [[7.0, 7.0, 7.0, 7.0, 9.0, 9.0]]
"""

from __future__ import annotations

import torch
from torch import Tensor

from vc_toolkit.models.variance import regulate_length


def frame_tokens(durations: Tensor, r: int, n_frames: int) -> Tensor:
    """Token index of every frame, (B, n_frames) long; ``-1`` past the last token's frames.

    Args:
        durations (Tensor): reduced frames per token, (B, N) long, 0 on padding.
        r (int): frames per reduced frame.
        n_frames (int): frames per row.
    """
    ends = (durations.long() * r).cumsum(dim=1)
    steps = torch.arange(n_frames, device=durations.device).expand(len(durations), -1)
    index = torch.searchsorted(ends.contiguous(), steps.contiguous(), right=True)
    return index.masked_fill(index >= durations.shape[1], -1)


def token_average(values: Tensor, weights: Tensor, durations: Tensor, r: int) -> Tensor:
    """Weighted mean of frame values over each token's frames.

    Args:
        values (Tensor): frame values, (B, T).
        weights (Tensor): frame weights >= 0, (B, T) (e.g. voiced 0/1 times the frame mask).
        durations (Tensor): reduced frames per token, (B, N) long.
        r (int): frames per reduced frame.

    Returns:
        Tensor: (B, N); 0 for a token whose weights sum to 0 (no frame, or none weighted).
    """
    b, n = durations.shape
    index = frame_tokens(durations, r, values.shape[1])
    keep = index >= 0
    weights = torch.where(keep, weights.to(values.dtype), torch.zeros_like(values))
    index = index.clamp(min=0)
    total = values.new_zeros(b, n).scatter_add(1, index, values * weights)
    count = values.new_zeros(b, n).scatter_add(1, index, weights)
    return torch.where(count > 0, total / count.clamp(min=1e-8), torch.zeros_like(total))


def hard_alignment(durations: Tensor, n_reduced: int) -> Tensor:
    """The hard alignment durations describe, (B, n_reduced, N) 0/1 float.

    Args:
        durations (Tensor): reduced frames per token, (B, N) long.
        n_reduced (int): reduced frames per row (frames past the durations stay 0).
    """
    index = frame_tokens(durations, 1, n_reduced)
    hard = torch.nn.functional.one_hot(index.clamp(min=0), durations.shape[1]).float()
    return hard * (index >= 0)[..., None]


def expand_tokens(values: Tensor, durations: Tensor, r: int, n_frames: int | None = None):
    """Token values (B, N) repeated over their frames → (B, n_frames) (0 past the end).

    Args:
        values (Tensor): one value per token, (B, N).
        durations (Tensor): reduced frames per token, (B, N) long.
        r (int): frames per reduced frame.
        n_frames (int | None): frames per row; ``None``: ``r`` × the longest total.
    """
    reduced, _ = regulate_length(values[..., None], durations)
    frames = reduced.repeat_interleave(r, dim=1)[..., 0]
    if n_frames is None:
        return frames
    if frames.shape[1] >= n_frames:
        return frames[:, :n_frames]
    return torch.nn.functional.pad(frames, (0, n_frames - frames.shape[1]))
