"""What a corpus recipe returns: labeled utterances, the pairs it allows, what it skipped.

A recipe labels every audio file it finds with the speaker and emotion (its *voice*)
and the sentence read (:class:`Utterance`). One-to-one recipes (``demo``, ``parallel``,
``jvs`` with two speakers, ``jsut_jsss``) declare their single (source, target) voice
pair; many-speaker recipes allow every ordered pair of their voices. Stage 0 pools the
utterances of all corpora of a spk and pairs them (:mod:`vc_toolkit.prepare.pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vc_toolkit.data.labels import NEUTRAL, Labels, voice_name
from vc_toolkit.errors import UserError


class CorpusError(UserError, RuntimeError):
    """A corpus cannot be prepared (missing folder, failed download...); one-line message."""


@dataclass(frozen=True)
class Utterance:
    """One audio file: who reads which sentence.

    Attributes:
        sentence: sentence id (files of different voices with the same id are parallel).
        path: the audio file.
        speaker: speaker name.
        emotion: emotion/style name.
        text: the transcript (text corpora only).
        phone_times: the synthesiser's own phoneme timings of the file (``demo_tts`` only).
    """

    sentence: str
    path: Path
    speaker: str
    emotion: str = NEUTRAL
    text: str | None = None
    phone_times: Path | None = None

    @property
    def voice(self) -> str:
        """``speaker`` or ``speaker:emotion``."""
        return voice_name(self.speaker, self.emotion)


@dataclass
class Pair:
    """One parallel utterance: the same sentence by the source and the target."""

    utt_id: str
    src: Path
    tgt: Path
    labels: Labels


@dataclass
class Prepared:
    """Result of a corpus recipe.

    Attributes:
        utterances: every labeled audio file the recipe found.
        candidates: the ordered (source voice, target voice) pairs the corpus allows;
            ``None``: every ordered pair of two different voices of the corpus.
        unmatched_src: source files with no target of the same stem (one-to-one recipes).
        unmatched_tgt: target files with no source of the same stem (one-to-one recipes).
        skipped: ``(file, reason)`` of files found but not used (e.g. no labels parsed).
        roots: ``(folder, glob pattern)`` the recipe searched recursively for the files
            (empty for a generated corpus); later runs report files that appear there.
    """

    utterances: list[Utterance] = field(default_factory=list)
    candidates: list[tuple[str, str]] | None = None
    unmatched_src: list[Path] = field(default_factory=list)
    unmatched_tgt: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    roots: list[tuple[Path, str]] = field(default_factory=list)

    def files(self) -> list[Path]:
        """Every file the recipe found (labeled or not)."""
        found = [u.path for u in self.utterances] + self.unmatched_src + self.unmatched_tgt
        return found + [p for p, _ in self.skipped]

    @property
    def voices(self) -> list[str]:
        """The voices of the corpus, sorted."""
        return sorted({u.voice for u in self.utterances})


@dataclass(frozen=True)
class Side:
    """Speaker and emotion of one side of a one-to-one recipe."""

    speaker: str
    emotion: str = NEUTRAL

    @property
    def voice(self) -> str:
        return voice_name(self.speaker, self.emotion)


def by_stem(files: list[Path], side: str) -> dict[str, Path]:
    """``{file stem: file}``.

    Raises:
        CorpusError: two files share a stem.
    """
    out: dict[str, Path] = {}
    for f in sorted(files):
        if f.stem in out:
            raise CorpusError(
                f"two {side} files share the utterance id '{f.stem}': {out[f.stem]} and {f}; "
                "rename one (ids are file stems)"
            )
        out[f.stem] = f
    return out


def match_by_stem(
    src_files: list[Path], tgt_files: list[Path], src: Side = Side("src"), tgt: Side = Side("tgt")
) -> Prepared:
    """A one-to-one corpus: two file lists whose stems are the sentence ids.

    Example:
        >>> p = match_by_stem([Path("a/x.wav"), Path("a/y.wav")], [Path("b/y.wav"), Path("b/z")])
        >>> [(u.voice, u.sentence) for u in p.utterances if u.sentence == "y"], p.candidates
        ([('src', 'y'), ('tgt', 'y')], [('src', 'tgt')])
        >>> [f.name for f in p.unmatched_src + p.unmatched_tgt]
        ['x.wav', 'z']
    """
    src_map, tgt_map = by_stem(src_files, "source"), by_stem(tgt_files, "target")
    common = sorted(src_map.keys() & tgt_map.keys())
    utts = [Utterance(u, src_map[u], src.speaker, src.emotion) for u in common]
    utts += [Utterance(u, tgt_map[u], tgt.speaker, tgt.emotion) for u in common]
    return Prepared(
        utterances=utts,
        candidates=[(src.voice, tgt.voice)],
        unmatched_src=[src_map[u] for u in sorted(src_map.keys() - tgt_map.keys())],
        unmatched_tgt=[tgt_map[u] for u in sorted(tgt_map.keys() - src_map.keys())],
    )
