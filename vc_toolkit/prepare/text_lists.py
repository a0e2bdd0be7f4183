"""Stage 0 of a text spk: recordings with their transcripts, split and frozen.

Outputs under ``data/<SPK>/``, per split: ``tgt.scp`` (``utt_id path`` of the
recording), ``text`` (``utt_id transcript``, one line each: the transcript frozen with
the spk; these files are part of its fingerprint) and ``labels.tsv`` (the speaker on
both sides, so speaker tables work as for parallel spks). ``phone_times/<utt>.tsv``
holds the synthesiser's own phoneme timings when the corpus has them (``demo_tts``),
and ``report.txt`` the counts and every file left out with the reason.

Utterance ids are the corpus ids (a spk of one voice) or ``{voice}__{id}`` (several).
The split is made over sentence ids, as for parallel spks.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter

from vc_toolkit import log
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.data.labels import LABELS_FILE, Labels, SpeakerTable, write_labels
from vc_toolkit.io import atomic_write_text, write_scp
from vc_toolkit.paths import SPLITS, Layout
from vc_toolkit.prepare.corpora import CorpusError, Prepared, Utterance
from vc_toolkit.prepare.split import check_audio, make_split
from vc_toolkit.records import TEXT_FILE

logger = log.get("stage0")
PHONE_TIMES = "phone_times"


def utt_id(u: Utterance, single: bool) -> str:
    """The utterance id of a recording (see the module doc)."""
    return u.sentence if single else f"{u.voice}__{u.sentence}".replace(":", "-")


def _clean(text: str) -> str:
    """One line of text: whitespace (tabs, newlines) collapsed to single spaces."""
    return " ".join(text.split())


def _items(prepared: list[Prepared]) -> dict[str, Utterance]:
    """Every transcribed recording by utterance id."""
    utts = [u for q in prepared for u in q.utterances]
    single = len({u.voice for u in utts}) == 1
    out: dict[str, Utterance] = {}
    for u in utts:
        uid = utt_id(u, single)
        if uid in out:
            raise CorpusError(
                f"voice '{u.voice}' reads sentence '{u.sentence}' twice ({out[uid].path} and "
                f"{u.path}); give the corpora distinct speaker names or exclude one"
            )
        out[uid] = u
    return dict(sorted(out.items()))


def write_lists(
    spk: str, cfg: SpkConfig, layout: Layout, prepared: list[Prepared], key: str
) -> tuple[dict, SpeakerTable]:
    """Split and list the recordings of a text spk; write its report.

    Returns:
        The stage-0 summary and the speaker table of the usable recordings.

    Raises:
        CorpusError: too few usable sentences for the split, or a duplicate recording.
    """
    data_dir = layout.data(spk)
    items = _items(prepared)
    unreadable, usable = [], {}
    for uid, u in items.items():
        why = check_audio(u.path)
        if why:
            unreadable.append(f"{uid}\t{layout.shown(u.path)}\t{why}")
        else:
            usable[uid] = u
    drop = set(cfg.exclude)
    excluded = [uid for uid, u in usable.items() if drop & {uid, u.sentence}]
    unknown_excl = sorted(drop - set(items) - {u.sentence for u in items.values()})
    usable = {uid: u for uid, u in usable.items() if not drop & {uid, u.sentence}}
    sentences = sorted({u.sentence for u in usable.values()})
    if len(sentences) < cfg.split.dev + cfg.split.eval + 1:
        raise CorpusError(
            f"spk '{spk}' has {len(usable)} usable recordings over {len(sentences)} sentences, "
            f"but split.dev ({cfg.split.dev}) + split.eval ({cfg.split.eval}) leave no training "
            "data; lower them or add recordings"
        )
    split_of = {s: k for k, ids in make_split(sentences, cfg.split).items() for s in ids}
    splits: dict[str, dict[str, Utterance]] = {k: {} for k in SPLITS}
    for uid, u in usable.items():
        if u.sentence in split_of:
            splits[split_of[u.sentence]][uid] = u
    capped = sum(1 for u in usable.values() if u.sentence not in split_of)
    labels = {
        uid: Labels(u.sentence, u.speaker, u.speaker, u.emotion, u.emotion)
        for uid, u in usable.items()
    }
    for split, utts in splits.items():
        folder = data_dir / split
        write_scp(folder / "tgt.scp", {uid: layout.shown(u.path) for uid, u in utts.items()})
        write_scp(folder / TEXT_FILE, {uid: _clean(u.text or "") for uid, u in utts.items()})
        write_labels(folder / LABELS_FILE, {uid: labels[uid] for uid in utts})
        (folder / "src.scp").unlink(missing_ok=True)  # left by an earlier parallel build
    times = _copy_phone_times(layout, spk, splits)
    table = SpeakerTable.from_labels(labels.values())

    kept = {uid: u for utts in splits.values() for uid, u in utts.items()}
    per_voice = Counter(u.voice for u in kept.values())
    lines = [
        f"# stage 0 report for text spk '{spk}' "
        f"({dt.datetime.now().isoformat(timespec='seconds')})",
        f"## recordings per voice (total, {', '.join(SPLITS)}): {len(per_voice)}",
    ]
    for voice, n in sorted(per_voice.items()):
        by_split = [sum(1 for u in splits[k].values() if u.voice == voice) for k in SPLITS]
        lines.append(f"{voice}\t{n}\t" + "\t".join(map(str, by_split)))
    for title, rows in (
        (
            "recordings without a transcript",
            [layout.shown(f) for q in prepared for f in q.unmatched_tgt],
        ),
        (
            "transcripts without a usable recording (file, reason)",
            [f"{layout.shown(f)}\t{why}" for q in prepared for f, why in q.skipped],
        ),
        ("unreadable, empty or truncated audio (utt, file, reason)", unreadable),
        ("excluded by the spk config", excluded),
        ("exclude ids not in the corpus", unknown_excl),
    ):
        lines.append(f"## {title}: {len(rows)}")
        lines.extend(rows)
    if capped:
        lines.append(f"## recordings left out by split.train ({cfg.split.train}): {capped}")
    atomic_write_text(data_dir / "report.txt", "\n".join(lines) + "\n")

    counts = {k: len(v) for k, v in splits.items()}
    unmatched = sum(len(q.unmatched_tgt) + len(q.skipped) for q in prepared)
    summary = {
        "key": key,
        "kind": "text",
        "counts": counts,
        "unmatched": unmatched,
        "unreadable": len(unreadable),
        "excluded": len(excluded),
        "speakers": len(table.speakers),
        "voices": len(per_voice),
        "sentences": len(split_of),
        "phone_times": times,
    }
    logger.info("lists: %s", ", ".join(f"{k} {counts[k]}" for k in SPLITS))
    if unmatched or unreadable or unknown_excl:
        logger.warning(
            "%d recordings or transcripts without the other, %d unusable files and %d unknown "
            "exclude ids; see data/%s/report.txt",
            unmatched,
            len(unreadable),
            len(unknown_excl),
            spk,
        )
    logger.info(
        "outputs: data/%s/{train,dev,eval}/{tgt.scp,text,labels.tsv}%s; frozen config "
        "dump/%s/config.yaml",
        spk,
        f", {PHONE_TIMES}/ ({times} files)" if times else "",
        spk,
    )
    return summary, table


def _copy_phone_times(layout: Layout, spk: str, splits: dict[str, dict[str, Utterance]]) -> int:
    """Copy the phoneme timings of the listed recordings to ``data/<spk>/phone_times/``."""
    folder = layout.data(spk) / PHONE_TIMES
    shutil.rmtree(folder, ignore_errors=True)
    n = 0
    for utts in splits.values():
        for uid, u in utts.items():
            if u.phone_times is not None and u.phone_times.is_file():
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(u.phone_times, folder / f"{uid}.tsv")
                n += 1
    return n
