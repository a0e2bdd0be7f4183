"""Experiment reports over ``exp/``: what every tag is, how far it trained, how well it scores.

Everything here only reads what the stages wrote (nothing is recomputed):
``exp/<T>/config.yaml`` (frozen resolved config), ``summary.json`` (training),
``history.jsonl`` (loss curves), ``lineage.json`` (pretrain ancestry),
``speakers.json`` (the model's speaker table), ``eval/<C>/summary.json`` (stage 4) and
the speaker pairs of the tag's spk (``dump/<SPK>/<split>/labels.tsv``; else the pairs
of its evaluation). Missing pieces show as ``-``.

* :func:`leaderboard`: one row per tag (columns in :data:`COLUMNS`), sortable,
  rendered as an aligned table, Markdown or CSV (:func:`render`).
* :mod:`vc_toolkit.eval.report_diff`: every difference between two tags.
* :mod:`vc_toolkit.eval.report_memo`: the Markdown memo of spk versions and tags.
* :mod:`vc_toolkit.eval.report_plots`: loss curves and single-utterance figures.

Example:
    >>> sorted(["N2C_10", "N2C_2", "N2C_1b"], key=natural_key)
    ['N2C_1b', 'N2C_2', 'N2C_10']
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from vc_toolkit.config.resolve import read_yaml
from vc_toolkit.paths import SKIP_EXP, Layout

EVAL_PREFERENCE = ("best", "latest")


def natural_key(text: str) -> tuple:
    """Sort key with digit runs compared as numbers (``N2C_2`` < ``N2C_10``)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


@dataclass
class TagRecord:
    """What the stages left in ``exp/<tag>/`` (each part None when absent).

    Attributes:
        tag (str): experiment name.
        exp_dir (Path): ``exp/<tag>``.
        config (dict | None): frozen resolved config.
        summary (dict | None): training summary.
        lineage (list | None): this tag, then its pretrain ancestors.
        evals (dict): checkpoint name → stage-4 summary.
        speakers (list | None): speaker names of the model's table (``speakers.json``).
        pairs (list | None): the speaker pairs of its spk (``src->tgt`` names, sorted).
    """

    tag: str
    exp_dir: Path
    config: dict | None = None
    summary: dict | None = None
    lineage: list | None = None
    evals: dict[str, dict] = field(default_factory=dict)
    speakers: list[str] | None = None
    pairs: list[str] | None = None

    @property
    def pairs_label(self) -> str | None:
        """``m3->f2``, or ``30 pairs (6 speakers)``; None when unknown."""
        from vc_toolkit.eval.pairs import pairs_text

        return pairs_text(self.pairs) if self.pairs else None

    def eval_pairs(self, split: str = "eval") -> dict[str, dict]:
        """Per-pair blocks of ``split`` (or ``overall``) of the preferred evaluation."""
        summary = self.evals.get(self.eval_checkpoint or "") or {}
        out = {}
        for pair, entry in (summary.get("per_pair") or {}).items():
            block = entry.get("overall") if split == "overall" else entry["splits"].get(split)
            if block is not None:
                out[pair] = {**entry, "splits": {split: block}, "overall": block}
        return out

    def get(self, dotted: str, default: Any = None) -> Any:
        """A value of the frozen config by dotted key (``train.batch_size``)."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @cached_property
    def choices(self) -> dict[str, str]:
        """Report labels of the model's parts (``pitch``, ``prosody``); empty if unreadable."""
        from vc_toolkit.config import ConfigError, build
        from vc_toolkit.config.tag import ModelConfig
        from vc_toolkit.models import describe

        model = (self.config or {}).get("model")
        if not isinstance(model, dict):
            return {}
        try:
            return describe(build(ModelConfig, model))
        except (ConfigError, ValueError):
            return {}

    @property
    def eval_checkpoint(self) -> str | None:
        """The evaluation shown in reports: ``best``, else ``latest``, else the newest."""
        for name in EVAL_PREFERENCE:
            if name in self.evals:
                return name
        return next(iter(self.evals), None)

    def eval_mean(self, metric: str, side: str = "converted", split: str = "eval") -> float | None:
        """Mean of ``metric`` on ``split`` of the preferred evaluation.

        ``side``: ``converted``, ``source`` (source floor), ``vocoder`` (vocoder floor) or
        ``untrained`` (untrained-model floor of a text tag).
        """
        summary = self.evals.get(self.eval_checkpoint or "")
        try:
            value = summary["splits"][split][side][metric]["mean"]
        except (KeyError, TypeError):
            return None
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def exp_tags(layout: Layout) -> list[str]:
    """Tags with a folder in ``exp/`` holding a config or a summary, in natural order."""
    exp = layout.root / "exp"
    if not exp.is_dir():
        return []
    tags = [
        p.name
        for p in exp.iterdir()
        if p.is_dir()
        and p.name not in SKIP_EXP
        and ((p / "config.yaml").is_file() or (p / "summary.json").is_file())
    ]
    return sorted(tags, key=natural_key)


