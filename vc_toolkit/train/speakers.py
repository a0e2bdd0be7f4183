"""The tag's speaker table, and its embedding rows carried across a fine-tune by name.

A tag trains on the speakers of its spk (``dump/<SPK>/speakers.json``). A tag that
fine-tunes a parent keeps the parent's rows in the parent's order
(``exp/<PARENT>/speakers.json``; a parent trained before speaker tables existed has
``src`` and ``tgt``) and appends the names its spk adds. The table is written to
``exp/<TAG>/speakers.json`` and into every checkpoint (``state["speakers"]``), so
inference rebuilds the model with ``build_model(..., speakers=SpeakerTable.load(...))``.

When the parent's weights are loaded, every embedding table
(:meth:`~vc_toolkit.models.FastSpeech2VC.embedding_tables`) is filled row by row: a name
the parent had gets the parent's row; a new name gets the mean of the parent's rows, or
the row of the parent speaker named by ``pretrain.speaker_init``. The table's
``seeded_from`` records the choice (``mean`` or the parent name).

Example:
    >>> parent = SpeakerTable(speakers=["src", "tgt"])
    >>> child = merge(parent, SpeakerTable(speakers=["f1", "src"]), {"f1": "tgt"})
    >>> child.speakers, child.seeded_from
    (['src', 'tgt', 'f1'], {'f1': 'tgt'})
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from vc_toolkit.config.tag import TagConfig
from vc_toolkit.data.labels import SPEAKERS_FILE, SpeakerTable
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout

MEAN = "mean"
"""``seeded_from`` value of a new row initialised with the mean of the parent's rows."""


class SpeakerInitError(UserError):
    """``pretrain.speaker_init`` or the parent's table cannot be used."""


def spk_table(spk: str, layout: Layout) -> SpeakerTable:
    """The speakers and emotions of spk ``spk`` (``src``/``tgt`` if prepared before tables)."""
    return SpeakerTable.load(layout.dump(spk) / SPEAKERS_FILE)


def parent_table(parent: str, layout: Layout) -> SpeakerTable:
    """The table tag ``parent`` trained with (``src``/``tgt`` if it has none)."""
    return SpeakerTable.load(layout.exp(parent) / SPEAKERS_FILE)


def merge(parent: SpeakerTable, spk: SpeakerTable, init: Mapping[str, str]) -> SpeakerTable:
    """The parent's names, then the names of ``spk`` the parent lacks (in ``spk``'s order).

    Args:
        parent: The parent tag's table.
        spk: The child spk's table.
        init: ``pretrain.speaker_init``, ``{new speaker: parent speaker}``.

    Returns:
        The child's table; ``seeded_from`` maps every new speaker to its parent speaker or
        :data:`MEAN`.

    Raises:
        SpeakerInitError: ``init`` names a speaker that is not new, or a parent speaker
            the parent does not have.
    """
    new = [n for n in spk.speakers if n not in parent.speakers]
    for child, source in init.items():
        if child not in new:
            where = (
                "is already in the parent's table"
                if child in parent.speakers
                else ("is not a speaker of this spk")
            )
            raise SpeakerInitError(
                f"pretrain.speaker_init: {child!r} {where}; list only new speakers "
                f"({', '.join(new) or 'none'})"
            )
        if source not in parent.speakers:
            raise SpeakerInitError(
                f"pretrain.speaker_init: {child!r} -> {source!r}, but the parent has no speaker "
                f"{source!r}; choose one of {', '.join(parent.speakers)}"
            )
    emotions = parent.emotions + [e for e in spk.emotions if e not in parent.emotions]
    return SpeakerTable(
        speakers=parent.speakers + new,
        emotions=emotions,
        seeded_from={n: init.get(n, MEAN) for n in new},
    )


def tag_table(cfg: TagConfig, layout: Layout) -> SpeakerTable:
    """The table of a tag: its spk's, or merged onto its pretrain parent's (:func:`merge`)."""
    own = spk_table(cfg.spk, layout)
    if cfg.pretrain is None:
        return own
    return merge(parent_table(cfg.pretrain.tag, layout), own, cfg.pretrain.speaker_init)


def _names(table: SpeakerTable, kind: str) -> list[str]:
    return table.speakers if kind == "speakers" else table.emotions


def map_rows(
    parent_rows: Tensor, kind: str, parent: SpeakerTable, child: SpeakerTable
) -> tuple[Tensor, list[str], dict[str, list[int]]]:
    """The child's rows of one embedding table, taken by name from the parent's.

    Args:
        parent_rows: The parent's table, (len(parent names), dim).
        kind: ``speakers`` or ``emotions``.
        parent: The parent's table of names.
        child: The child's table of names (``seeded_from`` names the seed of new speakers;
            new emotions get the mean).

    Returns:
        The child's rows (len(child names), dim); one report line per name; and the parent
        rows each new name was seeded from.

    Raises:
        SpeakerInitError: the parent's rows do not match its table of names.
    """
    theirs, ours = _names(parent, kind), _names(child, kind)
    if parent_rows.shape[0] != len(theirs):
        raise SpeakerInitError(
            f"the parent checkpoint has {parent_rows.shape[0]} {kind} rows but its "
            f"speakers.json names {len(theirs)}; retrain the parent or set pretrain.exclude"
        )
    single = kind[:-1]
    rows, lines, seeds = [], [], {}
    for name in ours:
        if name in theirs:
            i = theirs.index(name)
            rows.append(parent_rows[i])
            lines.append(f"{single} {name}: parent row {i}")
            continue
        source = child.seeded_from.get(name, MEAN) if kind == "speakers" else MEAN
        if source == MEAN:
            seeds[name] = list(range(len(theirs)))
            rows.append(parent_rows.mean(dim=0))
            lines.append(f"{single} {name}: new row, mean of {len(theirs)} parent rows")
        else:
            i = theirs.index(source)
            seeds[name] = [i]
            rows.append(parent_rows[i])
            lines.append(f"{single} {name}: new row, parent row {i} ({source})")
    return torch.stack(rows), lines, seeds


def check_resumed(saved: Mapping | None, table: SpeakerTable, tag: str) -> None:
    """A tag resumed from its own checkpoint still has the speakers it started with.

    Raises:
        SpeakerInitError: the names differ (the spk or parent table changed).
    """
    if saved is None:
        return
    before = SpeakerTable.from_dict(saved)
    if (before.speakers, before.emotions) != (table.speakers, table.emotions):
        raise SpeakerInitError(
            f"the speakers of tag '{tag}' changed since it started ({len(before.speakers)} -> "
            f"{len(table.speakers)} speakers, {len(before.emotions)} -> {len(table.emotions)} "
            "emotions); start the tag over with --force"
        )
