"""Stage 0: turn a spk's corpus into Kaldi-style parallel lists and pin the spk.

Outputs under ``data/<SPK>/``: ``{train,dev,eval}/{src,tgt}.scp`` (``utt_id path``),
``report.txt`` (unmatched, unreadable and excluded files) and ``prepared.json``.
The resolved spk config is frozen into ``dump/<SPK>/config.yaml`` with its
fingerprint (see :mod:`vc_toolkit.config.pin`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from vc_toolkit import log
from vc_toolkit.config import ConfigError, load_spk
from vc_toolkit.config.pin import (
    check_frozen,
    config_hash,
    fingerprint,
    freeze,
    read_fingerprint,
)
from vc_toolkit.config.spk import SpkConfig, Split
from vc_toolkit.features.audio import truncation
from vc_toolkit.io import atomic_write_text, write_scp
from vc_toolkit.paths import SPLITS, Layout
from vc_toolkit.prepare.corpora import RECIPES, CorpusError, Pair
from vc_toolkit.records import check_inputs, input_digests, input_files, record_corpus_files

logger = log.get("stage0")


def make_split(utt_ids: list[str], split: Split) -> dict[str, list[str]]:
    """Deterministic split from ``split.seed``: same ids and seed → same split.

    Example:
        >>> s = make_split([f"u{i}" for i in range(10)], Split(dev=2, eval=3, seed=0))
        >>> [len(s[k]) for k in ("train", "dev", "eval")]
        [5, 2, 3]
        >>> s == make_split([f"u{i}" for i in reversed(range(10))], Split(dev=2, eval=3, seed=0))
        True
    """
    ids = sorted(utt_ids)
    order = np.random.default_rng(split.seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    dev = shuffled[: split.dev]
    ev = shuffled[split.dev : split.dev + split.eval]
    train = shuffled[split.dev + split.eval :]
    return {"train": sorted(train), "dev": sorted(dev), "eval": sorted(ev)}


def _stage0_key(cfg: SpkConfig) -> str:
    return config_hash({"corpus": cfg.corpus, "split": cfg.split, "exclude": cfg.exclude})


def _check_audio(path: Path) -> str | None:
    """Reason the file cannot be used, or None when its header reads and its data is complete."""
    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile raises several types
        return f"unreadable ({str(err).splitlines()[0][:120]})"
    if info.frames == 0:
        return "empty (0 samples)"
    cut = truncation(path, info.samplerate)
    return f"truncated ({cut.removeprefix('truncated: ')})" if cut else None


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

    logger.info("preparing corpus '%s' for spk '%s'", cfg.corpus.name, spk)
    prepared = RECIPES[cfg.corpus.name](cfg, layout, nj)
    usable: list[Pair] = []
    unreadable: list[str] = []
    for pair in prepared.pairs:
        problems = [(p, _check_audio(p)) for p in (pair.src, pair.tgt)]
        bad = [f"{pair.utt_id}\t{layout.shown(p)}\t{why}" for p, why in problems if why]
        (unreadable.extend(bad) if bad else usable.append(pair))
    excluded = [p.utt_id for p in usable if p.utt_id in set(cfg.exclude)]
    unknown_excl = sorted(set(cfg.exclude) - {p.utt_id for p in prepared.pairs})
    usable = [p for p in usable if p.utt_id not in set(cfg.exclude)]
    need = cfg.split.dev + cfg.split.eval + 1
    if len(usable) < need:
        raise CorpusError(
            f"spk '{spk}' has {len(usable)} usable pairs, but split.dev ({cfg.split.dev}) + "
            f"split.eval ({cfg.split.eval}) leave no training data; lower them or add pairs"
        )
    by_id = {p.utt_id: p for p in usable}
    splits = make_split(list(by_id), cfg.split)
    for split, ids in splits.items():
        for side in ("src", "tgt"):
            entries = {u: layout.shown(getattr(by_id[u], side)) for u in ids}
            write_scp(data_dir / split / f"{side}.scp", entries)

    lines = [
        f"# stage 0 report for spk '{spk}' ({dt.datetime.now().isoformat(timespec='seconds')})"
    ]
    for title, rows in (
        ("source files without a target", [layout.shown(p) for p in prepared.unmatched_src]),
        ("target files without a source", [layout.shown(p) for p in prepared.unmatched_tgt]),
        ("unreadable, empty or truncated audio (utt, file, reason)", unreadable),
        ("excluded by the spk config", excluded),
        ("exclude ids not in the corpus", unknown_excl),
    ):
        lines.append(f"## {title}: {len(rows)}")
        lines.extend(rows)
    atomic_write_text(data_dir / "report.txt", "\n".join(lines) + "\n")

    counts = {k: len(v) for k, v in splits.items()}
    summary = {
        "key": key,
        "counts": counts,
        "unmatched": len(prepared.unmatched_src) + len(prepared.unmatched_tgt),
        "unreadable": len(unreadable),
        "excluded": len(excluded),
    }
    record_corpus_files(layout, spk, prepared.roots, prepared.files())
    files = input_files(layout, spk)
    fp = fingerprint(cfg, files, input_digests(layout, spk, files))
    fp.update(spk=spk, source=conf_file, frozen_at=dt.datetime.now().isoformat(timespec="seconds"))
    header = f"# resolved config of spk '{spk}', frozen from {conf_file}; do not edit"
    freeze(frozen, cfg, header=header, extra=fp)
    atomic_write_text(done_file, json.dumps(summary, indent=2) + "\n")

    logger.info("lists: %s", ", ".join(f"{k} {counts[k]}" for k in SPLITS))
    if summary["unmatched"] or unreadable or unknown_excl:
        logger.warning(
            "%d unmatched, %d unusable files and %d unknown exclude ids; see data/%s/report.txt",
            summary["unmatched"],
            len(unreadable),
            len(unknown_excl),
            spk,
        )
    logger.info(
        "outputs: data/%s/{train,dev,eval}/{src,tgt}.scp; frozen config dump/%s/config.yaml",
        spk,
        spk,
    )
    return summary


__all__ = ["ConfigError", "CorpusError", "make_split", "run"]
