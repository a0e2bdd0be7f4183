"""Stage 4: objective evaluation of converted speech against the real target speech.

For every dev and eval utterance of the tag's spk (the pairs kept at stage 1):

* **converted**: ``exp/<T>/convert/<C>/<split>/<utt>.wav`` as written by stage 3
  (already trimmed speech, not trimmed again);
* **target**: the original target recording of the same sentence
  (``data/<SPK>/<split>/tgt.scp``) loaded at the spk's sample rate and trimmed
  with the spk's trimming (the audio front-end,
  :func:`~vc_toolkit.features.frontend.load_speech`: head/tail silence cut and,
  with ``trim.zero_internal_silence``, internal pauses zeroed), i.e. the speech
  the model was trained to produce;
* **source floor**: the original source recording (``src.scp``), trimmed the same
  way, scored against the same target with the same metrics: what "no conversion
  at all" achieves. It does not depend on the tag, so it is cached per spk in
  ``dump/<SPK>/eval_floor/<key>/<split>.tsv`` (``key`` hashes the ``eval`` block,
  the WORLD frame period and the spk fingerprint);
* **vocoder floor**: the target recording through stage 1's analysis and the
  vocoder of the conversion, scored against itself with the same metrics: what the
  vocoder alone costs (:mod:`vc_toolkit.eval.vocoder_floor`), cached per spk,
  vocoder settings and eval settings in ``dump/<SPK>/eval_floor/vocoder-<type>-<key>/``.

Each pair is scored by :func:`vc_toolkit.eval.metrics.score_pair` in ``nj``
worker processes. An utterance whose converted or target file is missing (or
fails to score) is reported, counted and skipped. Outputs under
``exp/<T>/eval/<C>/``:

* ``<split>/per_utt.tsv``: one row per utterance: ``utt_id``, ``status`` (``ok``,
  ``missing_converted``, ``missing_target``, ``error``), ``conv_<metric>``,
  ``floor_<metric>`` (source floor) and ``voc_<metric>`` (vocoder floor) for every
  metric and flag (NaN where not computed);
* ``summary.json``: per split and ``overall``: for the converted speech
  (``converted``), the source floor (``source``) and the vocoder floor
  (``vocoder``), every metric's mean, std, n and ci95 (:func:`summarize`, over
  the utterances scored for conversion, so all three cover the same sentences); the
  counts (listed, scored, skipped, missing_converted, missing_target, error, flagged
  silent/unvoiced outputs) and the skipped utterances with their reason; the
  stage-3 settings and real-time factors (``rtf.json``) and the vocoder of the
  vocoder floor (``vocoder_floor_with``); ``per_pair``: the same blocks per speaker
  pair (:mod:`vc_toolkit.eval.pairs`);
* ``pairs.tsv``: per pair and split, the means of the conversion and of that pair's
  own source and vocoder floors.

A re-run with unchanged converted files and settings is a no-op unless ``force``.

A text tag (TTS) is scored the same way against its recordings, with an untrained-model
floor instead of the source floor and the duration error of its predicted durations
(:mod:`vc_toolkit.eval.synthesis`).

What the metrics are (from :mod:`vc_toolkit.eval.metrics`):
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from vc_toolkit import log
from vc_toolkit.config import SpkConfig, TagConfig, to_dict
from vc_toolkit.config.core import pinned_dict
from vc_toolkit.config.pin import read_fingerprint
from vc_toolkit.config.tag import Eval
from vc_toolkit.config.tag import Vocoder as VocoderConfig
from vc_toolkit.data.dump import MANIFEST
from vc_toolkit.errors import UserError
from vc_toolkit.eval import metrics
from vc_toolkit.eval import synthesis as text
from vc_toolkit.eval.metrics import FLAG_KEYS, METRIC_KEYS, score_pair, summarize
from vc_toolkit.eval.pairs import PAIRS_TSV, pair_table, per_pair, split_labels, write_pairs_tsv
from vc_toolkit.eval.vocoder_floor import copy_synthesis, floor_vocoder, vocoder_floor_dir
from vc_toolkit.features.frontend import UnusableAudioError, load_speech, read
from vc_toolkit.io import atomic_write_text, read_scp
from vc_toolkit.parallel import parallel_map
from vc_toolkit.paths import EVAL_SPLITS, Layout
from vc_toolkit.records import load_frozen_spk, load_tag_config, read_json

__doc__ += "\n" + metrics.__doc__.split("\nExample:")[0].strip() + "\n"

logger = log.get("evaluate")
SPLITS = EVAL_SPLITS
FRAME_PERIOD_MS = 5.0
COLUMNS = (*METRIC_KEYS, *FLAG_KEYS)
SIDES = {"conv": "converted", "floor": "source", "voc": "vocoder"}
"""Row key and per-utt column prefix → summary block of each scored side."""


def _score_job(job: tuple) -> tuple[str, str, str, dict | str]:
    """``(kind, split, utt, hyp, ref, spk, eval_cfg)`` → ``(kind, split, utt, row or error)``.

    ``kind``: ``conv`` (``hyp`` a stage-3 wav), ``floor`` (``hyp`` the source recording),
    ``voc`` (``hyp`` the vocoder settings: the target through that vocoder) or ``untr``
    (``hyp`` the untrained model's stage-3 wav, text tags).
    """
    kind, split, utt, hyp, ref, spk, eval_cfg = job
    try:
        with threadpool_limits(1):
            speech = load_speech(ref, spk, check=False)
            target = speech.samples
            if kind in ("conv", "untr"):  # stage-3 output is trimmed speech already
                other = read(hyp, spk.sample_rate)
            elif kind == "voc":
                other = copy_synthesis(speech, spk, hyp)
            else:
                other = load_speech(hyp, spk, check=False).samples
            row = score_pair(other, target, spk.sample_rate, eval_cfg, FRAME_PERIOD_MS)
    except (UnusableAudioError, ValueError) as err:
        return kind, split, utt, str(err).splitlines()[0][:200]
    return kind, split, utt, row


# ---- tsv rows -------------------------------------------------------------------------------
def _fmt(value) -> str:
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.8g}" if isinstance(value, float) else str(value)


def _parse(key: str, text: str):
    if key in FLAG_KEYS:
        return text == "1"
    if key == "voiced_frames":
        return int(float(text)) if text != "nan" else 0
    return float(text)


def read_metric_tsv(path: Path, prefix: str = "") -> dict[str, dict]:
    """Rows of a metrics TSV by ``utt_id``; columns ``<prefix><metric>`` become ``<metric>``."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = {}
    for line in lines[1:]:
        cells = dict(zip(header, line.split("\t"), strict=True))
        row = {k: _parse(k, cells[prefix + k]) for k in COLUMNS if prefix + k in cells}
        rows[cells["utt_id"]] = row
    return rows


def _write_floor(path: Path, rows: dict[str, dict]) -> None:
    lines = ["\t".join(("utt_id", *COLUMNS))]
    lines += ["\t".join((u, *(_fmt(r[k]) for k in COLUMNS))) for u, r in sorted(rows.items())]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _write_per_utt(path: Path, utts: list[str], rows: dict, sides=SIDES, columns=COLUMNS) -> None:
    cols = ("utt_id", "status", *(f"{side}_{k}" for side in sides for k in columns))
    lines = ["\t".join(cols)]
    for utt in utts:
        row = rows[utt]
        values = [_fmt((row.get(side) or {}).get(k, math.nan)) for side in sides for k in columns]
        lines.append("\t".join((utt, row["status"], *values)))
    atomic_write_text(path, "\n".join(lines) + "\n")


# ---- inputs ---------------------------------------------------------------------------------
def _split_utts(layout: Layout, spk: str, split: str) -> list[str]:
    manifest = layout.dump(spk) / split / MANIFEST
    if not manifest.is_file():
        raise UserError(f"no packed features {manifest}; run ./run.sh --stage 1 --spk {spk}")
    return [line.split("\t")[0] for line in manifest.read_text().splitlines()[1:] if line]


def floor_dir(layout: Layout, spk: str, eval_cfg: Eval) -> Path:
    """``dump/<spk>/eval_floor/<key>``: cached source-floor scores for these eval settings."""
    fp = (read_fingerprint(layout.dump(spk)) or {}).get("fingerprint")
    blob = json.dumps(
        {"eval": to_dict(eval_cfg), "frame_ms": FRAME_PERIOD_MS, "fp": fp}, sort_keys=True
    )
    return layout.dump(spk) / "eval_floor" / hashlib.sha256(blob.encode()).hexdigest()[:12]


def _stamp(conv_root: Path, splits: tuple[str, ...], eval_cfg: Eval) -> str:
    """Hash of the converted files (name, size, mtime), stage-3 settings and eval settings."""
    h = hashlib.sha256(json.dumps(to_dict(eval_cfg), sort_keys=True).encode())
    h.update(b"floors: source, vocoder; per pair")  # summaries made before these are stale
    settings = conv_root / "settings.json"
    h.update(settings.read_bytes() if settings.is_file() else b"")
    for split in splits:
        for p in sorted((conv_root / split).glob("*.wav")):
            st = p.stat()
            h.update(f"{split}/{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


# ---- stage 4 --------------------------------------------------------------------------------
def _summary_block(rows: dict[str, dict], utts: list[str]) -> dict:
    scored = [u for u in utts if rows[u]["status"] == "ok"]
    conv = summarize([rows[u]["conv"] for u in scored])
    floor = summarize([rows[u]["floor"] for u in scored if rows[u].get("floor")])
    voc = summarize([rows[u]["voc"] for u in scored if rows[u].get("voc")])
    untr = [rows[u]["untr"] for u in scored if rows[u].get("untr")]
    statuses = [rows[u]["status"] for u in utts]
    counts = {
        "listed": len(utts),
        "scored": len(scored),
        "skipped": len(utts) - len(scored),
        **{s: statuses.count(s) for s in ("missing_converted", "missing_target", "error")},
        "silent": conv["count"]["silent"],
        "unvoiced": conv["count"]["unvoiced"],
    }
    out = {"converted": conv, "source": floor, "vocoder": voc, "counts": counts}
    if untr:
        out["untrained"] = summarize(untr)
    return out


def _plan(
    layout: Layout,
    cfg: TagConfig,
    spk: SpkConfig,
    conv_root: Path,
    cached: dict,
    voc_cfg: VocoderConfig,
    untrained: Path | None = None,
):
    """Rows with statuses, and the scoring jobs still to run (floors not in ``cached``;
    ``untrained``: the untrained model's stage-3 folder of a text tag)."""
    rows: dict[str, dict[str, dict]] = {}
    jobs = []
    for split in SPLITS:
        data = layout.data(cfg.spk) / split
        src = read_scp(data / "src.scp") if (data / "src.scp").is_file() else {}  # text: none
        tgt = read_scp(data / "tgt.scp")
        rows[split] = {}
        for utt in _split_utts(layout, cfg.spk, split):
            hyp = conv_root / split / f"{utt}.wav"
            ref = layout.resolve(tgt[utt]) if utt in tgt else None
            row = {"status": "ok", **{k: cached[k][split].get(utt) for k in ("floor", "voc")}}
            if ref is None or not ref.is_file():
                row["status"], row["reason"] = "missing_target", f"no target audio {ref or utt}"
            elif not hyp.is_file():
                row["status"], row["reason"] = "missing_converted", f"no converted file {hyp}"
            else:
                jobs.append(("conv", split, utt, hyp, ref, spk, cfg.eval))
            if ref is not None and ref.is_file() and row["floor"] is None and utt in src:
                jobs.append(("floor", split, utt, layout.resolve(src[utt]), ref, spk, cfg.eval))
            if ref is not None and ref.is_file() and row["voc"] is None:
                jobs.append(("voc", split, utt, voc_cfg, ref, spk, cfg.eval))
            untr = untrained / split / f"{utt}.wav" if untrained else None
            if row["status"] == "ok" and untr is not None and untr.is_file():
                jobs.append(("untr", split, utt, untr, ref, spk, cfg.eval))
            rows[split][utt] = row
    return rows, jobs


def run(
    layout: Layout,
    tag: str,
    checkpoint: str = "best",
    nj: int = 2,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Stage 4 for the converted speech of ``tag`` at ``checkpoint`` (see the module docstring).

    Returns:
        The summary (also in ``exp/<tag>/eval/<checkpoint>/summary.json``).

    Raises:
        UserError: unknown/untrained tag, no converted speech (run stage 3), no features.
    """
    cfg = load_tag_config(layout, tag)
    conv_root = layout.convert_dir(tag, checkpoint)
    if not (conv_root / "settings.json").is_file():
        raise UserError(
            f"no converted speech in {layout.shown(conv_root)}; run stage 3 first: "
            f"./run.sh --stage 3 --stop_stage 3 --tag {tag} --checkpoint {checkpoint}"
        )
    spk = load_frozen_spk(layout, cfg.spk)
    out = layout.eval_dir(tag, checkpoint)
    stamp = _stamp(conv_root, SPLITS, cfg.eval)
    old = read_json(out / "summary.json") or {}
    if old.get("stamp") == stamp and not force:
        logger.info(
            "%s is up to date with the converted speech (--force redoes it)", layout.shown(out)
        )
        return old
    voc_cfg = floor_vocoder(read_json(conv_root / "settings.json"), cfg, layout)
    caches = {
        "floor": floor_dir(layout, cfg.spk, cfg.eval),
        "voc": vocoder_floor_dir(layout, cfg.spk, cfg.eval, voc_cfg, FRAME_PERIOD_MS),
    }
    cached = {k: {s: read_metric_tsv(d / f"{s}.tsv") for s in SPLITS} for k, d in caches.items()}
    is_text = text.is_text_tag(cfg)
    untrained = None
    if is_text:
        logger.info("untrained floor: synthesising with the untrained model (checkpoint untrained)")
        untrained = text.untrained_outputs(layout, tag, read_json(conv_root / "settings.json"))
    rows, jobs = _plan(layout, cfg, spk, conv_root, cached, voc_cfg, untrained)
    n_jobs = {k: sum(j[0] == k for j in jobs) for k in (*SIDES, "untr")}
    logger.info(
        "tag %s, checkpoint %s: scoring %d converted, %d source-floor, %d untrained-floor and "
        "%d vocoder-floor (%s) pairs with %d jobs",
        tag, checkpoint, n_jobs["conv"], n_jobs["floor"], n_jobs["untr"], n_jobs["voc"],
        voc_cfg.type, nj,
    )  # fmt: skip
    scored = parallel_map(_score_job, jobs, nj, "stage 4: scoring", "pair", progress)
    for kind, split, utt, result in scored:
        row = rows[split][utt]
        if isinstance(result, str):
            logger.warning("%s %s/%s not scored: %s", kind, split, utt, layout.shown_in(result))
            if kind == "conv":
                row["status"], row["reason"] = "error", result
            continue
        row[kind] = result
        if kind in caches:
            cached[kind][split][utt] = result
    for kind, cache in caches.items():
        if n_jobs[kind]:
            for split in SPLITS:
                _write_floor(cache / f"{split}.tsv", cached[kind][split])
    dur_ref = None
    if is_text:
        refs, dur_ref = text.reference_durations(layout, cfg, tag, checkpoint, SPLITS)
        roots = {"conv": conv_root, "untr": untrained}
        text.add_duration_errors(rows, roots, refs, spk.reduction_factor)
    summary = _summarize(tag, checkpoint, cfg, conv_root, rows, stamp, voc_cfg)
    if is_text:
        summary["floors"] = {"source": text.NO_SOURCE, "untrained": layout.shown(untrained)}
        summary["duration_reference"] = dur_ref
    dump = layout.dump(cfg.spk)
    labels = {s: split_labels(dump / s, list(rows[s])) for s in SPLITS}
    summary["per_pair"] = per_pair(rows, labels, _summary_block)
    sides, columns = (text.TEXT_SIDES, (*COLUMNS, *text.DUR_KEYS)) if is_text else (SIDES, COLUMNS)
    for split in SPLITS:
        _write_per_utt(out / split / "per_utt.tsv", list(rows[split]), rows[split], sides, columns)
    write_pairs_tsv(out / PAIRS_TSV, summary["per_pair"])
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    if is_text:
        text.log_summary(summary)
    _log(summary, layout.shown(out), layout, scores=not is_text)
    return summary


def _summarize(tag, checkpoint, cfg, conv_root, rows, stamp, voc_cfg) -> dict:
    merged = {f"{s}/{u}": r for s in SPLITS for u, r in rows[s].items()}
    splits = {}
    for split in SPLITS:
        block = _summary_block(rows[split], list(rows[split]))
        block["skipped"] = [
            {"utt": u, "status": r["status"], "reason": r.get("reason", "")}
            for u, r in rows[split].items()
            if r["status"] != "ok"
        ]
        splits[split] = block
    return {
        "tag": tag,
        "checkpoint": checkpoint,
        "spk": cfg.spk,
        "converted_with": read_json(conv_root / "settings.json"),
        "vocoder_floor_with": pinned_dict(voc_cfg),
        "eval": to_dict(cfg.eval),
        "frame_period_ms": FRAME_PERIOD_MS,
        "splits": splits,
        "overall": _summary_block(merged, list(merged)),
        "rtf": read_json(conv_root / "rtf.json"),
        "stamp": stamp,
    }


def _mean(block: dict, key: str) -> float:
    return block.get(key, {}).get("mean", math.nan)


def _log(summary: dict, out: str, layout: Layout, scores: bool = True) -> None:
    for name, block in [*summary["splits"].items(), ("overall", summary["overall"])] * scores:
        conv, floor, c = block["converted"], block["source"], block["counts"]
        voc = block.get("vocoder", {})
        logger.info(
            "%-7s MCD %.2f dB (source %.2f, vocoder %.2f), F0 RMSE %.1f Hz (source %.1f, "
            "vocoder %.1f), V/UV %.3f (vocoder %.3f), DDUR %.3f; %d scored, %d skipped, "
            "%d silent, %d unvoiced",
            name, _mean(conv, "mcd"), _mean(floor, "mcd"), _mean(voc, "mcd"),
            _mean(conv, "f0_rmse_hz"), _mean(floor, "f0_rmse_hz"), _mean(voc, "f0_rmse_hz"),
            _mean(conv, "vuv_error"), _mean(voc, "vuv_error"), _mean(conv, "ddur"),
            c["scored"], c["skipped"], c["silent"], c["unvoiced"],
        )  # fmt: skip
    pairs = summary.get("per_pair") or {}
    if len(pairs) > 1:
        logger.info("per speaker pair (dev and eval; floors: src = no conversion, voc = vocoder):")
        for line in pair_table(pairs):
            logger.info("    %s", line)
    for split, block in summary["splits"].items():
        for s in block["skipped"]:
            reason = layout.shown_in(s["reason"])
            logger.warning("skipped %s/%s (%s): %s", split, s["utt"], s["status"], reason)
    logger.info(
        "outputs: %s/{dev,eval}/per_utt.tsv, %s/%s, %s/summary.json", out, out, PAIRS_TSV, out
    )
