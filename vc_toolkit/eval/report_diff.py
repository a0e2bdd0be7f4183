"""``vc-report diff A B``: everything that can make two experiments differ, in one listing.

Sections, each ``A -> B`` key by key:

1. **tag config**: the frozen resolved configs (``exp/<T>/config.yaml``; the
   ``conf/tag`` file resolved when a tag never ran), and for each tag whether its
   ``conf/tag`` file changed since it was frozen;
2. **spk**: the two spk configs (frozen ``dump/<SPK>/config.yaml``, else ``conf/spk``),
   the features fingerprint each tag trained on against the spk's current one, and,
   when the data differ, which input files: the ``data/<SPK>/<split>/{src,tgt}.scp``
   lists compared entry by entry (utterance only in one, other path, other size);
3. **pretrain lineage** (``lineage.json``): the chain of each tag;
4. **code**: package version, torch and git commit recorded at training;
5. **speakers**: the speaker pairs of each tag's spk and the speakers of its model;
6. **results**: epochs, steps, best dev loss, eval MCD / F0 RMSE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vc_toolkit.config import ConfigError, load_spk, load_tag, to_dict
from vc_toolkit.config.pin import read_fingerprint
from vc_toolkit.config.resolve import read_yaml
from vc_toolkit.errors import UserError
from vc_toolkit.eval.report import TagRecord, load_record
from vc_toolkit.io import read_scp
from vc_toolkit.paths import SPLITS, Layout

SHOWN = 10


def _tag_config(layout: Layout, tag: str) -> tuple[dict | None, str, list[str]]:
    """(resolved config, where it came from, changes of conf/tag since it was frozen)."""
    frozen = layout.exp(tag) / "config.yaml"
    try:
        current = to_dict(load_tag(tag, layout.root))
    except ConfigError:
        current = None
    if frozen.is_file():
        data = read_yaml(frozen)
        changed = config_changes(data, current) if current is not None else []
        return data, str(frozen.relative_to(layout.root)), changed
    if current is not None:
        return current, f"conf/tag/{tag}.yaml (not trained)", []
    return None, "", []


def config_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Key-by-key differences of two nested configs; a section set on one side only is one line.

    Example:
        >>> config_changes({"a": 1, "p": None, "t": {"x": 1}}, {"a": 2, "p": {"tag": "z"},
        ...                "t": {"x": 1, "y": 0}})
        ['a: 1 -> 2', "p: None -> {'tag': 'z'}", 't.y: (absent) -> 0']
    """
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]
    lines = []
    for key in sorted(set(old) | set(new), key=str):
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in old:
            lines.append(f"{full}: (absent) -> {new[key]!r}")
        elif key not in new:
            lines.append(f"{full}: {old[key]!r} -> (absent)")
        else:
            lines += config_changes(old[key], new[key], full)
    return lines


def spk_config(layout: Layout, spk: str) -> dict | None:
    """Frozen spk config (``dump/<spk>/config.yaml``), else the resolved ``conf/spk`` one."""
    frozen = layout.dump(spk) / "config.yaml"
    if frozen.is_file():
        return read_yaml(frozen)
    try:
        return to_dict(load_spk(spk, layout.root))
    except ConfigError:
        return None


def spk_files(layout: Layout, spk: str) -> dict[tuple[str, str, str], tuple[str, int]]:
    """``(split, side, utt) -> (path as listed, size or -1)`` from ``data/<spk>`` lists."""
    out = {}
    for split in SPLITS:
        for side in ("src", "tgt"):
            scp = layout.data(spk) / split / f"{side}.scp"
            if not scp.is_file():
                continue
            for utt, path in read_scp(scp).items():
                full = layout.resolve(path)
                out[split, side, utt] = (path, full.stat().st_size if full.is_file() else -1)
    return out


def file_differences(a: dict, b: dict) -> list[str]:
    """Lines describing how two :func:`spk_files` listings differ.

    Example:
        >>> a = {("train", "src", "u1"): ("x/u1.wav", 10), ("dev", "src", "u2"): ("x/u2.wav", 5)}
        >>> b = {("train", "src", "u1"): ("x/u1.wav", 12), ("train", "src", "u3"): ("x/u3.wav", 7)}
        >>> for line in file_differences(a, b): print(line)
        only in A: 1 (dev/src/u2 x/u2.wav)
        only in B: 1 (train/src/u3 x/u3.wav)
        different path or size: 1
          train/src/u1: x/u1.wav (10 B) -> x/u1.wav (12 B)
    """

    def name(key: tuple) -> str:
        return "/".join(key)

    lines = []
    for label, keys, src in (
        ("A", sorted(a.keys() - b.keys()), a),
        ("B", sorted(b.keys() - a.keys()), b),
    ):
        if keys:
            shown = ", ".join(f"{name(k)} {src[k][0]}" for k in keys[:SHOWN])
            more = f", ... ({len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
            lines.append(f"only in {label}: {len(keys)} ({shown}{more})")
    changed = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    if changed:
        lines.append(f"different path or size: {len(changed)}")
        for k in changed[:SHOWN]:
            lines.append(f"  {name(k)}: {a[k][0]} ({a[k][1]} B) -> {b[k][0]} ({b[k][1]} B)")
        if len(changed) > SHOWN:
            lines.append(f"  ... ({len(changed) - SHOWN} more)")
    return lines


def _trained_fp(rec: TagRecord) -> str | None:
    if rec.summary and rec.summary.get("spk_fingerprint"):
        return rec.summary["spk_fingerprint"]
    return (rec.lineage or [{}])[0].get("spk_fingerprint")


