"""``vc-report memo``: a generated Markdown memo of every dataset version and experiment.

* **Dataset versions** (spk: ``conf/spk`` files and frozen ``dump/<SPK>/``), in
  natural order: note, ``base``, what differs from the base (resolved configs, key
  by key), whether ``conf/spk`` still matches the frozen copy, the features
  fingerprint and the pairs kept/dropped at stage 1 (with reasons).
* **Experiments** (tags: ``conf/tag`` files and ``exp/`` folders) in natural order
  (``N2C_2`` before ``N2C_10``): note, spk, what differs from the ``base`` tag (or,
  without one, from the pretrain parent), training status and key results (best
  dev ``post_mel``, eval MCD and F0 RMSE beside the source floor); the speakers of
  the model and the pairs of its spk, the rows a fine-tune seeded, and for a spk of
  several pairs the per-pair eval table (each pair beside its own floors).
* **Pretrain lineage**: the fine-tuning relations as a text tree.
"""

from __future__ import annotations

import datetime as dt
import json

from vc_toolkit.config import ConfigError, load_spk, load_tag, to_dict
from vc_toolkit.config.pin import read_fingerprint
from vc_toolkit.config.resolve import available, read_yaml
from vc_toolkit.eval.report import exp_tags, load_record, natural_key
from vc_toolkit.eval.report_diff import config_changes, spk_config
from vc_toolkit.paths import Layout

SHOWN_PAIRS = 8
"""Pairs named in a tag's memo line (the rest are counted)."""


def _raw_base(layout: Layout, kind: str, name: str) -> str | None:
    path = layout.conf / kind / f"{name}.yaml"
    if not path.is_file():
        return None
    try:
        base = read_yaml(path).get("base")
    except ConfigError:
        return None
    return base if isinstance(base, str) else None


def _changes(old: dict | None, new: dict | None) -> list[str]:
    if old is None or new is None:
        return ["(cannot compare: a config is missing or invalid)"]
    return [d for d in config_changes(old, new) if not d.startswith("note:")]


def _tag_cfg(layout: Layout, tag: str) -> dict | None:
    frozen = layout.exp(tag) / "config.yaml"
    if frozen.is_file():
        return read_yaml(frozen)
    try:
        return to_dict(load_tag(tag, layout.root))
    except ConfigError:
        return None


def _bullets(lines: list[str], indent: str = "  ") -> list[str]:
    return [f"{indent}- `{line}`" for line in lines] if lines else [f"{indent}- (none)"]


def _spk_section(layout: Layout, spk: str) -> list[str]:
    out = [f"### {spk}", ""]
    cfg = spk_config(layout, spk)
    out.append(f"- note: {(cfg or {}).get('note') or '-'}")
    base = _raw_base(layout, "spk", spk)
    if base:
        out.append(f"- base: {base}; changes:")
        out += _bullets(_changes(spk_config(layout, base), cfg))
    frozen = layout.dump(spk) / "config.yaml"
    if frozen.is_file() and layout.spk_conf(spk).is_file():
        try:
            drift = _changes(read_yaml(frozen), to_dict(load_spk(spk, layout.root)))
        except ConfigError as err:
            drift = [f"conf/spk/{spk}.yaml does not load: {err}"]
        if drift:
            out.append(f"- conf/spk/{spk}.yaml differs from the frozen copy:")
            out += _bullets(drift)
    fp = read_fingerprint(layout.dump(spk))
    if fp:
        out.append(
            f"- fingerprint `{fp['fingerprint']}` (config `{fp['config_hash']}`, files "
            f"`{fp['files_hash']}`, {fp['num_files']} files)"
        )
    else:
        out.append("- not prepared (no stage 0)")
    summary = layout.dump(spk) / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        per = s.get("kept_per_split", {})
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.get("dropped_per_reason", {}).items()))
        out.append(
            f"- stage 1: kept {s.get('kept')} of {s.get('pairs')} pairs (train {per.get('train')}, "
            f"dev {per.get('dev')}, eval {per.get('eval')}); dropped {s.get('dropped')}"
            + (f" ({reasons})" if reasons else "")
        )
    return [*out, ""]


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _tag_section(layout: Layout, tag: str, configs: dict[str, dict | None]) -> list[str]:
    cfg = configs[tag] or {}
    rec = load_record(layout, tag)
    out = [f"### {tag}", "", f"- note: {cfg.get('note') or '-'}", f"- spk: {cfg.get('spk', '-')}"]
    base = _raw_base(layout, "tag", tag)
    parent = (cfg.get("pretrain") or {}).get("tag")
    if parent:
        ckpt = (cfg.get("pretrain") or {}).get("checkpoint")
        out.append(f"- pretrain: {parent} ({ckpt})")
    ref = base or parent
    if ref:
        out.append(f"- changes from {'base' if base else 'pretrain parent'} {ref}:")
        out += _bullets(_changes(configs.get(ref) or _tag_cfg(layout, ref), configs[tag]))
    out += _speaker_lines(rec)
    s = rec.summary
    if s is None:
        out.append("- not trained")
    else:
        best = s.get("best") or {}
        state = "finished" if s.get("finished") else "in progress / stopped"
        out.append(
            f"- trained {s.get('epochs_done')}/{s.get('epochs_planned')} epochs ({state}); "
            f"best dev post_mel {_fmt((best.get('losses') or {}).get('post_mel'), 4)} "
            f"(epoch {best.get('epoch', '-')})"
        )
    if rec.eval_checkpoint:

        def floors(metric: str, digits: int) -> str:
            text = f"source {_fmt(rec.eval_mean(metric, 'source'), digits)}"
            voc = rec.eval_mean(metric, "vocoder")  # evaluations before the vocoder floor: none
            return text if voc is None else f"{text}, vocoder {_fmt(voc, digits)}"

        out.append(
            f"- eval ({rec.eval_checkpoint}): MCD {_fmt(rec.eval_mean('mcd'), 2)} dB "
            f"({floors('mcd', 2)}), F0 RMSE {_fmt(rec.eval_mean('f0_rmse_hz'), 1)} Hz "
            f"({floors('f0_rmse_hz', 1)})"
        )
        out += _pair_table(rec)
    return [*out, ""]


