"""Where things live: one place that maps spk/tag names to directories.

The recipe root defaults to the current directory (``run.sh`` runs from the
repository top); ``VC_ROOT`` or an explicit ``root`` argument override it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "dev", "eval")
"""The splits every spk is divided into at stage 0."""
EVAL_SPLITS = ("dev", "eval")
"""The splits stages 3 and 4 convert and score."""
SKIP_EXP = ("optuna", "report", "voc")
"""Folders of ``exp/`` that are not tags."""


def checkpoints_dir(exp_dir: Path) -> Path:
    """The checkpoint folder of an experiment folder (a tag's ``exp/<tag>`` or a trial's)."""
    return exp_dir / "checkpoints"


def checkpoint_label(checkpoint: str | Path) -> str:
    """The folder name of a checkpoint given by name (``best``) or by path (``x/epoch10.pt``).

    Example:
        >>> checkpoint_label("best"), checkpoint_label("exp/t/checkpoints/epoch10.pt")
        ('best', 'epoch10')
    """
    return Path(checkpoint).stem


@dataclass(frozen=True)
class Layout:
    """Directory layout of a recipe root.

    Example:
        >>> lay = Layout(Path("/r"))
        >>> str(lay.dump("demo")), str(lay.exp("demo_conv"))
        ('/r/dump/demo', '/r/exp/demo_conv')
    """

    root: Path

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> Layout:
        """Layout at ``root``, else ``$VC_ROOT``, else the current directory."""
        return cls(Path(root or os.environ.get("VC_ROOT") or ".").resolve())

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    def spk_conf(self, spk: str) -> Path:
        return self.conf / "spk" / f"{spk}.yaml"

    def tag_conf(self, tag: str) -> Path:
        return self.conf / "tag" / f"{tag}.yaml"

    def voc_conf(self, voc: str) -> Path:
        return self.conf / "voc" / f"{voc}.yaml"

    def voc_exp(self, voc: str) -> Path:
        """``exp/voc/<voc>``: a vocoder experiment (checkpoints, logs, its data)."""
        return self.root / "exp" / "voc" / voc

    def data(self, spk: str) -> Path:
        return self.root / "data" / spk

    def corpora(self) -> Path:
        """Generated or downloaded audio shared by spk versions of one corpus."""
        return self.root / "data" / "_corpora"

    def dump(self, spk: str) -> Path:
        return self.root / "dump" / spk

    def exp(self, tag: str) -> Path:
        return self.root / "exp" / tag

    def checkpoints(self, tag: str) -> Path:
        """``exp/<tag>/checkpoints``: latest.pt, best.pt, epochN.pt."""
        return checkpoints_dir(self.exp(tag))

    def convert_dir(self, tag: str, checkpoint: str | Path) -> Path:
        """``exp/<tag>/convert/<checkpoint label>``: stage-3 outputs (:func:`checkpoint_label`)."""
        return self.exp(tag) / "convert" / checkpoint_label(checkpoint)

    def eval_dir(self, tag: str, checkpoint: str | Path) -> Path:
        """``exp/<tag>/eval/<checkpoint label>``: stage-4 outputs."""
        return self.exp(tag) / "eval" / checkpoint_label(checkpoint)

    def pack_dir(self, tag: str, checkpoint: str | Path) -> Path:
        """``exp/<tag>/pack/<checkpoint label>``: a self-contained model directory."""
        return self.exp(tag) / "pack" / checkpoint_label(checkpoint)

    def shown(self, path: str | Path) -> str:
        """``path`` as messages and reports show it: relative to the recipe root when under it.

        Paths outside the root (a corpus elsewhere, a temporary folder) and paths that are
        already relative are shown as given.

        Example:
            >>> lay = Layout(Path("/r"))
            >>> lay.shown("/r/exp/t/convert/best"), lay.shown("/data/a.wav"), lay.shown("dump/x")
            ('exp/t/convert/best', '/data/a.wav', 'dump/x')
            >>> lay.shown("/r")
            '.'
        """
        p = Path(path)
        if not p.is_absolute() or not p.is_relative_to(self.root):
            return str(path)
        return str(p.relative_to(self.root))

    def shown_in(self, text: str) -> str:
        """``text`` (a message, a report field) with every path under the root shown relative.

        Example:
            >>> Layout(Path("/r")).shown_in("source /r/data/a.wav: empty; /rr/b.wav kept")
            'source data/a.wav: empty; /rr/b.wav kept'
        """
        return text.replace(f"{self.root}{os.sep}", "")

    def resolve(self, path: str | Path) -> Path:
        """A path from a config: absolute as given, relative to the recipe root otherwise."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p
