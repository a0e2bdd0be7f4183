"""Stage 4 per speaker pair: each pair's scores beside its own floors.

A spk may hold many speaker pairs (:mod:`vc_toolkit.data.labels`); every dev/eval
utterance belongs to one, named ``src_voice->tgt_voice`` by its labels
(``dump/<SPK>/<split>/labels.tsv``; one-to-one spks prepared before labels:
``src->tgt``). The source floor of an utterance already compares that pair's
source with that pair's target, so a pair's floor is the mean over its own
utterances, like its conversion scores and its vocoder floor.

Outputs (beside the overall ones of :mod:`vc_toolkit.eval.stage`):

* ``summary.json`` ``per_pair``: ``{pair: {"src", "tgt", "splits": {split: block},
  "overall": block}}``, each block as the overall one (``converted``, ``source``,
  ``vocoder`` statistics and ``counts``); a one-to-one spk has one pair whose
  ``overall`` equals the summary's;
* ``pairs.tsv``: one row per pair and split (``dev``, ``eval``, ``overall``):
  ``pair``, ``src``, ``tgt``, ``split``, ``listed``, ``scored``, then the means
  ``conv_<metric>``, ``floor_<metric>`` (source floor) and ``voc_<metric>``
  (vocoder floor, NaN when not computed) of every metric.

Example:
    >>> blocks = {"a->b": {"src": "a", "tgt": "b", "splits": {}, "overall": {
    ...     "converted": {"mcd": {"mean": 5.0}}, "source": {"mcd": {"mean": 8.0}},
    ...     "vocoder": {}, "counts": {"listed": 2, "scored": 2}}}}
    >>> pair_table(blocks)[1].split()[:5]
    ['a->b', '2', '5.00', '8.00', '-']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from vc_toolkit.data.labels import LABELS_FILE, LabelError, Labels, read_labels
from vc_toolkit.eval.metrics import METRIC_KEYS
from vc_toolkit.infer.speakers import dump_labels
from vc_toolkit.io import atomic_write_text
from vc_toolkit.paths import Layout

PAIRS_TSV = "pairs.tsv"
BLOCK_SIDES = {"conv": "converted", "floor": "source", "voc": "vocoder"}
"""Column prefix in ``pairs.tsv`` → block of a summary."""


def split_labels(dump_split: Path, utts: list[str]) -> dict[str, Labels]:
    """Labels of the listed utterances of a dump split (one-to-one without ``labels.tsv``)."""
    return read_labels(dump_split / LABELS_FILE, utts)


def per_pair(
    rows: dict[str, dict[str, dict]],
    labels: dict[str, dict[str, Labels]],
    block: Callable[[dict[str, dict], list[str]], dict],
) -> dict[str, dict]:
    """Summary blocks of every pair, per split and over both, pairs sorted by name.

    Args:
        rows: split → utterance → scored row (as stage 4 builds them).
        labels: split → utterance → labels.
        block: Makes a summary block from rows and the utterances to cover
            (stage 4's overall block function, so both agree).
    """
    members: dict[str, dict[str, list[str]]] = {}
    voices: dict[str, tuple[str, str]] = {}
    for split, split_rows in rows.items():
        for utt in split_rows:
            lab = labels[split][utt]
            members.setdefault(lab.pair, {}).setdefault(split, []).append(utt)
            voices[lab.pair] = (lab.src_voice, lab.tgt_voice)
    out = {}
    for pair in sorted(members):
        splits = {s: block(rows[s], utts) for s, utts in members[pair].items()}
        merged = {f"{s}/{u}": rows[s][u] for s, utts in members[pair].items() for u in utts}
        src, tgt = voices[pair]
        out[pair] = {"src": src, "tgt": tgt, "splits": splits, "overall": block(merged, [*merged])}
    return out


def _mean(block: dict, side: str, metric: str) -> float:
    value = (block.get(side) or {}).get(metric, {}).get("mean")
    return math.nan if value is None else float(value)


def write_pairs_tsv(path: Path, pairs: dict[str, dict]) -> None:
    """Write ``pairs.tsv`` (module docstring) from :func:`per_pair` blocks."""
    metric_cols = [f"{p}_{m}" for p in BLOCK_SIDES for m in METRIC_KEYS]
    lines = ["\t".join(("pair", "src", "tgt", "split", "listed", "scored", *metric_cols))]
    for pair, entry in pairs.items():
        for split, blk in [*entry["splits"].items(), ("overall", entry["overall"])]:
            counts = blk["counts"]
            means = [_mean(blk, side, m) for side in BLOCK_SIDES.values() for m in METRIC_KEYS]
            cells = [pair, entry["src"], entry["tgt"], split]
            cells += [str(counts["listed"]), str(counts["scored"])]
            cells += ["nan" if math.isnan(v) else f"{v:.8g}" for v in means]
            lines.append("\t".join(cells))
    atomic_write_text(path, "\n".join(lines) + "\n")


def pair_table(pairs: dict[str, dict], split: str = "overall") -> list[str]:
    """Aligned text lines: each pair's MCD and F0 RMSE beside its source and vocoder floors.

    Args:
        pairs: :func:`per_pair` blocks (or ``summary.json``'s ``per_pair``).
        split: ``overall``, ``dev`` or ``eval`` (pairs without that split are left out).
    """

    def cell(value: float, digits: int) -> str:
        return "-" if math.isnan(value) else f"{value:.{digits}f}"

    width = max([len("pair"), *(len(p) for p in pairs)])
    head = f"{'pair':<{width}}  {'n':>3}  {'MCD':>6} {'src':>6} {'voc':>6}"
    lines = [head + f"  {'F0 RMSE':>7} {'src':>6} {'voc':>6}"]
    for pair, entry in pairs.items():
        blk = entry["overall"] if split == "overall" else entry["splits"].get(split)
        if blk is None:
            continue
        mcd = [cell(_mean(blk, s, "mcd"), 2) for s in BLOCK_SIDES.values()]
        f0 = [cell(_mean(blk, s, "f0_rmse_hz"), 1) for s in BLOCK_SIDES.values()]
        lines.append(
            f"{pair:<{width}}  {blk['counts']['scored']:>3}  {mcd[0]:>6} {mcd[1]:>6} {mcd[2]:>6}"
            f"  {f0[0]:>7} {f0[1]:>6} {f0[2]:>6}"
        )
    return lines


def pairs_text(pairs: list[str]) -> str:
    """What a report shows of a tag's pairs: the pair, or their and their speakers' counts.

    Example:
        >>> pairs_text(["m3->f2"]), pairs_text(["a->b", "b->a", "a:happy->c"])
        ('m3->f2', '3 pairs (3 speakers)')
    """
    if len(pairs) == 1:
        return pairs[0]
    speakers = {v.split(":")[0] for p in pairs for v in p.split("->")}
    return f"{len(pairs)} pairs ({len(speakers)} speakers)"


def tag_pairs(layout: Layout, spk: str | None, evals: dict[str, dict]) -> list[str] | None:
    """Pairs of the spk's packed splits, else those of an evaluation; None if neither."""
    if spk:
        try:
            labels = dump_labels(layout.dump(spk))
        except LabelError:
            labels = {}
        if labels:
            return sorted({lab.pair for lab in labels.values()})
    for summary in evals.values():
        if summary.get("per_pair"):
            return sorted(summary["per_pair"])
    return None
