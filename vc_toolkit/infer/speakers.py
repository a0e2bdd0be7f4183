"""Which speaker pair a conversion speaks: the pairs of a spk, and choosing one.

A spk holds one or many parallel pairs (:mod:`vc_toolkit.data.labels`); a tag's
model knows the speakers of its :class:`~vc_toolkit.data.labels.SpeakerTable`
(``exp/<TAG>/speakers.json``). Stage 3 converts each dev/eval utterance with the
pair of its labels; ``vc-convert --input`` converts with the pair chosen by
:func:`choose_pair` (``--src_speaker``/``--tgt_speaker``, or the spk's only pair).

A pack keeps the pairs of its spk in ``pairs.tsv`` (:func:`write_pairs`), since it
has no ``dump/`` to read them from.

Example:
    >>> p = SpeakerPair("m3", "f2")
    >>> p.name, p.labels("u1").pair
    ('m3->f2', 'm3->f2')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vc_toolkit.data.dump import MANIFEST
from vc_toolkit.data.labels import (
    LABELS_FILE,
    NEUTRAL,
    LabelError,
    Labels,
    SpeakerTable,
    read_labels,
    voice_name,
)
from vc_toolkit.errors import UserError
from vc_toolkit.features.stats import stats_speakers
from vc_toolkit.io import atomic_write_text

PAIRS_FILE = "pairs.tsv"
PAIRS_HEADER = "src_speaker\tsrc_emotion\ttgt_speaker\ttgt_emotion"
LEGACY_SPLITS = ("train", "dev", "eval")


@dataclass(frozen=True, order=True)
class SpeakerPair:
    """Source and target voice of a conversion.

    Attributes:
        src_speaker: source speaker name.
        tgt_speaker: target speaker name.
        src_emotion: source emotion/style name.
        tgt_emotion: target emotion/style name.
    """

    src_speaker: str
    tgt_speaker: str
    src_emotion: str = NEUTRAL
    tgt_emotion: str = NEUTRAL

    @classmethod
    def of(cls, labels: Labels) -> SpeakerPair:
        """The pair an utterance's labels speak."""
        return cls(labels.src_speaker, labels.tgt_speaker, labels.src_emotion, labels.tgt_emotion)

    @property
    def name(self) -> str:
        """``src_voice->tgt_voice``, as :attr:`Labels.pair`."""
        src = voice_name(self.src_speaker, self.src_emotion)
        return f"{src}->{voice_name(self.tgt_speaker, self.tgt_emotion)}"

    def labels(self, sentence: str) -> Labels:
        """Labels of an utterance of ``sentence`` converted with this pair."""
        return Labels(
            sentence, self.src_speaker, self.tgt_speaker, self.src_emotion, self.tgt_emotion
        )


LEGACY_PAIR = SpeakerPair("src", "tgt")
"""The pair of a one-to-one spk prepared before labels existed."""


def dump_labels(dump_dir: Path, splits: Iterable[str] = LEGACY_SPLITS) -> dict[str, Labels]:
    """Labels of every packed utterance of ``dump/<SPK>`` (``split/utt`` → labels)."""
    out: dict[str, Labels] = {}
    for split in splits:
        manifest = dump_dir / split / MANIFEST
        if not manifest.is_file():
            continue
        lines = manifest.read_text(encoding="utf-8").splitlines()[1:]
        utts = [line.split("\t")[0] for line in lines if line]
        for utt, lab in read_labels(dump_dir / split / LABELS_FILE, utts).items():
            out[f"{split}/{utt}"] = lab
    return out


def spk_pairs(dump_dir: Path) -> list[SpeakerPair]:
    """The sorted pairs of a prepared spk (``[LEGACY_PAIR]`` when it has no packed split)."""
    pairs = sorted({SpeakerPair.of(lab) for lab in dump_labels(dump_dir).values()})
    return pairs or [LEGACY_PAIR]


