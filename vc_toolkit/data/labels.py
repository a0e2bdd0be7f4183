"""Who speaks each side of a parallel utterance, and the speaker/emotion tables.

A spk may hold many parallel pairs of speakers or speaking styles. Stage 0 writes,
per split, ``labels.tsv`` next to ``src.scp``/``tgt.scp`` (one row per utterance:
its sentence id and the speaker and emotion of each side) and freezes the
tables of every speaker and emotion in the spk as ``dump/<SPK>/speakers.json``.
Stage 1 copies the rows of the kept utterances into ``dump/<SPK>/<split>/labels.tsv``.

A tag has its own :class:`SpeakerTable`: the spk's table, or, when it fine-tunes a
parent, the parent's table with the spk's new names appended (rows are matched by
name, see :mod:`vc_toolkit.train.pretrain`). Embedding row ``i`` is name ``i``.

Spks prepared before labels existed have no ``labels.tsv``; their utterances read as
:func:`legacy_labels` (speakers ``src`` and ``tgt``, emotion :data:`NEUTRAL`).

Example:
    >>> t = SpeakerTable(speakers=["jvs001", "jvs010"], emotions=[NEUTRAL])
    >>> lab = Labels("VOICEACTRESS100_001", "jvs001", "jvs010")
    >>> t.ids(lab)
    {'src_spk': 0, 'tgt_spk': 1, 'src_emo': 0, 'tgt_emo': 0}
    >>> lab.pair, lab.src_voice
    ('jvs001->jvs010', 'jvs001')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vc_toolkit.errors import UserError
from vc_toolkit.io import atomic_write_text

LABELS_FILE = "labels.tsv"
SPEAKERS_FILE = "speakers.json"
HEADER = "utt_id\tsentence\tsrc_speaker\tsrc_emotion\ttgt_speaker\ttgt_emotion"
NEUTRAL = "neutral"
"""The emotion of utterances without a style label."""
ID_KEYS = ("src_spk", "tgt_spk", "src_emo", "tgt_emo")
"""Item/batch keys of the integer speaker and emotion ids."""


class LabelError(UserError, ValueError):
    """A labels file or speaker table is malformed, or a name is unknown."""


@dataclass(frozen=True)
class Labels:
    """Sentence, speakers and emotions of one parallel utterance.

    Attributes:
        sentence: id of the sentence both sides read (the split is made over these).
        src_speaker: source speaker name.
        tgt_speaker: target speaker name.
        src_emotion: source emotion/style name.
        tgt_emotion: target emotion/style name.
    """

    sentence: str
    src_speaker: str
    tgt_speaker: str
    src_emotion: str = NEUTRAL
    tgt_emotion: str = NEUTRAL

    @property
    def src_voice(self) -> str:
        """``speaker`` or ``speaker:emotion`` (when the emotion is not neutral)."""
        return voice_name(self.src_speaker, self.src_emotion)

    @property
    def tgt_voice(self) -> str:
        """``speaker`` or ``speaker:emotion`` (when the emotion is not neutral)."""
        return voice_name(self.tgt_speaker, self.tgt_emotion)

    @property
    def pair(self) -> str:
        """``src_voice->tgt_voice``: the key of per-pair reports."""
        return f"{self.src_voice}->{self.tgt_voice}"


def voice_name(speaker: str, emotion: str = NEUTRAL) -> str:
    """``speaker`` for neutral speech, else ``speaker:emotion``."""
    return speaker if emotion == NEUTRAL else f"{speaker}:{emotion}"


def legacy_labels(utt_id: str) -> Labels:
    """Labels of an utterance of a spk prepared before labels existed (one-to-one)."""
    return Labels(sentence=utt_id, src_speaker="src", tgt_speaker="tgt")


def _check_name(name: str, what: str, where: str) -> None:
    if not name or any(c.isspace() for c in name) or name in ("->",) or "->" in name:
        raise LabelError(f"{where}: {what} {name!r} must be non-empty, without spaces or '->'")


def write_labels(path: str | Path, rows: Mapping[str, Labels]) -> None:
    """Write ``labels.tsv`` (sorted by utterance id), atomically."""
    lines = [HEADER]
    for utt in sorted(rows):
        lab = rows[utt]
        for what, name in (
            ("utterance id", utt),
            ("sentence id", lab.sentence),
            ("speaker", lab.src_speaker),
            ("speaker", lab.tgt_speaker),
            ("emotion", lab.src_emotion),
            ("emotion", lab.tgt_emotion),
        ):
            _check_name(name, what, str(path))
        lines.append(
            f"{utt}\t{lab.sentence}\t{lab.src_speaker}\t{lab.src_emotion}"
            f"\t{lab.tgt_speaker}\t{lab.tgt_emotion}"
        )
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def read_labels(path: str | Path, utt_ids: Iterable[str] | None = None) -> dict[str, Labels]:
    """Read ``labels.tsv``; without the file, :func:`legacy_labels` of ``utt_ids``.

    Raises:
        LabelError: bad header or row, or ``utt_ids`` names an utterance without a row.
    """
    path = Path(path)
    if not path.is_file():
        if utt_ids is None:
            raise LabelError(f"{path} not found; rerun stage 0 (./run.sh --stage 0 --force)")
        return {u: legacy_labels(u) for u in utt_ids}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != HEADER:
        raise LabelError(f"{path}: unexpected header; rerun stage 0 of its spk with --force")
    out: dict[str, Labels] = {}
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) != 6:
            raise LabelError(f"{path}:{lineno}: expected 6 tab-separated columns, got {len(parts)}")
        utt, sentence, s_spk, s_emo, t_spk, t_emo = parts
        out[utt] = Labels(sentence, s_spk, t_spk, s_emo, t_emo)
    missing = sorted(set(utt_ids or ()) - out.keys())
    if missing:
        raise LabelError(
            f"{path}: no labels for {len(missing)} utterances (e.g. {missing[0]}); "
            "rerun stage 0 and 1 of its spk with --force"
        )
    return out


@dataclass
class SpeakerTable:
    """Speaker and emotion names; embedding row ``i`` belongs to name ``i``.

    Attributes:
        speakers: speaker names, in row order.
        emotions: emotion names, in row order (always holds :data:`NEUTRAL`).
        seeded_from: for a fine-tuned tag, ``{new name: parent name or "mean"}``: how rows
            the parent did not have were initialised (empty otherwise).
    """

    speakers: list[str]
    emotions: list[str] = field(default_factory=lambda: [NEUTRAL])
    seeded_from: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_labels(cls, labels: Iterable[Labels]) -> SpeakerTable:
        """Every speaker and emotion in ``labels``, sorted (:data:`NEUTRAL` first)."""
        labels = list(labels)
        speakers = sorted({n for lab in labels for n in (lab.src_speaker, lab.tgt_speaker)})
        emotions = {n for lab in labels for n in (lab.src_emotion, lab.tgt_emotion)} - {NEUTRAL}
        return cls(speakers=speakers, emotions=[NEUTRAL, *sorted(emotions)])

    def speaker_id(self, name: str) -> int:
        try:
            return self.speakers.index(name)
        except ValueError:
            raise LabelError(
                f"unknown speaker {name!r}; known: {', '.join(self.speakers)}"
            ) from None

    def emotion_id(self, name: str) -> int:
        try:
            return self.emotions.index(name)
        except ValueError:
            raise LabelError(
                f"unknown emotion {name!r}; known: {', '.join(self.emotions)}"
            ) from None

    def ids(self, labels: Labels) -> dict[str, int]:
        """The integer ids (:data:`ID_KEYS`) of one utterance's labels."""
        return {
            "src_spk": self.speaker_id(labels.src_speaker),
            "tgt_spk": self.speaker_id(labels.tgt_speaker),
            "src_emo": self.emotion_id(labels.src_emotion),
            "tgt_emo": self.emotion_id(labels.tgt_emotion),
        }

    def as_dict(self) -> dict:
        return {
            "speakers": self.speakers,
            "emotions": self.emotions,
            "seeded_from": self.seeded_from,
        }

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.as_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Mapping) -> SpeakerTable:
        return cls(
            speakers=list(data["speakers"]),
            emotions=list(data.get("emotions", [NEUTRAL])),
            seeded_from=dict(data.get("seeded_from", {})),
        )

    @classmethod
    def load(cls, path: str | Path) -> SpeakerTable:
        """Read a table; a spk folder without one (prepared earlier) has ``src`` and ``tgt``."""
        path = Path(path)
        if not path.is_file():
            return cls(speakers=["src", "tgt"])
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError) as err:
            raise LabelError(f"{path}: not a speaker table ({err}); rerun stage 0") from None


__all__ = [
    "HEADER",
    "ID_KEYS",
    "LABELS_FILE",
    "NEUTRAL",
    "SPEAKERS_FILE",
    "LabelError",
    "Labels",
    "SpeakerTable",
    "legacy_labels",
    "read_labels",
    "voice_name",
    "write_labels",
]
