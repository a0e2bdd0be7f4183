"""Checkpoints: atomic writes, rotation, corruption fallback, RNG capture.

Layout under ``exp/<TAG>/checkpoints/``:

* ``latest.pt``: refreshed at every epoch end (and every ``save_interval_steps``);
  what a re-run resumes from.
* ``best.pt``: the state with the lowest ``train.best_metric`` dev loss.
* ``epoch<N>.pt``: every ``ckpt_interval`` epochs; the newest ``keep_checkpoints`` kept.

Every file is written to a temporary name, fsynced and renamed, so a process
killed while saving leaves the previous file intact. A file that fails to load
(truncated, corrupt) is reported and the next-newest usable one is used.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from vc_toolkit import log
from vc_toolkit.errors import UserError
from vc_toolkit.io import atomic_open

FORMAT = 1
logger = log.get("checkpoint")
_EPOCH_RE = re.compile(r"^epoch(\d+)\.pt$")


class CheckpointError(UserError):
    """A requested checkpoint does not exist or cannot be read."""


def rng_state() -> dict:
    """Every random-number generator the training loop touches."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict) -> None:
    """Write ``state`` (with a format stamp and time) to ``path`` atomically."""
    state = {"format": FORMAT, "saved_at": dt.datetime.now().isoformat("T", "seconds"), **state}
    with atomic_open(path, "wb") as f:
        torch.save(state, f)


def load(path: Path, map_location: str | torch.device = "cpu", key: str = "model") -> dict:
    """Read a checkpoint written by :func:`save`.

    Args:
        path: The file.
        map_location: Where tensors go.
        key: The entry every checkpoint of this kind has (``model`` for acoustic
            models, ``generator`` for vocoders).

    Raises:
        CheckpointError: missing, truncated or not a checkpoint of this toolkit.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(err).__name__}: {str(err)[:120]})"
        ) from None
    if not isinstance(state, dict) or key not in state:
        raise CheckpointError(f"{path} is not a vc_toolkit checkpoint (no '{key}' entry)")
    return state


def epoch_files(folder: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the ``epochN.pt`` files, oldest first."""
    found = []
    for p in folder.glob("epoch*.pt"):
        m = _EPOCH_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def rotate(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` ``epochN.pt`` files."""
    for _, path in epoch_files(folder)[:-keep] if keep > 0 else []:
        path.unlink(missing_ok=True)


def available(folder: Path) -> list[str]:
    """Names that :func:`resolve` accepts for this folder (``latest``, ``best``, ``epochN``)."""
    names = [n for n in ("latest", "best") if (folder / f"{n}.pt").is_file()]
    return names + [f"epoch{e}" for e, _ in epoch_files(folder)]


def resolve(folder: Path, name: str) -> Path:
    """Path of checkpoint ``name``: latest, best, epochN, or a file path.

    Raises:
        CheckpointError: the name does not exist; the message lists what does.
    """
    if name.endswith(".pt") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {name} does not exist")
        return path
    path = folder / f"{name}.pt"
    if not path.is_file():
        have = ", ".join(available(folder)) or "none (training has not saved one yet)"
        raise CheckpointError(f"no checkpoint '{name}' in {folder}; available: {have}")
    return path


def load_for_resume(
    folder: Path, name: str = "latest", key: str = "model"
) -> tuple[dict, Path] | None:
    """Load the checkpoint to resume from, falling back past unreadable files.

    For ``latest``, a corrupt file is reported and the newest readable
    ``epochN.pt`` is used instead. Returns None when the folder has no checkpoint.
    """
    candidates: list[Path] = []
    if name == "latest":
        candidates = [folder / "latest.pt"] + [p for _, p in reversed(epoch_files(folder))]
        candidates = [p for p in candidates if p.is_file()]
        if not candidates:
            return None
    else:
        candidates = [resolve(folder, name)]
    for path in candidates:
        try:
            return load(path, key=key), path
        except CheckpointError as err:
            if name != "latest":
                raise
            logger.warning("%s; trying the previous checkpoint", err)
    raise CheckpointError(f"no readable checkpoint in {folder}; start over with --force")


def move_aside_after(folder: Path, epoch: int, step: int) -> Path | None:
    """Move checkpoints newer than ``(epoch, step)`` into ``aside-<time>/`` (never delete).

    Used when resuming from an older checkpoint (``--resume_from``).
    """
    later = [p for e, p in epoch_files(folder) if e > epoch]
    for name in ("latest.pt", "best.pt"):
        path = folder / name
        if path.is_file():
            meta = torch.load(path, map_location="cpu", weights_only=False)
            if (meta.get("epoch", 0), meta.get("step", 0)) > (epoch, step):
                later.append(path)
    if not later:
        return None
    aside = folder / f"aside-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=True)
    for path in later:
        shutil.move(str(path), aside / path.name)
    return aside


def weights_only(state: dict) -> dict:
    """The model weights of a checkpoint (for packing and pretrain loading)."""
    return {k: v for k, v in state["model"].items()}