def tag_table(path: Path, pairs: list[SpeakerPair]) -> SpeakerTable:
    """The speaker table of a tag (``exp/<TAG>/speakers.json``).

    A tag trained before speaker tables existed has none: its model has no embeddings
    and reads as one-to-one, rows ``src`` and ``tgt``; when its spk has one named pair,
    those rows take the pair's names (so that pair converts as before).
    """
    if path.is_file() or len(pairs) != 1:
        return SpeakerTable.load(path)
    (pair,) = pairs
    speakers = list(dict.fromkeys((pair.src_speaker, pair.tgt_speaker)))
    emotions = list(dict.fromkeys((NEUTRAL, pair.src_emotion, pair.tgt_emotion)))
    return SpeakerTable(speakers=speakers, emotions=emotions)


def write_pairs(path: Path, pairs: Iterable[SpeakerPair]) -> None:
    """Write ``pairs.tsv`` (one pair a row)."""
    rows = [f"{p.src_speaker}\t{p.src_emotion}\t{p.tgt_speaker}\t{p.tgt_emotion}" for p in pairs]
    atomic_write_text(path, "\n".join([PAIRS_HEADER, *rows]) + "\n")


def read_pairs(path: Path) -> list[SpeakerPair]:
    """Read ``pairs.tsv``; a pack made before it existed has ``[LEGACY_PAIR]``.

    Raises:
        LabelError: the file is malformed.
    """
    if not path.is_file():
        return [LEGACY_PAIR]
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != PAIRS_HEADER or any(len(x.split("\t")) != 4 for x in lines[1:]):
        raise LabelError(f"{path}: not a pairs file; make the pack again with vc-pack")
    return [SpeakerPair(a, c, b, d) for a, b, c, d in (x.split("\t") for x in lines[1:])]


def choose_pair(
    pairs: list[SpeakerPair],
    table: SpeakerTable,
    stats: dict,
    src: str | None = None,
    tgt: str | None = None,
    src_emotion: str | None = None,
    tgt_emotion: str | None = None,
) -> SpeakerPair:
    """The pair to convert with, from the command-line choice.

    Without ``src``/``tgt`` the spk's only pair is used; otherwise both are needed. The
    names must be in the tag's speaker table and, when the spk normalises per speaker,
    have statistics there.

    Args:
        pairs: The pairs of the tag's spk (:func:`spk_pairs`).
        table: The tag's speaker table.
        stats: The spk's statistics.
        src: ``--src_speaker``.
        tgt: ``--tgt_speaker``.
        src_emotion: ``--src_emotion`` (default neutral, or the only pair's).
        tgt_emotion: ``--tgt_emotion`` (default neutral, or the only pair's).

    Raises:
        UserError: a flag missing while the spk has several pairs, an unknown name, or a
            speaker without statistics (one line each).
    """
    known = ", ".join(table.speakers)
    if src is None and tgt is None:
        if len(pairs) != 1:
            raise UserError(
                f"the model knows {len(pairs)} speaker pairs; choose one with --src_speaker "
                f"and --tgt_speaker (speakers: {known})"
            )
        only = pairs[0]
        src, tgt = only.src_speaker, only.tgt_speaker
        src_emotion = src_emotion or only.src_emotion
        tgt_emotion = tgt_emotion or only.tgt_emotion
    elif src is None or tgt is None:
        given, missing = ("--src_speaker", "--tgt_speaker")[:: 1 if src else -1]
        raise UserError(f"{given} needs {missing} too (speakers: {known})")
    pair = SpeakerPair(src, tgt, src_emotion or NEUTRAL, tgt_emotion or NEUTRAL)
    for flag, name, names in (
        ("--src_speaker", pair.src_speaker, table.speakers),
        ("--tgt_speaker", pair.tgt_speaker, table.speakers),
        ("--src_emotion", pair.src_emotion, table.emotions),
        ("--tgt_emotion", pair.tgt_emotion, table.emotions),
    ):
        if name not in names:
            what = "speakers" if flag.endswith("speaker") else "emotions"
            raise UserError(
                f"{flag} {name!r} is unknown to the model; known {what}: {', '.join(names)}"
            )
    with_stats = stats_speakers(stats)
    for name in (pair.src_speaker, pair.tgt_speaker):
        if with_stats and name not in with_stats:
            raise UserError(
                f"speaker {name!r} has no statistics in this spk (it has: "
                f"{', '.join(with_stats)}); convert with one of those, or fine-tune on a spk "
                "that holds it"
            )
    return pair