def select_tags(layout: Layout, patterns: list[str] | None) -> list[str]:
    """Tags of ``exp/`` matching any glob of ``patterns`` (comma-separated allowed); all if none."""
    tags = exp_tags(layout)
    globs = [g for p in patterns or [] for g in p.split(",") if g]
    if not globs:
        return tags
    return [t for t in tags if any(fnmatch.fnmatchcase(t, g) for g in globs)]


def load_record(layout: Layout, tag: str) -> TagRecord:
    """Read everything reports use about ``tag`` (never raises on missing parts)."""
    exp = layout.exp(tag)
    config = read_yaml(exp / "config.yaml") if (exp / "config.yaml").is_file() else None
    evals = {}
    eval_root = exp / "eval"
    if eval_root.is_dir():
        found = sorted(eval_root.glob("*/summary.json"), key=lambda p: -p.stat().st_mtime)
        for path in found:
            data = _read_json(path)
            if data is not None:
                evals[path.parent.name] = data
    from vc_toolkit.eval.pairs import tag_pairs

    table = _read_json(exp / "speakers.json")
    return TagRecord(
        tag=tag,
        exp_dir=exp,
        config=config,
        summary=_read_json(exp / "summary.json"),
        lineage=_read_json(exp / "lineage.json"),
        evals=evals,
        speakers=table.get("speakers") if isinstance(table, dict) else None,
        pairs=tag_pairs(layout, (config or {}).get("spk"), evals),
    )


# ---- leaderboard columns --------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A leaderboard column: ``value`` gives the sortable raw value, ``text`` its display."""

    key: str
    header: str
    value: Callable[[TagRecord], Any]
    text: Callable[[Any, TagRecord], str] | None = None

    def show(self, rec: TagRecord) -> str:
        v = self.value(rec)
        if v is None:
            return "-"
        if self.text is not None:
            return self.text(v, rec)
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)


def _summary(key: str) -> Callable[[TagRecord], Any]:
    return lambda r: (r.summary or {}).get(key)


def _best(loss: str) -> Callable[[TagRecord], Any]:
    return lambda r: (((r.summary or {}).get("best") or {}).get("losses") or {}).get(loss)


def _choice(part: str) -> Callable[[TagRecord], Any]:
    """The report label of a model part (``pitch``, ``prosody``) from the model registry."""
    return lambda r: r.choices.get(part)


def _warmup(r: TagRecord) -> str | None:
    if r.get("train.scheduler.warmup_samples") is not None:
        return f"{r.get('train.scheduler.warmup_samples')} utts"
    step, ref = r.get("train.scheduler.warm_up_step"), r.get("train.scheduler.ref_batch_size")
    return None if step is None else f"{step}@{ref}"


def _epochs_text(v: Any, r: TagRecord) -> str:
    planned = (r.summary or {}).get("epochs_planned") or r.get("train.epochs")
    return f"{v}/{planned if planned is not None else '-'}"


def _seconds(v: Any, r: TagRecord) -> str:
    return f"{v:.1f}"


def _hz(v: Any, r: TagRecord) -> str:
    return f"{v:.1f}"


def _dec2(v: Any, r: TagRecord) -> str:
    return f"{v:.2f}"


def _loss_columns() -> list[Column]:
    """One column per dev loss the model registry gives a header (best dev value)."""
    from vc_toolkit.models import all_loss_terms

    taken = {"pitch", "prosody"}  # the choice columns
    return [
        Column(f"{t.name}_loss" if t.name in taken else t.name, t.header, _best(t.name))
        for t in all_loss_terms()
        if t.header
    ]


