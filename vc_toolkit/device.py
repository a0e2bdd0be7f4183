"""Device choice shared by training, conversion and tuning."""

from __future__ import annotations

import torch

from vc_toolkit.errors import UserError


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; otherwise the named device.

    Raises:
        UserError: a CUDA device was asked for but torch sees no GPU.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for CUDA, but torch sees no GPU; use --device cpu")
    return device
