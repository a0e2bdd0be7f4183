"""Stage 1: features of every parallel pair of a spk, into ``dump/<SPK>/``.

A text spk (``text:`` block) goes through :mod:`vc_toolkit.preprocess.text_stage` instead.

Steps (under ``dump/<SPK>/stage1.lock``: a second concurrent run of the spk is refused):
    1. Check the spk is pinned (stage 0 ran) and unchanged: config and input files.
    2. Per pair, in ``nj`` worker processes: :func:`~vc_toolkit.features.extract.extract_pair`
       into ``raw/<utt>.npz`` (atomic), or ``raw/<utt>.bad`` with the reason. Finished
       pairs are skipped, so an interrupted run continues where it stopped.
    3. Corpus-level outliers: pairs whose DTW cost or log length ratio lies more than
       ``filters.outlier_mad`` scaled MADs from the corpus median are dropped.
       Each (source voice, target voice) pair is compared with itself, since voices
       differ in speaking rate and timbre.
    4. Normalisation statistics from the kept *train* pairs only: per side, and with
       ``stats: per_speaker`` also per speaker (each recording counted once).
    5. Normalised features of every split (each pair with its speakers' statistics,
       :func:`~vc_toolkit.features.stats.pair_stats`) packed with their ``labels.tsv`` by
       :func:`vc_toolkit.data.dump.write_split`.
    6. ``report.tsv`` (one line per pair: kept or dropped, reason) and ``summary.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from vc_toolkit import log
from vc_toolkit.config import load_spk
from vc_toolkit.config.pin import check_frozen, fingerprint, freeze, read_fingerprint
from vc_toolkit.config.spk import SpkConfig
from vc_toolkit.data import dump
from vc_toolkit.data.labels import LABELS_FILE, Labels, read_labels
from vc_toolkit.errors import UserError
from vc_toolkit.features import extract, stats
from vc_toolkit.io import atomic_write_text, read_scp
from vc_toolkit.lock import tag_lock
from vc_toolkit.parallel import parallel_map
from vc_toolkit.paths import SPLITS, Layout
from vc_toolkit.records import check_inputs

logger = log.get("stage1")
META_KEYS = (
    "src_seconds",
    "tgt_seconds",
    "src_trimmed_seconds",
    "tgt_trimmed_seconds",
    "dtw_cost",
    "seg_fallback",
)
STATE = "features.json"
LOCK = "stage1.lock"


def _pairs(layout: Layout, spk: str) -> list[tuple[str, str, Path, Path]]:
    """``(split, utt_id, src_path, tgt_path)`` of every listed pair."""
    out = []
    for split in SPLITS:
        folder = layout.data(spk) / split
        src, tgt = read_scp(folder / "src.scp"), read_scp(folder / "tgt.scp")
        for utt, path in src.items():
            if utt in tgt:
                out.append((split, utt, layout.resolve(path), layout.resolve(tgt[utt])))
    return out


def _labels(layout: Layout, spk: str, pairs: list[tuple[str, str, Path, Path]]) -> dict:
    """Speakers and emotions of every listed pair (stage 0's ``labels.tsv`` of each split)."""
    out: dict[str, Labels] = {}
    for split in SPLITS:
        ids = [u for s, u, _, _ in pairs if s == split]
        out.update(read_labels(layout.data(spk) / split / LABELS_FILE, ids))
    return out


def _statistics(cfg: SpkConfig, raw: Path, train: list[str], labels: dict) -> dict:
    """Global statistics of the train pairs, plus per-speaker ones with ``stats: per_speaker``.

    Per speaker, each recording counts once: a sentence a speaker reads appears in
    several pairs (as source of one, target of another) but its frames are added once.
    """
    st = stats.compute_stats(extract.load_raw(raw / f"{u}.npz") for u in train)
    if cfg.stats != "per_speaker":
        return st
    seen: set[tuple[str, str, str]] = set()

    def sides():
        for u in train:
            lab, item = labels[u], None
            for side, speaker, emotion in (
                ("src", lab.src_speaker, lab.src_emotion),
                ("tgt", lab.tgt_speaker, lab.tgt_emotion),
            ):
                key = (speaker, emotion, lab.sentence)
                if key in seen:
                    continue
                seen.add(key)
                item = item if item is not None else extract.load_raw(raw / f"{u}.npz")
                yield speaker, side, item

    return {**st, **stats.compute_speaker_stats(sides())}


def _worker(job: tuple) -> tuple[str, dict | None, dict]:
    """Extract one pair; returns ``(utt_id, meta or None, timings)`` and writes raw/ files."""
    utt, src, tgt, cfg, raw_dir = job
    timings: dict[str, float] = {}
    try:
        item = extract.extract_pair(src, tgt, cfg, timings=timings)
    except extract.BadPair as bad:
        _write_bad(raw_dir, utt, bad.reason, bad.detail)
        return utt, None, timings
    except Exception as err:
        _write_bad(raw_dir, utt, "error", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        return utt, None, timings
    t0 = time.perf_counter()
    extract.save_raw(raw_dir / f"{utt}.npz", item)
    timings["write"] = timings.get("write", 0.0) + time.perf_counter() - t0
    return utt, {k: float(item[k]) for k in META_KEYS}, timings


def _write_bad(raw_dir: Path, utt: str, reason: str, detail: str) -> None:
    atomic_write_text(raw_dir / f"{utt}.bad", json.dumps({"reason": reason, "detail": detail}))


def _extract_all(jobs: list[tuple], nj: int) -> dict[str, float]:
    """Run every job in ``nj`` processes; the seconds per extraction step, summed."""
    totals: Counter = Counter()
    runs = parallel_map(_worker, jobs, nj, "stage 1: extracting features", "pair", chunksize=2)
    for _, _, timings in runs:
        totals.update(timings)
    return dict(totals)


def _load_meta(raw_dir: Path, utt: str) -> dict | None:
    path = raw_dir / f"{utt}.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {k: float(z[k]) for k in META_KEYS}


def outliers(values: dict[str, float], k: float, one_sided: bool) -> set[str]:
    """Ids whose value is more than ``k`` scaled MADs from the median.

    The MAD is scaled by 1.4826 so it estimates the standard deviation of
    normally distributed values [Rousseeuw & Croux, JASA 1993].

    Example:
        >>> sorted(outliers({"a": 1.0, "b": 1.1, "c": 0.9, "d": 1.05, "e": 9.0}, 6, True))
        ['e']
    """
    if k <= 0 or len(values) < 5:
        return set()
    x = np.array(list(values.values()))
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    if mad == 0:
        return set()
    dev = (x - med) / mad
    far = dev > k if one_sided else np.abs(dev) > k
    return {u for u, f in zip(values, far, strict=True) if f}


def _check_pinned(spk: str, layout: Layout, cfg: SpkConfig, force: bool) -> dict:
    frozen = layout.dump(spk) / "config.yaml"
    fp = read_fingerprint(layout.dump(spk))
    if not frozen.is_file() or fp is None or not (layout.data(spk) / "prepared.json").is_file():
        raise UserError(
            f"spk '{spk}' has no stage-0 lists; run ./run.sh --stage 0 --stop_stage 0 --spk {spk}"
        )
    conf_file = layout.shown(layout.spk_conf(spk))
    diff = check_frozen(frozen, cfg, conf_file, force, f"spk '{spk}'")
    inputs = check_inputs(layout, spk, fp, force)
    fp = inputs.fingerprint
    if diff or inputs.changes:
        logger.warning(
            "--force: re-freezing spk '%s' (%d config changes%s)",
            spk,
            len(diff),
            f"; input files: {inputs.changes}" if inputs.changes else "",
        )
        new_fp = fingerprint(cfg, inputs.files, inputs.digests)
        new_fp.update(
            spk=spk, source=conf_file, frozen_at=dt.datetime.now().isoformat("T", "seconds")
        )
        header = f"# resolved config of spk '{spk}', frozen from {conf_file}; do not edit"
        freeze(frozen, cfg, header=header, extra=new_fp)
        fp = new_fp
    return fp


def run(spk: str, layout: Layout, nj: int = 2, force: bool = False) -> dict:
    """Run stage 1 for ``spk``; a fast no-op when its features are complete and current.

    Returns:
        The summary also written to ``dump/<spk>/summary.json``.

    Raises:
        UserError: stage 0 missing, or the config/input files changed (without ``force``).
        LockedError: another process is running stage 1 of this spk.
    """
    cfg = load_spk(spk, layout.root)
    lock = layout.dump(spk) / LOCK
    with tag_lock(lock, f"spk '{spk}'", doing="extracted (stage 1)"):
        if cfg.is_text:
            from vc_toolkit.preprocess import text_stage  # imports this module

            return text_stage.run_locked(spk, layout, cfg, nj, force)
        return _run(spk, layout, cfg, nj, force)


def _run(spk: str, layout: Layout, cfg: SpkConfig, nj: int, force: bool) -> dict:
    fp = _check_pinned(spk, layout, cfg, force)
    out = layout.dump(spk)
    state_file = out / STATE
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    current = {"fingerprint": fp["fingerprint"]}
    if state.get("fingerprint") != current["fingerprint"] or force:
        if state or (out / "raw").exists():
            logger.info("clearing features of a previous build of spk '%s'", spk)
        for name in ("raw", *SPLITS):
            shutil.rmtree(out / name, ignore_errors=True)
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

    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    pairs = _pairs(layout, spk)
    done = {p.stem for p in raw.glob("*.npz")} | {p.stem for p in raw.glob("*.bad")}
    jobs = [(u, s, t, cfg, raw) for _, u, s, t in pairs if u not in done]
    logger.info(
        "%d pairs: %d already done, %d to extract with %d jobs",
        len(pairs),
        len(done),
        len(jobs),
        nj,
    )
    start = time.perf_counter()
    timings = _extract_all(jobs, nj)
    wall = time.perf_counter() - start

    status: dict[str, tuple[str, str]] = {}
    metas: dict[str, dict] = {}
    for _, utt, _, _ in pairs:
        bad = raw / f"{utt}.bad"
        if bad.is_file():
            info = json.loads(bad.read_text())
            status[utt] = (info["reason"], info["detail"])
            continue
        meta = _load_meta(raw, utt)
        if meta is None:  # pragma: no cover - a worker died without writing anything
            status[utt] = ("error", "no output (worker crashed)")
            continue
        metas[utt] = meta
    ratio = {
        u: float(np.log(m["tgt_seconds"] / max(m["src_seconds"], 1e-6))) for u, m in metas.items()
    }
    k = cfg.filters.outlier_mad
    labels = _labels(layout, spk, pairs)
    # voices differ in rate and timbre, so a pair of voices is compared with itself
    groups: dict[str, list[str]] = {}
    for u in metas:
        groups.setdefault(labels[u].pair, []).append(u)
    cost_out: set[str] = set()
    ratio_out: set[str] = set()
    for ids in groups.values():
        cost_out |= outliers({u: metas[u]["dtw_cost"] for u in ids}, k, one_sided=True)
        ratio_out |= outliers({u: ratio[u] for u in ids}, k, one_sided=False)
    for utt in sorted(cost_out):
        status[utt] = (
            "outlier_cost",
            f"DTW cost {metas[utt]['dtw_cost']:.3f} far above the corpus",
        )
    for utt in sorted(ratio_out):
        status.setdefault(
            utt, ("outlier_ratio", f"length ratio {np.exp(ratio[utt]):.2f} far from the corpus")
        )

    split_of = {u: s for s, u, _, _ in pairs}
    kept = {s: [u for _, u, _, _ in pairs if split_of[u] == s and u not in status] for s in SPLITS}
    if not kept["train"]:
        raise UserError(
            f"no training pair of spk '{spk}' survived stage 1; see dump/{spk}/report.tsv"
        )
    st = _statistics(cfg, raw, kept["train"], labels)
    stats.save_stats(out / "stats.npz", st)
    for split in SPLITS:
        items = (
            {
                "utt_id": u,
                **stats.normalize(
                    extract.load_raw(raw / f"{u}.npz"),
                    stats.pair_stats(st, labels[u].src_speaker, labels[u].tgt_speaker),
                ),
            }
            for u in kept[split]
        )
        dump.write_split(out / split, items, labels={u: labels[u] for u in kept[split]})

    summary = _summarize(spk, pairs, status, metas, kept, timings, wall, nj)
    per_pair = Counter(labels[u].pair for ids in kept.values() for u in ids)
    summary["kept_per_pair"] = dict(sorted(per_pair.items()))
    heard = {  # recordings (speaker, emotion, sentence) in kept pairs, each once
        (lab.src_speaker if side == "src" else lab.tgt_speaker, lab.sentence, emo)
        for ids in kept.values()
        for lab in (labels[u] for u in ids)
        for side, emo in (("src", lab.src_emotion), ("tgt", lab.tgt_emotion))
    }
    summary["kept_per_speaker"] = dict(sorted(Counter(spk for spk, _, _ in heard).items()))
    summary["stats"] = cfg.stats
    processed = [metas[j[0]] for j in jobs if j[0] in metas]
    input_seconds = sum(
        m["src_seconds"] + m["src_trimmed_seconds"] + m["tgt_seconds"] + m["tgt_trimmed_seconds"]
        for m in processed
    )
    summary["extracted_input_seconds"] = input_seconds
    summary["realtime_factor"] = input_seconds / wall if processed and wall > 0 else None
    _write_report(out / "report.tsv", pairs, status, layout)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(state_file, json.dumps({**current, "complete": True}) + "\n")
    _log_summary(spk, summary)
    return summary


def _summarize(spk, pairs, status, metas, kept, timings, wall, nj) -> dict:
    kept_ids = {u for ids in kept.values() for u in ids}
    audio = sum(metas[u]["src_seconds"] + metas[u]["tgt_seconds"] for u in kept_ids)
    trimmed = sum(metas[u]["src_trimmed_seconds"] + metas[u]["tgt_trimmed_seconds"] for u in metas)
    return {
        "spk": spk,
        "pairs": len(pairs),
        "kept": len(kept_ids),
        "dropped": len(status),
        "kept_per_split": {s: len(v) for s, v in kept.items()},
        "dropped_per_reason": dict(Counter(r for r, _ in status.values())),
        "audio_hours_kept": audio / 3600,
        "trimmed_seconds": trimmed,
        "segment_fallbacks": int(sum(metas[u]["seg_fallback"] for u in kept_ids)),
        "extract_wall_seconds": wall,
        "nj": nj,
        "step_seconds": timings,
    }


def _write_report(path: Path, pairs, status, layout: Layout) -> None:
    lines = ["utt_id\tsplit\tstatus\treason\tdetail"]
    for split, utt, _, _ in pairs:
        reason, detail = status.get(utt, ("", ""))
        detail = layout.shown_in(detail)
        lines.append(f"{utt}\t{split}\t{'dropped' if reason else 'kept'}\t{reason}\t{detail}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def _log_summary(spk: str, s: dict) -> None:
    logger.info(
        "kept %d of %d pairs (train %d, dev %d, eval %d); %.2f h of audio; %.1f s trimmed",
        s["kept"],
        s["pairs"],
        s["kept_per_split"]["train"],
        s["kept_per_split"]["dev"],
        s["kept_per_split"]["eval"],
        s["audio_hours_kept"],
        s["trimmed_seconds"],
    )
    pairs = s.get("kept_per_pair", {})
    if len(pairs) > 1:
        logger.info(
            "%d speaker pairs, %d to %d utterances each; %d speakers, %d to %d recordings each "
            "(summary.json: kept_per_pair, kept_per_speaker); stats %s",
            len(pairs),
            min(pairs.values()),
            max(pairs.values()),
            len(s["kept_per_speaker"]),
            min(s["kept_per_speaker"].values()),
            max(s["kept_per_speaker"].values()),
            s.get("stats"),
        )
    if s["dropped"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["dropped_per_reason"].items()))
        logger.warning("dropped %d pairs (%s); see dump/%s/report.tsv", s["dropped"], reasons, spk)
    if s["segment_fallbacks"]:
        logger.info("segment-count fallback used on %d pairs", s["segment_fallbacks"])
    if s.get("realtime_factor"):
        logger.info(
            "extracted %.0f s of audio in %.1f s: %.0fx real time with %d jobs",
            s["extracted_input_seconds"],
            s["extract_wall_seconds"],
            s["realtime_factor"],
            s["nj"],
        )
    logger.info("outputs: dump/%s/{train,dev,eval}/, stats.npz, report.tsv, summary.json", spk)
