"""Padding masks and frame stacking by the reduction factor.

Masks are boolean with ``True`` on real frames and ``False`` on padding.
Reduced frames stack ``r`` consecutive frames: (B, T, D) ↔ (B, T / r, D * r).

Example:
    >>> import torch
    >>> lengths_to_mask(torch.tensor([1, 3])).int().tolist()
    [[1, 0, 0], [1, 1, 1]]
    >>> x = torch.arange(6.0).view(1, 3, 2)
    >>> stack_frames(x, 2).shape, unstack_frames(stack_frames(x, 2), 2)[0, :3].tolist()
    (torch.Size([1, 2, 4]), [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Boolean mask of real frames.

    Args:
        lengths (Tensor): frame counts, (B,) long.
        max_len (int | None): mask width; ``None`` uses ``lengths.max()``.

    Returns:
        Tensor: ``True`` where ``t < lengths[b]``, (B, max_len) bool.
    """
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] < lengths[:, None]


def stack_frames(x: Tensor, r: int) -> Tensor:
    """Stack ``r`` consecutive frames, zero-padding the time axis up to a multiple of ``r``.

    Args:
        x (Tensor): frames, (B, T, D) or (B, T).
        r (int): reduction factor.

    Returns:
        Tensor: reduced frames, (B, ceil(T / r), D * r), or (B, ceil(T / r), r) for 2-D input.
    """
    if x.dim() == 2:
        x = x.unsqueeze(-1)
    b, t, d = x.shape
    pad = (-t) % r
    if pad:
        x = F.pad(x, (0, 0, 0, pad))
    return x.reshape(b, (t + pad) // r, d * r)


def unstack_frames(x: Tensor, r: int) -> Tensor:
    """Inverse of :func:`stack_frames`: (B, L, D * r) → (B, L * r, D)."""
    b, length, dr = x.shape
    return x.reshape(b, length * r, dr // r)


def reduced_mask(lengths: Tensor, r: int, max_len: int) -> Tensor:
    """Mask of reduced frames, (B, max_len) bool, from frame counts ``lengths`` (B,)."""
    return lengths_to_mask(torch.div(lengths, r, rounding_mode="floor"), max_len)


def check_multiple(lengths: Tensor, r: int, name: str) -> None:
    """Raise if any of ``lengths`` (B,) is not a multiple of the reduction factor ``r``."""
    if r > 1 and bool((lengths % r).any()):
        bad = lengths[lengths % r != 0].tolist()
        raise ValueError(
            f"{name} must be multiples of the reduction factor {r}, got {bad}; "
            f"trim features to a multiple of {r} frames"
        )


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` over the ``True`` entries of ``mask`` (broadcast from the left).

    Args:
        x (Tensor): values, (B, T, ...).
        mask (Tensor): real entries, (B, T) bool.

    Returns:
        Tensor: scalar; 0 if the mask is empty.
    """
    while mask.dim() < x.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(x)
    total = torch.where(mask, x, torch.zeros_like(x)).sum()
    return total / mask.sum().clamp(min=1)
