"""Pair the labeled utterances of a spk's corpora into parallel (source, target) items.

Every corpus of a spk labels its files with a voice (speaker, or speaker:emotion)
and a sentence id. A *pair item* is two files of different voices reading the same
sentence. Which ordered voice pairs are used:

* without ``pairs:`` in the spk, each corpus's own candidates, within that corpus:
  the single (source, target) pair of a one-to-one recipe, or every ordered pair of
  voices of a many-speaker corpus;
* with ``pairs: [[A, B], ...]``, exactly those ordered pairs, across all corpora.

Utterance ids: when the spk holds a single voice pair, the sentence id (as before
multi-speaker spks existed); otherwise ``{src_voice}__{tgt_voice}__{sentence}`` with
``:`` replaced by ``-`` (e.g. ``m3-excited__f1__harvard_241``).

Example:
    >>> from pathlib import Path
    >>> u = [Utterance(s, Path(f"{v}/{s}.wav"), v) for v in "abc" for s in ("1", "2")]
    >>> [p.utt_id for p in enumerate_pairs([u], [None], [["a", "c"], ["c", "a"]])]
    ['a__c__1', 'a__c__2', 'c__a__1', 'c__a__2']
    >>> len(enumerate_pairs([u], [None])), len(enumerate_pairs([u], [[("a", "b")]]))
    (12, 2)
    >>> [p.utt_id for p in enumerate_pairs([u], [[("a", "b")]])]
    ['1', '2']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from vc_toolkit.config import ConfigError
from vc_toolkit.data.labels import Labels
from vc_toolkit.prepare.corpora.base import CorpusError, Pair, Utterance


def utt_id(src_voice: str, tgt_voice: str, sentence: str, single: bool) -> str:
    """The utterance id of a pair item (see the module doc)."""
    if single:
        return sentence
    return f"{src_voice}__{tgt_voice}__{sentence}".replace(":", "-")


def _index(corpora: Sequence[Sequence[Utterance]]) -> list[dict[str, dict[str, Utterance]]]:
    """Per corpus, ``{voice: {sentence: utterance}}``; a voice reads a sentence once per spk."""
    seen: dict[tuple[str, str], Utterance] = {}
    out = []
    for utts in corpora:
        index: dict[str, dict[str, Utterance]] = {}
        for u in utts:
            first = seen.setdefault((u.voice, u.sentence), u)
            if first is not u:
                raise CorpusError(
                    f"voice '{u.voice}' reads sentence '{u.sentence}' twice ({first.path} and "
                    f"{u.path}); give the corpora distinct speaker names or exclude one"
                )
            index.setdefault(u.voice, {})[u.sentence] = u
        out.append(index)
    return out


def enumerate_pairs(
    corpora: Sequence[Sequence[Utterance]],
    candidates: Sequence[Sequence[tuple[str, str]] | None],
    pairs: Sequence[Sequence[str]] = (),
) -> list[Pair]:
    """Every pair item of a spk, sorted by utterance id.

    Args:
        corpora: the labeled utterances of each corpus.
        candidates: per corpus, its allowed ordered (source voice, target voice) pairs,
            or ``None`` for every ordered pair of two different voices of the corpus.
        pairs: the spk's ``pairs:`` (ordered voice pairs across all corpora); empty: use
            ``candidates``.

    Returns:
        Pairs of different voices reading the same sentence, with their labels.

    Raises:
        ConfigError: ``pairs`` names a voice no corpus has.
        CorpusError: a voice reads the same sentence twice.
    """
    index = _index(corpora)
    wanted: list[tuple[str, str, list[int]]] = []  # (src voice, tgt voice, corpora to look in)
    if pairs:
        known = sorted({v for idx in index for v in idx})
        unknown = sorted({v for p in pairs for v in p} - set(known))
        if unknown:
            raise ConfigError(
                f"pairs names unknown voices {', '.join(unknown)}; known voices: "
                f"{', '.join(known)} (speaker or speaker:emotion)"
            )
        everywhere = list(range(len(index)))
        wanted = [(a, b, everywhere) for a, b in dict.fromkeys((p[0], p[1]) for p in pairs)]
    else:
        for i, (idx, cand) in enumerate(zip(index, candidates, strict=True)):
            voices = sorted(idx)
            allowed = cand if cand is not None else [(a, b) for a in voices for b in voices]
            wanted.extend((a, b, [i]) for a, b in allowed)
    found: list[tuple[Utterance, Utterance]] = []
    for a, b, where in wanted:
        if a == b:
            continue
        src = {s: u for i in where for s, u in index[i].get(a, {}).items()}
        tgt = {s: u for i in where for s, u in index[i].get(b, {}).items()}
        found.extend((src[s], tgt[s]) for s in sorted(src.keys() & tgt.keys()))
    single = len({(s.voice, t.voice) for s, t in found}) == 1
    out = {}
    for s, t in found:
        uid = utt_id(s.voice, t.voice, s.sentence, single)
        lab = Labels(s.sentence, s.speaker, t.speaker, s.emotion, t.emotion)
        out[uid] = Pair(uid, s.path, t.path, lab)
    return [out[u] for u in sorted(out)]


def pair_counts(pairs: Sequence[Pair]) -> tuple[Counter, Counter, Counter]:
    """Utterances per speaker, per voice and pair items per voice pair.

    A voice's utterances are its distinct files used in at least one pair item.
    """
    files: dict[str, set] = {}
    speakers: dict[str, set] = {}
    per_pair: Counter = Counter()
    for p in pairs:
        lab = p.labels
        for voice, spk, path in (
            (lab.src_voice, lab.src_speaker, p.src),
            (lab.tgt_voice, lab.tgt_speaker, p.tgt),
        ):
            files.setdefault(voice, set()).add(path)
            speakers.setdefault(spk, set()).add(path)
        per_pair[lab.pair] += 1
    return (
        Counter({k: len(v) for k, v in speakers.items()}),
        Counter({k: len(v) for k, v in files.items()}),
        per_pair,
    )