COLUMNS: tuple[Column, ...] = (
    Column("tag", "tag", lambda r: r.tag),
    Column("spk", "spk", lambda r: r.get("spk") or (r.summary or {}).get("spk")),
    Column("pretrain", "pretrain", lambda r: r.get("pretrain.tag")),
    Column("pairs", "pairs", lambda r: r.pairs_label),
    Column("pitch", "pitch", _choice("pitch")),
    Column("prosody", "prosody", _choice("prosody")),
    Column("batch", "batch", lambda r: r.get("train.batch_size")),
    Column("group", "group", lambda r: r.get("train.group_size")),
    Column("warmup", "warmup", _warmup),
    Column("epochs", "epochs", _summary("epochs_done"), _epochs_text),
    Column("sec_per_epoch", "s/ep", _summary("seconds_per_epoch"), _seconds),
    *_loss_columns(),
    Column("eval_ckpt", "eval ckpt", lambda r: r.eval_checkpoint),
    Column("mcd", "MCD", lambda r: r.eval_mean("mcd"), _dec2),
    Column("f0_rmse", "F0 RMSE", lambda r: r.eval_mean("f0_rmse_hz"), _hz),
    Column("vuv", "V/UV", lambda r: r.eval_mean("vuv_error")),
    Column("ddur", "DDUR", lambda r: r.eval_mean("ddur")),
    Column("floor_mcd", "src MCD", lambda r: r.eval_mean("mcd", "source"), _dec2),
    Column("floor_f0_rmse", "src F0 RMSE", lambda r: r.eval_mean("f0_rmse_hz", "source"), _hz),
    Column("voc_mcd", "voc MCD", lambda r: r.eval_mean("mcd", "vocoder"), _dec2),
    Column("voc_f0_rmse", "voc F0 RMSE", lambda r: r.eval_mean("f0_rmse_hz", "vocoder"), _hz),
    Column("untr_mcd", "untr MCD", lambda r: r.eval_mean("mcd", "untrained"), _dec2),
    Column("dur_mae", "dur MAE", lambda r: r.eval_mean("dur_mae_frames"), _dec2),
    Column("note", "note", lambda r: r.get("note") or (r.summary or {}).get("note") or None),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def _column(key: str) -> Column:
    for col in COLUMNS:
        if col.key == key or col.header == key:
            return col
    from vc_toolkit.errors import UserError

    raise UserError(f"unknown leaderboard column '{key}'; columns: {', '.join(COLUMN_KEYS)}")


def _sort_key(value: Any) -> tuple:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, ())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value))
    return (1, natural_key(str(value)))


def leaderboard(
    layout: Layout, patterns: list[str] | None = None, sort: str = "tag", reverse: bool = False
) -> list[TagRecord]:
    """Records of the matching tags, sorted by column ``sort`` (missing values last).

    Raises:
        UserError: ``sort`` names no column.
    """
    col = _column(sort)
    records = [load_record(layout, t) for t in select_tags(layout, patterns)]
    present = [r for r in records if col.value(r) is not None]
    missing = [r for r in records if col.value(r) is None]
    present.sort(key=lambda r: _sort_key(col.value(r)), reverse=reverse)
    return present + missing


def render(records: list[TagRecord], fmt: str = "table") -> str:
    """The leaderboard as ``table`` (aligned text), ``md`` (Markdown) or ``csv`` (raw values)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMN_KEYS)
        for rec in records:
            raw = [c.value(rec) for c in COLUMNS]
            writer.writerow(["" if v is None else v for v in raw])
        return buf.getvalue()
    cells = [[c.show(r) for c in COLUMNS] for r in records]
    headers = [c.header for c in COLUMNS]
    if fmt == "md":
        esc = [[s.replace("|", "\\|") for s in row] for row in cells]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in esc]) + "\n"
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; use table, md or csv")
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(_is_num(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [
            s.rjust(w) if num else s.ljust(w)
            for s, w, num in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return (
        "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])
        + "\n"
    )


def _is_num(text: str) -> bool:
    if text == "-":
        return True
    try:
        float(text.split("/")[0])
    except ValueError:
        return False
    return True


def write_leaderboard(records: list[TagRecord], out: Path) -> list[Path]:
    """Write ``leaderboard.{txt,md,csv}`` and ``loss_curves.png`` of ``records`` into ``out``."""
    from vc_toolkit.eval.report_plots import loss_curves
    from vc_toolkit.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, suffix in (("table", "txt"), ("md", "md"), ("csv", "csv")):
        path = out / f"leaderboard.{suffix}"
        atomic_write_text(path, render(records, fmt))
        written.append(path)
    if records:
        written.append(loss_curves([r.exp_dir for r in records], out / "loss_curves.png"))
    return written