def _speaker_lines(rec) -> list[str]:
    """Speakers of the model, pairs of the spk and seeded rows (nothing when unknown)."""
    out = []
    if rec.pairs_label:
        shown = "" if len(rec.pairs or []) == 1 else f": {', '.join(rec.pairs[:SHOWN_PAIRS])}"
        more = ", ..." if len(rec.pairs or []) > SHOWN_PAIRS else ""
        out.append(f"- pairs: {rec.pairs_label}{shown}{more}")
    if rec.speakers:
        out.append(f"- speakers of the model: {', '.join(rec.speakers)}")
    seeded = ((_read(rec.exp_dir / "speakers.json") or {}).get("seeded_from")) or {}
    if seeded:
        rows = ", ".join(f"{new} from {old}" for new, old in sorted(seeded.items()))
        out.append(f"- new speaker rows seeded: {rows}")
    return out


def _pair_table(rec) -> list[str]:
    """Markdown table of the eval split per pair (only for several pairs)."""
    pairs = rec.eval_pairs("eval")
    if len(pairs) < 2:
        return []
    out = [
        "",
        "  | pair | n | MCD | src MCD | voc MCD | F0 RMSE | src F0 RMSE | voc F0 RMSE |",
        "  |---|---|---|---|---|---|---|---|",
    ]
    for pair, entry in pairs.items():
        blk = entry["overall"]
        cells = [pair, str(blk["counts"]["scored"])]
        cells += [_block_mean(blk, side, "mcd", 2) for side in ("converted", "source", "vocoder")]
        cells += [
            _block_mean(blk, side, "f0_rmse_hz", 1) for side in ("converted", "source", "vocoder")
        ]
        out.append("  | " + " | ".join(cells) + " |")
    return out


def _block_mean(blk: dict, side: str, metric: str, digits: int) -> str:
    value = ((blk.get(side) or {}).get(metric) or {}).get("mean")
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _read(path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None


def lineage_tree(parents: dict[str, str | None], labels: dict[str, str] | None = None) -> list[str]:
    """Text tree of pretrain relations (only tags that fine-tune or are fine-tuned).

    Args:
        parents: tag → pretrain parent (None: trained from scratch).
        labels: optional text shown after a tag.

    Example:
        >>> for line in lineage_tree({"a": None, "b": "a", "c": "b", "d": "a", "e": None}):
        ...     print(line)
        a
        ├── b
        │   └── c
        └── d
    """
    labels = labels or {}
    children: dict[str, list[str]] = {}
    for tag, parent in parents.items():
        if parent:
            children.setdefault(parent, []).append(tag)
    involved = set(children) | {t for t, p in parents.items() if p}
    roots = sorted((t for t in involved if not parents.get(t)), key=natural_key)
    lines: list[str] = []

    def walk(tag: str, prefix: str, last: bool, top: bool, seen: tuple) -> None:
        text = tag + (f"  {labels[tag]}" if labels.get(tag) else "")
        lines.append(text if top else f"{prefix}{'└── ' if last else '├── '}{text}")
        if tag in seen:
            return
        kids = sorted(children.get(tag, []), key=natural_key)
        inner = "" if top else prefix + ("    " if last else "│   ")
        for k, kid in enumerate(kids):
            walk(kid, inner, k == len(kids) - 1, False, (*seen, tag))

    for root in roots:
        walk(root, "", True, True, ())
    return lines


def memo(layout: Layout) -> str:
    """The memo as Markdown (see the module docstring)."""
    dumps = [p.parent.name for p in (layout.root / "dump").glob("*/config.yaml")]
    spks = sorted(set(available(layout, "spk")) | set(dumps), key=natural_key)
    tags = sorted(set(available(layout, "tag")) | set(exp_tags(layout)), key=natural_key)
    configs = {t: _tag_cfg(layout, t) for t in tags}
    now = dt.datetime.now().isoformat(timespec="seconds")
    out = ["# Experiment memo", "", f"_generated by `vc-report memo` at {now}_", ""]
    out += ["## Dataset versions (spk)", ""]
    for spk in spks:
        out += _spk_section(layout, spk)
    out += ["## Experiments (tags)", ""]
    for tag in tags:
        out += _tag_section(layout, tag, configs)
    parents = {t: ((c or {}).get("pretrain") or {}).get("tag") for t, c in configs.items()}
    labels = {
        t: f"(from {((c or {}).get('pretrain') or {}).get('checkpoint')})"
        for t, c in configs.items()
        if parents.get(t)
    }
    tree = lineage_tree(parents, labels)
    out += ["## Pretrain lineage", ""]
    out += ["```", *tree, "```"] if tree else ["(no tag fine-tunes another)"]
    return "\n".join(out) + "\n"
