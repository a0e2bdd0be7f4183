"""Mixed precision and ``torch.compile`` of the stage-2 training step.

* :func:`resolve_precision` turns ``train.precision`` (and the older ``train.amp``)
  into the autocast dtype of a step: ``auto`` is bf16 on CUDA where the GPU has it,
  else fp16 with a loss scaler, and fp32 on a CPU; ``bf16`` also runs on a CPU.
  A run resumed from a checkpoint written before ``train.precision`` existed keeps
  the meaning it had then (``amp``: fp16 on CUDA, else fp32), so its numerics do not
  change mid-run.
* :func:`compile_stacks` compiles the encoder and decoder stacks (``train.compile``).
  Inductor keeps the generated kernels on disk, in
  ``exp/<TAG>/compile_cache/`` unless ``TORCHINDUCTOR_CACHE_DIR`` is set, so a resume
  (or a second run with the same shapes) loads them instead of compiling again.

Example:
    >>> resolve_precision("auto", False, torch.device("cpu")).name
    'fp32'
    >>> resolve_precision("bf16", False, torch.device("cpu")).dtype
    torch.bfloat16
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from vc_toolkit.errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
_USER_CACHE = os.environ.get(CACHE_ENV)
"""The user's cache folder, read at import: inductor sets the variable itself once it runs."""


class PrecisionError(UserError):
    """``train.precision`` cannot run on this device or contradicts ``train.amp``."""


@dataclass(frozen=True)
class Precision:
    """The precision of a run's training steps.

    Attributes:
        name (str): ``fp32``, ``bf16`` or ``fp16``.
        device_type (str): ``cpu`` or ``cuda``.
    """

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype (float32: no autocast)."""
        return DTYPES[self.name]

    @property
    def scaled(self) -> bool:
        """Whether the loss needs a scaler (fp16: its gradients underflow otherwise)."""
        return self.name == "fp16"

    def autocast(self) -> AbstractContextManager:
        """The autocast context of a forward pass (a no-op for fp32)."""
        if self.name == "fp32":
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def resolve_precision(
    setting: str,
    amp: bool,
    device: torch.device,
    legacy: bool = False,
    bf16_supported: bool | None = None,
) -> Precision:
    """The precision ``train.precision`` asks for on ``device``.

    Args:
        setting: ``train.precision``: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        amp: ``train.amp`` (the older switch: fp16 autocast on CUDA).
        device: Training device.
        legacy: The run resumes a checkpoint written before ``train.precision`` existed:
            ``auto`` keeps the old meaning (``amp``: fp16 on CUDA, else fp32).
        bf16_supported: Whether the GPU has bf16 (None: ask torch).

    Returns:
        Precision: its name and device type.

    Raises:
        PrecisionError: fp16 on a CPU, or ``amp`` with a precision other than auto/fp16.
    """
    cuda = device.type == "cuda"
    if amp and setting not in ("auto", "fp16"):
        raise PrecisionError(
            f"train.amp true asks for fp16 and train.precision is {setting}; remove train.amp"
        )
    name = setting
    if setting == "auto":
        if legacy or amp or not cuda:
            name = "fp16" if cuda and amp else "fp32"
        else:
            supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
            name = "bf16" if supported else "fp16"
    if name == "fp16" and not cuda:
        raise PrecisionError(
            f"train.precision fp16 needs CUDA (device {device}); use bf16 or fp32 on a CPU"
        )
    return Precision(name, device.type)


def cache_dir(exp_dir: Path) -> Path:
    """Where inductor keeps this run's compiled kernels.

    ``TORCHINDUCTOR_CACHE_DIR`` wins when set (e.g. one cache shared by every tag);
    otherwise ``exp/<TAG>/compile_cache``.
    """
    return Path(_USER_CACHE) if _USER_CACHE else exp_dir / "compile_cache"


BUCKET = 64
"""``train.compile`` pads stack inputs to a multiple of this many frames (few shapes)."""
RECOMPILE_LIMIT = 64
"""Compiled shapes kept per stack before dynamo falls back to eager for new ones."""


def _bucketed(fn: Callable[[Tensor, Tensor], Tensor], bucket: int) -> Callable:
    """``fn(x, mask)`` on inputs zero-padded (mask False) to a multiple of ``bucket`` frames.

    A stack's output on real frames does not depend on padding (masked attention, zeroed
    convolution inputs), so the result cut back to ``T`` is the same; the compiled stack
    then sees one shape per bucket instead of one per length.
    """

    def call(x: Tensor, mask: Tensor) -> Tensor:
        t = x.shape[1]
        extra = -t % bucket
        if extra:
            x = torch.nn.functional.pad(x, (0, 0, 0, extra))
            mask = torch.nn.functional.pad(mask, (0, extra), value=False)
        return fn(x, mask)[:, :t]

    return call


def compile_stacks(model: nn.Module, exp_dir: Path, bucket: int = BUCKET) -> int:
    """Compile the encoder and decoder stacks of ``model`` in place (``train.compile``).

    The stacks (Conformer or Transformer blocks) are most of a step's arithmetic and have
    no data-dependent sizes. The rest of the model (length regulation, variance
    predictors, losses) has host-side checks and data-dependent sizes that break graphs;
    it stays eager. Lengths are padded to multiples of ``bucket`` and compiled with static
    shapes: in torch 2.13 on CPU, dynamic lengths either specialise in the backward graph
    (a recompile per length anyway) or fail in inductor (absolute positions). A run thus
    compiles once per (batch size, length bucket) it meets, mostly in its first epoch;
    the kernels are cached on disk for resumes. Parameter names do not change (the
    compiled forward is set on each stack).

    Args:
        model: The model (possibly DDP-wrapped).
        exp_dir: The run's folder (kernels cached under ``compile_cache/``, see
            :func:`cache_dir`).
        bucket: Length granularity in frames.

    Returns:
        int: the number of stacks compiled.
    """
    from vc_toolkit.models.blocks import BlockStack

    folder = cache_dir(exp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_ENV] = str(folder)
    limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    torch._dynamo.config.recompile_limit = limit
    stacks = [m for m in model.modules() if isinstance(m, BlockStack)]
    for stack in stacks:
        stack.forward = _bucketed(torch.compile(stack.forward, dynamic=False), bucket)
    return len(stacks)


def prefetched(batches: Iterable, device: torch.device) -> Iterator:
    """``batches``, each already on ``device``, the next one's copy queued before a step.

    On CUDA the copy of batch ``i + 1`` (pinned memory, ``non_blocking``) is issued before
    batch ``i`` is handed out, so it overlaps the step instead of starting it; elsewhere
    the batches pass through unchanged.

    Args:
        batches: Anything with ``.to(device)`` per item (e.g. the train loader's batches).
        device: Training device.

    Yields:
        The batches in order.
    """
    if device.type != "cuda":
        yield from batches
        return
    ahead = None
    for batch in batches:
        moved = batch.to(device)
        if ahead is not None:
            yield ahead
        ahead = moved
    if ahead is not None:
        yield ahead
