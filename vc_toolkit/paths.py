"""Where things live: one place that maps spk/tag names to directories.

The recipe root defaults to the current directory (``run.sh`` runs from the
repository top); ``VC_ROOT`` or an explicit ``root`` argument override it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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

    def data(self, spk: str) -> Path:
        return self.root / "data" / spk

    def corpora(self) -> Path:
        """Generated or downloaded audio shared by spk versions of one corpus."""
        return self.root / "data" / "_corpora"

    def dump(self, spk: str) -> Path:
        return self.root / "dump" / spk

    def exp(self, tag: str) -> Path:
        return self.root / "exp" / tag

    def resolve(self, path: str | Path) -> Path:
        """A path from a config: absolute as given, relative to the recipe root otherwise."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p
