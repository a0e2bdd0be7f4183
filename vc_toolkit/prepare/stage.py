"""Stage 0: turn a spk's corpora into Kaldi-style parallel lists and pin the spk.

Outputs under ``data/<SPK>/``: ``{train,dev,eval}/{src,tgt}.scp`` (``utt_id path``)
and ``{train,dev,eval}/labels.tsv`` (sentence, speakers and emotions of each
utterance, :func:`vc_toolkit.data.labels.write_labels`), ``report.txt`` (utterances
per speaker, voice and pair; unmatched, unlabeled, unreadable and excluded files)
and ``prepared.json``. The resolved spk config is frozen into
``dump/<SPK>/config.yaml`` with its fingerprint (see :mod:`vc_toolkit.config.pin`),
and the speaker/emotion table of the usable pairs into ``dump/<SPK>/speakers.json``.

The corpora's labeled files are paired by :mod:`vc_toolkit.prepare.pairs` (utterance
ids are sentence ids for a one-to-one spk, ``{src}__{tgt}__{sentence}`` otherwise).
The split is made over sentence ids: every pair reading a sentence lands in the same
split, so dev/eval sentences are never seen in training.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

from vc_toolkit import log
from vc_toolkit.config import ConfigError, load_spk
from vc_toolkit.config.pin import (
    check_frozen,
    config_hash,
    fingerprint,
    freeze,
    read_fingerprint,
)
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.data.labels import LABELS_FILE, SPEAKERS_FILE, SpeakerTable, write_labels
from vc_toolkit.io import atomic_write_text, write_scp
from vc_toolkit.paths import SPLITS, Layout
from vc_toolkit.prepare import text_lists
from vc_toolkit.prepare.corpora import RECIPES, CorpusError, Pair, Prepared
from vc_toolkit.prepare.pairs import enumerate_pairs, pair_counts
from vc_toolkit.prepare.split import check_audio, make_split
from vc_toolkit.records import check_inputs, input_digests, input_files, record_corpus_files

logger = log.get("stage0")


def _stage0_key(cfg: SpkConfig) -> str:
    keys = {"corpus": cfg.corpus, "split": cfg.split, "exclude": cfg.exclude}
    for name in ("corpora", "pairs"):  # only when set: spks prepared earlier keep their key
        if getattr(cfg, name):
            keys[name] = getattr(cfg, name)
    return config_hash(keys)


def _readable(pairs: list[Pair], layout: Layout) -> tuple[list[Pair], list[str]]:
    """Pairs whose two files read, and ``utt, file, reason`` rows of those that do not."""
    why: dict = {}
    usable, unreadable = [], []
    for pair in pairs:
        for p in (pair.src, pair.tgt):
            if p not in why:
                why[p] = check_audio(p)
        bad = [
            f"{pair.utt_id}\t{layout.shown(p)}\t{why[p]}" for p in (pair.src, pair.tgt) if why[p]
        ]
        (unreadable.extend(bad) if bad else usable.append(pair))
    return usable, unreadable


def _count_lines(splits: dict, per_speaker, per_voice, per_pair) -> list[str]:
    """Report sections: utterances per speaker and voice, pair items per pair and split."""
    lines = [f"## utterances per speaker: {len(per_speaker)}"]
    lines += [f"{k}\t{n}" for k, n in sorted(per_speaker.items())]
    lines.append(f"## utterances per voice (speaker:emotion): {len(per_voice)}")
    lines += [f"{k}\t{n}" for k, n in sorted(per_voice.items())]
    lines.append(f"## pair items per pair (total, {', '.join(SPLITS)}): {len(per_pair)}")
    by_split = {k: Counter(p.labels.pair for p in splits[k]) for k in SPLITS}
    for name, n in sorted(per_pair.items()):
        lines.append(f"{name}\t{n}\t" + "\t".join(str(by_split[k][name]) for k in SPLITS))
    return lines


def _write_pairs(
    spk: str, cfg: SpkConfig, layout: Layout, prepared: list[Prepared], key: str
) -> tuple[dict, SpeakerTable]:
    """Pair, split and list the utterances of a parallel spk; its report and summary."""
    data_dir = layout.data(spk)
    pairs = enumerate_pairs(
        [p.utterances for p in prepared], [p.candidates for p in prepared], cfg.pairs
    )
    usable, unreadable = _readable(pairs, layout)
    drop = set(cfg.exclude)
    excluded = [p.utt_id for p in usable if drop & {p.utt_id, p.labels.sentence}]
    known = {p.utt_id for p in pairs} | {p.labels.sentence for p in pairs}
    unknown_excl = sorted(drop - known)
    usable = [p for p in usable if not drop & {p.utt_id, p.labels.sentence}]
    sentences = sorted({p.labels.sentence for p in usable})
    need = cfg.split.dev + cfg.split.eval + 1
    if len(sentences) < need:
        raise CorpusError(
            f"spk '{spk}' has {len(usable)} usable pairs over {len(sentences)} sentences, but "
            f"split.dev ({cfg.split.dev}) + split.eval ({cfg.split.eval}) leave no training "
            "data; lower them or add pairs"
        )
    split_of = {s: k for k, ids in make_split(sentences, cfg.split).items() for s in ids}
    splits: dict[str, list[Pair]] = {k: [] for k in SPLITS}
    for p in usable:
        if p.labels.sentence in split_of:
            splits[split_of[p.labels.sentence]].append(p)
    capped = sum(1 for p in usable if p.labels.sentence not in split_of)
    for split, items in splits.items():
        for side in ("src", "tgt"):
            entries = {p.utt_id: layout.shown(getattr(p, side)) for p in items}
            write_scp(data_dir / split / f"{side}.scp", entries)
        write_labels(data_dir / split / LABELS_FILE, {p.utt_id: p.labels for p in items})
    kept = [p for items in splits.values() for p in items]
    table = SpeakerTable.from_labels(p.labels for p in usable)

    per_speaker, per_voice, per_pair = pair_counts(kept)
    lines = [
        f"# stage 0 report for spk '{spk}' ({dt.datetime.now().isoformat(timespec='seconds')})"
    ]
    lines += _count_lines(splits, per_speaker, per_voice, per_pair)
    for title, rows in (
        (
            "source files without a target",
            [layout.shown(f) for q in prepared for f in q.unmatched_src],
        ),
        (
            "target files without a source",
            [layout.shown(f) for q in prepared for f in q.unmatched_tgt],
        ),
        (
            "files without labels (file, reason)",
            [f"{layout.shown(f)}\t{why}" for q in prepared for f, why in q.skipped],
        ),
        ("unreadable, empty or truncated audio (utt, file, reason)", unreadable),
        ("excluded by the spk config", excluded),
        ("exclude ids not in the corpus", unknown_excl),
    ):
        lines.append(f"## {title}: {len(rows)}")
        lines.extend(rows)
    if capped:
        lines.append(f"## pairs left out by split.train ({cfg.split.train} sentences): {capped}")
    atomic_write_text(data_dir / "report.txt", "\n".join(lines) + "\n")

    counts = {k: len(v) for k, v in splits.items()}
    unmatched = sum(len(q.unmatched_src) + len(q.unmatched_tgt) + len(q.skipped) for q in prepared)
    summary = {
        "key": key,
        "counts": counts,
        "unmatched": unmatched,
        "unreadable": len(unreadable),
        "excluded": len(excluded),
        "speakers": len(table.speakers),
        "voices": len(per_voice),
        "pairs": len(per_pair),
        "sentences": len(split_of),
    }
    logger.info("lists: %s", ", ".join(f"{k} {counts[k]}" for k in SPLITS))
    logger.info(
        "%d speakers, %d voices, %d pairs over %d sentences (per speaker/voice/pair counts in "
        "data/%s/report.txt)",
        summary["speakers"],
        summary["voices"],
        summary["pairs"],
        summary["sentences"],
        spk,
    )
    if summary["unmatched"] or unreadable or unknown_excl:
        logger.warning(
            "%d unmatched, %d unusable files and %d unknown exclude ids; see data/%s/report.txt",
            summary["unmatched"],
            len(unreadable),
            len(unknown_excl),
            spk,
        )
    logger.info(
        "outputs: data/%s/{train,dev,eval}/{src,tgt}.scp and labels.tsv; frozen config "
        "dump/%s/config.yaml and speaker table dump/%s/speakers.json",
        spk,
        spk,
        spk,
    )
    return summary, table


def run(spk: str, layout: Layout, force: bool = False, nj: int = 2) -> dict:
    """Prepare ``data/<spk>`` (a fast no-op when already prepared with the same settings).

    Returns:
        Counts per split plus the number of unmatched/unreadable/excluded files.

    Raises:
        ConfigError: unknown spk, bad config, or a config changed since it was frozen.
        UserError: the input audio changed since the spk was frozen (without ``force``).
        CorpusError: the corpus cannot be read or is too small for the split.
    """
    cfg = load_spk(spk, layout.root)
    conf_file = layout.shown(layout.spk_conf(spk))
    frozen = layout.dump(spk) / "config.yaml"
    diff = check_frozen(frozen, cfg, conf_file, force, f"spk '{spk}'")
    data_dir = layout.data(spk)
    done_file = data_dir / "prepared.json"
    key = _stage0_key(cfg)
    if done_file.is_file() and not force:
        done = json.loads(done_file.read_text())
        fp = read_fingerprint(layout.dump(spk))
        if done.get("key") == key and frozen.is_file() and fp is not None:
            check_inputs(layout, spk, fp)  # refuses changed audio, warns of new files
            logger.info(
                "data/%s already prepared (%s); nothing to do (--force redoes it)",
                spk,
                ", ".join(f"{k} {done['counts'][k]}" for k in SPLITS),
            )
            return done
    if diff:
        logger.warning("--force: rebuilding spk '%s' after config changes:", spk)
        for line in diff:
            logger.warning("    %s", line)

    blocks = cfg.corpus_list()
    logger.info("preparing corpus %s for spk '%s'", ", ".join(f"'{c.name}'" for c in blocks), spk)
    prepared = [RECIPES[c.name](c, layout, nj) for c in blocks]
    if cfg.is_text:
        summary, table = text_lists.write_lists(spk, cfg, layout, prepared, key)
    else:
        summary, table = _write_pairs(spk, cfg, layout, prepared, key)
    merged = Prepared(
        utterances=[u for q in prepared for u in q.utterances],
        unmatched_src=[f for q in prepared for f in q.unmatched_src],
        unmatched_tgt=[f for q in prepared for f in q.unmatched_tgt],
        skipped=[s for q in prepared for s in q.skipped],
        roots=[r for q in prepared for r in q.roots],
    )
    record_corpus_files(layout, spk, merged.roots, merged.files())
    files = input_files(layout, spk)
    fp = fingerprint(cfg, files, input_digests(layout, spk, files))
    fp.update(spk=spk, source=conf_file, frozen_at=dt.datetime.now().isoformat(timespec="seconds"))
    header = f"# resolved config of spk '{spk}', frozen from {conf_file}; do not edit"
    freeze(frozen, cfg, header=header, extra=fp)
    table.save(layout.dump(spk) / SPEAKERS_FILE)
    atomic_write_text(done_file, json.dumps(summary, indent=2) + "\n")

    return summary


__all__ = ["ConfigError", "CorpusError", "make_split", "run"]
