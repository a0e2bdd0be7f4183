"""What a run leaves behind for people: TensorBoard, a text log, history and summary.

* ``tensorboard/``: every loss, lr, grad norm, padding fraction, frames/s per
  step; dev losses, mel and pitch images and Griffin-Lim audio per evaluation.
* ``train.log``: the console log.
* ``history.jsonl``: one row per epoch (train averages, dev losses when
  evaluated, lr, seconds); reports and loss-curve plots read it.
* ``summary.json``: epochs done, seconds per epoch, best dev losses, parameter
  count, code commit, spk fingerprint, lineage.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

from vc_toolkit.errors import disk_full
from vc_toolkit.io import atomic_write_text, writing
from vc_toolkit.records import read_history


class _LogFile(logging.FileHandler):
    """``train.log``: once the disk is full, lines are dropped instead of printing tracebacks.

    The console still shows them, and the next checkpoint save reports the full disk.
    """

    full = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.full:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if disk_full(sys.exc_info()[1]) is not None:
            self.full = True
            return
        super().handleError(record)


class RunLog:
    """Writers of one run; all no-ops when ``enabled`` is false (non-zero ranks)."""

    def __init__(self, exp_dir: Path, enabled: bool, resume_step: int = 0, resume_epoch: int = 0):
        self.exp_dir = exp_dir
        self.enabled = enabled
        self.tb = None
        self._handler: logging.Handler | None = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        # the resumed checkpoint was saved after its step was logged: purge only what came later
        purge = resume_step + 1 if resume_step else None
        self.tb = SummaryWriter(str(exp_dir / "tensorboard"), purge_step=purge)
        self._handler = _LogFile(exp_dir / "train.log")
        self._handler.setFormatter(
            logging.Formatter("%(asctime)s [%(name)s] %(message)s", "%Y-%m-%d %H:%M:%S")
        )
        self._handler.setLevel(logging.INFO)
        root = logging.getLogger()
        root.addHandler(self._handler)
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        self._truncate_history(resume_epoch)

    @property
    def history_path(self) -> Path:
        return self.exp_dir / "history.jsonl"

    def _truncate_history(self, epoch: int) -> None:
        rows = read_history(self.exp_dir)
        kept = [r for r in rows if r["epoch"] <= epoch]
        if len(kept) != len(rows):
            atomic_write_text(self.history_path, "".join(json.dumps(r) + "\n" for r in kept))

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.tb is not None:
            for name, value in values.items():
                self.tb.add_scalar(f"{prefix}/{name}", value, step)

    def figure(self, name: str, fig, step: int) -> None:
        if self.tb is not None:
            self.tb.add_figure(name, fig, step)

    def audio(self, name: str, wav, sample_rate: int, step: int) -> None:
        if self.tb is not None:
            clip = torch.as_tensor(wav).float().view(1, -1).clamp(-1.0, 1.0)
            self.tb.add_audio(name, clip, step, sample_rate)

    def history(self, row: dict) -> None:
        """Append one row; a row cut short by a full disk is skipped when read back."""
        if self.enabled:
            with writing(self.history_path), open(self.history_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    def summary(self, data: dict) -> None:
        if self.enabled:
            atomic_write_text(self.exp_dir / "summary.json", json.dumps(data, indent=2) + "\n")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.close()
