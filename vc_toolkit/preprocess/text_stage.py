"""Stage 1 of a text spk: token ids and the recording's features, into ``dump/<SPK>/``.

Steps (under the same lock and pinning as parallel spks, :mod:`vc_toolkit.preprocess.stage`):
    1. Tokens, in this process: the spk's front-end (``text.frontend``) turns every
       frozen transcript into symbols. The symbol table (``dump/<SPK>/symbols.json``,
       :class:`~vc_toolkit.text.symbols.SymbolTable`) holds every symbol of the spk's
       texts, all splits, in sorted order; with ``text.frontend: chars`` and a
       ``text.charset`` it is that charset, and a text with another letter stops the
       stage with one line naming the symbols. A transcript without symbols is dropped.
    2. Features of each recording in ``nj`` processes, as the target side of a parallel
       spk (:func:`~vc_toolkit.features.extract.extract_utterance`): trimmed, T a multiple
       of r; a file that gives no usable speech is reported and skipped, into
       ``raw/<utt>.bad``. Finished utterances are skipped on a re-run.
    3. Utterances whose frames per token lie more than ``filters.outlier_mad`` scaled
       MADs from the median of their voice are dropped (a transcript that does not match
       its recording).
    4. Statistics of the kept train recordings (``src_*`` mirrors ``tgt_*``: a text spk
       has one audio side), normalised features with their tokens and segments
       (``tok_seg``: split after pause tokens) packed by
       :func:`vc_toolkit.data.text_dump.write_text_split`.
    5. ``report.tsv`` (kept or dropped, with the reason) and ``summary.json``.

There are no durations yet: the aligner learns them (``vc-align`` writes them beside
the split, ``durations/<TAG>.npy``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from vc_toolkit import log
from vc_toolkit.config.core import to_dict
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.data import text_dump
from vc_toolkit.data.labels import LABELS_FILE, read_labels
from vc_toolkit.errors import UserError
from vc_toolkit.features import extract, stats
from vc_toolkit.io import atomic_write_text, read_scp
from vc_toolkit.parallel import parallel_map
from vc_toolkit.paths import SPLITS, Layout
from vc_toolkit.preprocess.stage import STATE, _check_pinned, _write_bad, outliers
from vc_toolkit.records import TEXT_FILE
from vc_toolkit.text.frontend import build_frontend
from vc_toolkit.text.symbols import SYMBOLS_FILE, SymbolTable, segments

logger = log.get("stage1")
META_KEYS = ("tgt_seconds", "tgt_trimmed_seconds", "head_seconds")


def _utterances(layout: Layout, spk: str) -> list[tuple[str, str, Path, str]]:
    """``(split, utt_id, recording, transcript)`` of every listed utterance."""
    out = []
    for split in SPLITS:
        folder = layout.data(spk) / split
        wavs, texts = read_scp(folder / "tgt.scp"), read_scp(folder / TEXT_FILE)
        for utt, path in wavs.items():
            if utt not in texts:
                raise UserError(
                    f"data/{spk}/{split}/{TEXT_FILE} has no transcript of {utt}; re-run stage 0 "
                    f"with --force"
                )
            out.append((split, utt, layout.resolve(path), texts[utt]))
    return out


def symbol_table(cfg: SpkConfig, symbols: dict[str, list[str]], spk: str) -> SymbolTable:
    """The spk's table from every utterance's symbols (see the module doc, step 1).

    Raises:
        UserError: with a fixed charset, texts hold other symbols (one line naming them).
    """
    front = build_frontend(cfg.text)
    fixed = cfg.text.frontend == "chars" and bool(cfg.text.charset)
    seqs = [] if fixed else symbols.values()
    meta = {"spk": spk, "text": to_dict(cfg.text)}
    table = SymbolTable.build(seqs, front.pause_symbols, front.inventory(), meta)
    bad = {u: table.unknown(s) for u, s in symbols.items() if table.unknown(s)}
    if bad:
        names = sorted({s for v in bad.values() for s in v})
        raise UserError(
            f"unknown symbols {', '.join(repr(s) for s in names)} in {len(bad)} utterances of "
            f"spk '{spk}' (e.g. {next(iter(bad))}); add them to text.charset or exclude those "
            "utterances"
        )
    return table


def _worker(job: tuple) -> tuple[str, dict | None, dict]:
    """Features of one recording into ``raw/<utt>.npz`` (or ``raw/<utt>.bad``)."""
    utt, path, cfg, raw_dir = job
    timings: dict[str, float] = {}
    try:
        item = extract.extract_utterance(path, cfg, timings=timings)
    except extract.BadPair as bad:
        _write_bad(raw_dir, utt, bad.reason, bad.detail)
        return utt, None, timings
    except Exception as err:
        _write_bad(raw_dir, utt, "error", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        return utt, None, timings
    t0 = time.perf_counter()
    extract.save_raw(raw_dir / f"{utt}.npz", item)
    timings["write"] = time.perf_counter() - t0
    return utt, {k: float(item[k]) for k in META_KEYS}, timings


def _meta(raw: Path, utt: str) -> dict | None:
    path = raw / f"{utt}.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {**{k: float(z[k]) for k in META_KEYS}, "frames": int(z["tgt_mel"].shape[0])}


def _statistics(cfg: SpkConfig, raw: Path, train: list[str], labels: dict) -> dict:
    """Train-split statistics of the recordings; ``src_*`` mirror ``tgt_*``."""
    st = stats.compute_stats((extract.load_raw(raw / f"{u}.npz") for u in train), ("tgt",))
    st.update({"src" + k[3:]: v for k, v in st.items() if k.startswith("tgt_")})
    if cfg.stats == "per_speaker":
        sides = ((labels[u].tgt_speaker, "tgt", extract.load_raw(raw / f"{u}.npz")) for u in train)
        st.update(stats.compute_speaker_stats(sides))
    return st


def run_locked(spk: str, layout: Layout, cfg: SpkConfig, nj: int, force: bool) -> dict:
    """Stage 1 of text spk ``spk`` (the caller holds the stage-1 lock)."""
    fp = _check_pinned(spk, layout, cfg, force)
    out = layout.dump(spk)
    state_file = out / STATE
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    current = {"fingerprint": fp["fingerprint"]}
    if state.get("fingerprint") != current["fingerprint"] or force:
        for name in ("raw", *SPLITS):
            shutil.rmtree(out / name, ignore_errors=True)
        (out / SYMBOLS_FILE).unlink(missing_ok=True)
        state = {}
    if state.get("complete"):
        summary = json.loads((out / "summary.json").read_text())
        logger.info(
            "dump/%s is complete (%d kept, %d dropped); nothing to do (--force rebuilds)",
            spk,
            summary["kept"],
            summary["dropped"],
        )
        return summary
    atomic_write_text(state_file, json.dumps({**current, "complete": False}) + "\n")

    utts = _utterances(layout, spk)
    front = build_frontend(cfg.text)
    symbols = {u: front.symbols_of(text) for _, u, _, text in utts}
    status: dict[str, tuple[str, str]] = {
        u: ("no_tokens", f"the {cfg.text.frontend} front-end gives no symbols for {text!r}")
        for _, u, _, text in utts
        if not symbols[u]
    }
    table = symbol_table(cfg, {u: s for u, s in symbols.items() if s}, spk)
    table.save(out / SYMBOLS_FILE)
    tokens = {u: np.asarray(table.encode(s), np.int64) for u, s in symbols.items() if s}

    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    done = {p.stem for p in raw.glob("*.npz")} | {p.stem for p in raw.glob("*.bad")}
    jobs = [(u, p, cfg, raw) for _, u, p, _ in utts if u not in done and u not in status]
    logger.info(
        "%d utterances, %d symbols in dump/%s/%s; features: %d already done, %d to extract "
        "with %d jobs",
        len(utts),
        len(table) - 1,
        spk,
        SYMBOLS_FILE,
        len(done),
        len(jobs),
        nj,
    )
    start = time.perf_counter()
    timings: Counter = Counter()
    for _, _, t in parallel_map(_worker, jobs, nj, "stage 1: extracting features", "file", True, 2):
        timings.update(t)
    wall = time.perf_counter() - start

    metas: dict[str, dict] = {}
    for _, utt, _, _ in utts:
        if utt in status:
            continue
        bad = raw / f"{utt}.bad"
        if bad.is_file():
            info = json.loads(bad.read_text())
            status[utt] = (info["reason"], info["detail"])
        elif (meta := _meta(raw, utt)) is None:  # pragma: no cover - a worker crashed
            status[utt] = ("error", "no output (worker crashed)")
        else:
            metas[utt] = meta
    labels = {}
    for split in SPLITS:
        ids = [u for s, u, _, _ in utts if s == split]
        labels.update(read_labels(layout.data(spk) / split / LABELS_FILE, ids))
    rate = {u: float(np.log(m["frames"] / len(tokens[u]))) for u, m in metas.items()}
    groups: dict[str, list[str]] = {}
    for u in metas:
        groups.setdefault(labels[u].tgt_voice, []).append(u)
    for ids in groups.values():
        for u in sorted(outliers({u: rate[u] for u in ids}, cfg.filters.outlier_mad, False)):
            status[u] = ("outlier_rate", f"{np.exp(rate[u]):.1f} frames per token, far off")

    kept = {s: [u for sp, u, _, _ in utts if sp == s and u not in status] for s in SPLITS}
    if not kept["train"]:
        raise UserError(f"no training utterance of spk '{spk}' survived stage 1; see report.tsv")
    st = _statistics(cfg, raw, kept["train"], labels)
    stats.save_stats(out / "stats.npz", st)
    pause_ids = table.pause_ids
    for split in SPLITS:
        items = (
            {
                "utt_id": u,
                **stats.normalize(
                    extract.load_raw(raw / f"{u}.npz"),
                    stats.pair_stats(st, labels[u].tgt_speaker, labels[u].tgt_speaker),
                ),
                "tokens": tokens[u],
                "tok_seg": np.asarray(segments(tokens[u], pause_ids), np.int64),
            }
            for u in kept[split]
        )
        text_dump.write_text_split(
            out / split, items, cfg.reduction_factor, {u: labels[u] for u in kept[split]}
        )

    summary = _summary(spk, utts, status, metas, kept, tokens, table, timings, wall, nj, jobs)
    _write_report(out / "report.tsv", utts, status, layout)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(state_file, json.dumps({**current, "complete": True}) + "\n")
    _log_summary(spk, summary)
    return summary


def _summary(spk, utts, status, metas, kept, tokens, table, timings, wall, nj, jobs) -> dict:
    ids = [u for v in kept.values() for u in v]
    seconds = sum(metas[u]["tgt_seconds"] for u in ids)
    new = [metas[j[0]] for j in jobs if j[0] in metas]
    extracted = sum(m["tgt_seconds"] + m["tgt_trimmed_seconds"] for m in new)
    return {
        "spk": spk,
        "kind": "text",
        "utterances": len(utts),
        "kept": len(ids),
        "dropped": len(status),
        "kept_per_split": {s: len(v) for s, v in kept.items()},
        "dropped_per_reason": dict(Counter(r for r, _ in status.values())),
        "audio_hours_kept": seconds / 3600,
        "trimmed_seconds": sum(metas[u]["tgt_trimmed_seconds"] for u in metas),
        "symbols": len(table) - 1,
        "tokens_kept": int(sum(len(tokens[u]) for u in ids)),
        "extract_wall_seconds": wall,
        "nj": nj,
        "step_seconds": dict(timings),
        "extracted_input_seconds": extracted,
        "realtime_factor": extracted / wall if new and wall > 0 else None,
    }


def _write_report(path: Path, utts, status, layout: Layout) -> None:
    lines = ["utt_id\tsplit\tstatus\treason\tdetail"]
    for split, utt, _, _ in utts:
        reason, detail = status.get(utt, ("", ""))
        detail = layout.shown_in(detail)
        lines.append(f"{utt}\t{split}\t{'dropped' if reason else 'kept'}\t{reason}\t{detail}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def _log_summary(spk: str, s: dict) -> None:
    logger.info(
        "kept %d of %d utterances (train %d, dev %d, eval %d); %.2f h of audio, %d tokens "
        "over %d symbols",
        s["kept"],
        s["utterances"],
        s["kept_per_split"]["train"],
        s["kept_per_split"]["dev"],
        s["kept_per_split"]["eval"],
        s["audio_hours_kept"],
        s["tokens_kept"],
        s["symbols"],
    )
    if s["dropped"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["dropped_per_reason"].items()))
        logger.warning(
            "dropped %d utterances (%s); see dump/%s/report.tsv", s["dropped"], reasons, spk
        )
    logger.info(
        "outputs: dump/%s/{train,dev,eval}/ (tokens + features), %s, stats.npz, report.tsv, "
        "summary.json",
        spk,
        SYMBOLS_FILE,
    )
