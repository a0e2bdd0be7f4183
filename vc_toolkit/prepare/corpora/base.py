"""What a corpus recipe returns: parallel pairs plus what could not be paired."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vc_toolkit.errors import UserError


class CorpusError(UserError, RuntimeError):
    """A corpus cannot be prepared (missing folder, failed download...); one-line message."""


@dataclass
class Pair:
    """One parallel utterance: the same sentence by the source and the target."""

    utt_id: str
    src: Path
    tgt: Path


@dataclass
class Prepared:
    """Result of a corpus recipe.

    Attributes:
        pairs: matched pairs, sorted by utterance id.
        unmatched_src: source files with no target of the same stem.
        unmatched_tgt: target files with no source of the same stem.
        roots: ``(folder, glob pattern)`` the recipe searched recursively for the files
            (empty for a generated corpus); later runs report files that appear there.
    """

    pairs: list[Pair]
    unmatched_src: list[Path] = field(default_factory=list)
    unmatched_tgt: list[Path] = field(default_factory=list)
    roots: list[tuple[Path, str]] = field(default_factory=list)

    def files(self) -> list[Path]:
        """Every file the recipe found: both sides of the pairs and the unmatched ones."""
        paired = [p for pair in self.pairs for p in (pair.src, pair.tgt)]
        return paired + self.unmatched_src + self.unmatched_tgt


def match_by_stem(src_files: list[Path], tgt_files: list[Path]) -> Prepared:
    """Pair two file lists by file stem (the utterance id).

    Example:
        >>> p = match_by_stem([Path("a/x.wav"), Path("a/y.wav")], [Path("b/y.wav"), Path("b/z")])
        >>> [q.utt_id for q in p.pairs], [f.name for f in p.unmatched_src + p.unmatched_tgt]
        (['y'], ['x.wav', 'z'])
    """

    def by_stem(files: list[Path], side: str) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for f in sorted(files):
            if f.stem in out:
                raise CorpusError(
                    f"two {side} files share the utterance id '{f.stem}': {out[f.stem]} and {f}; "
                    "rename one (ids are file stems)"
                )
            out[f.stem] = f
        return out

    src, tgt = by_stem(src_files, "source"), by_stem(tgt_files, "target")
    common = sorted(src.keys() & tgt.keys())
    return Prepared(
        pairs=[Pair(u, src[u], tgt[u]) for u in common],
        unmatched_src=[src[u] for u in sorted(src.keys() - tgt.keys())],
        unmatched_tgt=[tgt[u] for u in sorted(tgt.keys() - src.keys())],
    )
