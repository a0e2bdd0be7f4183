"""One corpus folder of many speakers/styles, labels parsed from each file's path.

``labels_from: folder`` reads labels from folder levels of the path relative to
``root`` (``levels: {speaker: 0, emotion: 1}``: ``root/<speaker>/<emotion>/x.wav``;
negative levels count from the file's own folder, -1). ``labels_from: pattern``
matches ``regex`` against the relative path (``/`` separators) with named groups
``speaker`` (required), ``emotion`` (default neutral) and ``sentence``. The sentence
id defaults to the file stem: files of different voices with the same sentence id
are parallel. Files whose labels cannot be parsed are listed in the stage-0
report, not fatal. Every ordered pair of two different voices is a candidate.

Example:
    >>> from vc_toolkit.config.spk import LabeledCorpus
    >>> c = LabeledCorpus(root=".", labels_from="pattern",
    ...                   regex=r"(?P<speaker>[^/]+)/(?P<emotion>[^/_]+)_(?P<sentence>\\d+)\\.wav")
    >>> parse_labels(Path("amy/happy_001.wav"), c)
    ('001', 'amy', 'happy')
    >>> parse_labels(Path("amy/notes.wav"), c)
    'path does not match corpus.regex'
"""

from __future__ import annotations

import re
from pathlib import Path

from vc_toolkit.config.spk import NEUTRAL, LabeledCorpus
from vc_toolkit.paths import Layout
from vc_toolkit.prepare.corpora.base import CorpusError, Prepared, Utterance


def parse_labels(rel: Path, corpus: LabeledCorpus) -> tuple[str, str, str] | str:
    """``(sentence, speaker, emotion)`` of a file (path relative to root), or why not."""
    got: dict[str, str | None]
    if corpus.labels_from == "pattern":
        m = re.fullmatch(corpus.regex, rel.as_posix())
        if m is None:
            return "path does not match corpus.regex"
        got = m.groupdict()
    else:
        folders = rel.parts[:-1]
        got = {}
        for key, level in corpus.levels.items():
            if not -len(folders) <= level < len(folders):
                return f"no folder level {level} for {key} (the file is {len(folders)} deep)"
            got[key] = folders[level]
    sentence = got.get("sentence") or rel.stem
    speaker, emotion = got.get("speaker"), got.get("emotion") or NEUTRAL
    for what, name in (("speaker", speaker), ("emotion", emotion), ("sentence", sentence)):
        if not name or any(c.isspace() for c in name) or "->" in name:
            return f"{what} label {name!r} is empty or holds spaces or '->'"
    return sentence, str(speaker), emotion


def prepare(corpus: LabeledCorpus, layout: Layout, nj: int = 1) -> Prepared:
    """Label every file under ``corpus.root`` that matches ``corpus.pattern``."""
    root = layout.resolve(corpus.root)
    if not root.is_dir():
        raise CorpusError(f"corpus.root {root} is not a folder; point it at the corpus folder")
    files = sorted(p for p in root.glob(corpus.pattern) if p.is_file())
    if not files:
        raise CorpusError(
            f"no files matching '{corpus.pattern}' under corpus.root {root}; "
            "check the folder or corpus.pattern"
        )
    prepared = Prepared(candidates=None, roots=[(root, corpus.pattern)])
    seen: dict[tuple[str, str, str], Path] = {}
    for path in files:
        parsed = parse_labels(path.relative_to(root), corpus)
        if isinstance(parsed, str):
            prepared.skipped.append((path, parsed))
            continue
        sentence, speaker, emotion = parsed
        if parsed in seen:
            raise CorpusError(
                f"{seen[parsed]} and {path} both hold sentence '{sentence}' of "
                f"{speaker} ({emotion}); fix corpus.levels/regex so each file gets its own labels"
            )
        seen[parsed] = path
        prepared.utterances.append(Utterance(sentence, path, speaker, emotion))
    if not prepared.utterances:
        raise CorpusError(
            f"no file under {root} got labels ({prepared.skipped[0][1]}, e.g. "
            f"{prepared.skipped[0][0].relative_to(root)}); check corpus.levels or corpus.regex"
        )
    return prepared