def _spk_section(layout: Layout, ra: TagRecord, rb: TagRecord, spk_a: str, spk_b: str) -> list[str]:
    lines = []
    if spk_a == spk_b:
        lines.append(f"same spk '{spk_a}'")
    else:
        lines.append(f"spk: {spk_a!r} -> {spk_b!r}")
        ca, cb = spk_config(layout, spk_a), spk_config(layout, spk_b)
        if ca is not None and cb is not None:
            diff = config_changes(ca, cb)
            lines += [f"  {d}" for d in diff] or ["  (spk configs identical)"]
    used = {}
    for label, rec, spk in (("A", ra, spk_a), ("B", rb, spk_b)):
        now = read_fingerprint(layout.dump(spk)) or {}
        trained = _trained_fp(rec)
        used[label] = trained or now.get("fingerprint")
        stale = " (spk rebuilt since)" if trained and trained != now.get("fingerprint") else ""
        lines.append(
            f"{label} trained on features {trained or '-'}; spk '{spk}' now "
            f"{now.get('fingerprint', '-')} (config {now.get('config_hash', '-')}, files "
            f"{now.get('files_hash', '-')}, {now.get('num_files', '-')} files){stale}"
        )
    if used["A"] and used["A"] == used["B"]:
        lines.append("fingerprints equal: same features")
        return lines
    lines.append("fingerprints differ")
    if spk_a == spk_b:
        lines.append("  same spk, rebuilt between the two trainings (earlier lists are not kept)")
    else:
        diff = file_differences(spk_files(layout, spk_a), spk_files(layout, spk_b))
        lines += [f"  {d}" for d in diff] or ["  input file lists identical"]
    return lines


def _chain(rec: TagRecord) -> str:
    if not rec.lineage:
        return "-" if rec.config is None or not rec.get("pretrain.tag") else rec.get("pretrain.tag")
    parts = [rec.lineage[0]["tag"]]
    for row in rec.lineage[1:]:
        ckpt = Path(str(row.get("checkpoint") or "?")).stem
        parts.append(
            f"{row['tag']} ({ckpt}, epoch {row.get('epoch')}, fp {row.get('spk_fingerprint')})"
        )
    return " <- ".join(parts)


def _speakers_section(ra: TagRecord, rb: TagRecord) -> list[str]:
    lines = []
    for what, a, b in (
        ("pairs", ra.pairs_label, rb.pairs_label),
        ("speakers of the model", _names(ra.speakers), _names(rb.speakers)),
    ):
        lines.append(f"{what}: {a or '-'}" if a == b else f"{what}: {a or '-'} -> {b or '-'}")
    only_a = sorted(set(ra.pairs or ()) - set(rb.pairs or ()))
    only_b = sorted(set(rb.pairs or ()) - set(ra.pairs or ()))
    for label, only in (("A", only_a), ("B", only_b)):
        if only and ra.pairs and rb.pairs:
            more = f", ... ({len(only) - SHOWN} more)" if len(only) > SHOWN else ""
            lines.append(f"pairs only in {label}: {', '.join(only[:SHOWN])}{more}")
    return lines


def _names(speakers: list[str] | None) -> str | None:
    return ", ".join(speakers) if speakers else None


def _results(rec: TagRecord) -> dict[str, Any]:
    s = rec.summary or {}
    return {
        "epochs": f"{s.get('epochs_done', '-')}/{s.get('epochs_planned', '-')}",
        "steps": s.get("steps"),
        "best dev": (s.get("best") or {}).get("value"),
        "eval": rec.eval_checkpoint,
        "MCD": rec.eval_mean("mcd"),
        "F0 RMSE": rec.eval_mean("f0_rmse_hz"),
    }


def tag_diff(layout: Layout, a: str, b: str) -> list[str]:
    """The report lines of ``vc-report diff a b`` (see the module docstring).

    Raises:
        UserError: a tag is neither in ``exp/`` nor in ``conf/tag``.
    """
    cfg_a, where_a, changed_a = _tag_config(layout, a)
    cfg_b, where_b, changed_b = _tag_config(layout, b)
    for tag, cfg in ((a, cfg_a), (b, cfg_b)):
        if cfg is None:
            raise UserError(
                f"unknown tag '{tag}': no exp/{tag}/config.yaml and no usable conf/tag/{tag}.yaml"
            )
    ra, rb = load_record(layout, a), load_record(layout, b)
    lines = [f"A = {a} ({where_a})", f"B = {b} ({where_b})", "", "== tag config (A -> B) =="]
    diff = config_changes(cfg_a, cfg_b)
    lines += diff or ["(identical)"]
    for tag, changed in ((a, changed_a), (b, changed_b)):
        if changed:
            lines.append(f"note: conf/tag/{tag}.yaml changed since {tag} was frozen:")
            lines += [f"  {d}" for d in changed]
    lines += ["", "== spk =="] + _spk_section(layout, ra, rb, cfg_a["spk"], cfg_b["spk"])
    lines += ["", "== pretrain lineage ==", f"A: {_chain(ra)}", f"B: {_chain(rb)}"]
    lines += ["", "== speakers (A -> B) =="] + _speakers_section(ra, rb)
    lines += ["", "== code (recorded at training) =="]
    code_a = (ra.summary or {}).get("code") or {}
    code_b = (rb.summary or {}).get("code") or {}
    for key in sorted(set(code_a) | set(code_b)):
        va, vb = code_a.get(key, "-"), code_b.get(key, "-")
        lines.append(f"{key}: {va}" if va == vb else f"{key}: {va} -> {vb}")
    if not code_a and not code_b:
        lines.append("(neither tag has a training summary)")
    lines += ["", "== results =="]
    res_a, res_b = _results(ra), _results(rb)
    for key in res_a:
        lines.append(f"{key}: {_show(res_a[key])} -> {_show(res_b[key])}")
    return lines


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
