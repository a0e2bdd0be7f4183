"""Dev-loss curves of several runs of one recipe, side by side, at equal utterances seen.

A speed-up counts only if it does not hurt convergence (issue 17): this script puts the
dev losses of runs that differ in one respect (code version, precision, batching) next to
the spread between two seeds of the same recipe, the noise band. Runs are compared at the
same epoch, i.e. after the same number of training utterances (every epoch sees each
utterance once in both batching modes).

Example::

    python bench/curves.py --run before=/work/ref/history.jsonl \\
        --run after=exp/demo_conv/history.jsonl --noise exp/demo_conv_seed2/history.jsonl \\
        --out bench/results/2026-12-03-demo_conv-curves

writes ``<out>.md`` (a table per loss) and ``<out>.png`` (the curves). The first ``--run``
is the reference; ``--noise`` is the same recipe as the reference with another seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LOSSES = ("post_mel", "mel", "duration", "pitch", "energy")


def read_dev(path: str | Path) -> dict[int, dict[str, float]]:
    """Epoch → dev losses of a ``history.jsonl`` (only the epochs that evaluated dev)."""
    out: dict[int, dict[str, float]] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "dev" in row:
            out[int(row["epoch"])] = row["dev"]
    if not out:
        raise SystemExit(f"{path}: no dev losses (is it a stage-2 history.jsonl?)")
    return out


def _parse_run(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise SystemExit(f"--run {text!r}: expected LABEL=PATH/history.jsonl")
    return label, Path(path)


def compare(
    runs: list[tuple[str, dict[int, dict[str, float]]]],
    noise: dict[int, dict[str, float]] | None,
    losses: tuple[str, ...] = LOSSES,
) -> str:
    """Markdown tables: per loss, every run's value per epoch, its difference to the first
    run, and the seed spread ``|noise - first|`` at that epoch.

    Returns:
        str: the tables, then one summary line per run and loss (mean absolute difference to
        the reference over the epochs after the first, and the same for the seed spread).
    """
    ref_label, ref = runs[0]
    epochs = sorted(set.intersection(*(set(r) for _, r in runs)))
    lines: list[str] = []
    summary: list[str] = []
    for loss in losses:
        head = ["epoch", *[label for label, _ in runs]]
        head += [f"{label} − {ref_label}" for label, _ in runs[1:]]
        if noise is not None:
            head.append("seed spread")
        lines += [f"### dev {loss}", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + " --- |" * len(head))
        for ep in epochs:
            cells = [str(ep)] + [f"{r[ep][loss]:.4f}" for _, r in runs]
            cells += [f"{r[ep][loss] - ref[ep][loss]:+.4f}" for _, r in runs[1:]]
            if noise is not None and ep in noise:
                cells.append(f"{abs(noise[ep][loss] - ref[ep][loss]):.4f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        late = epochs[1:] or epochs
        for label, r in runs[1:]:
            diff = sum(abs(r[e][loss] - ref[e][loss]) for e in late) / len(late)
            text = f"* dev {loss}, {label}: mean |Δ| to {ref_label} {diff:.4f}"
            if noise is not None:
                both = [e for e in late if e in noise]
                spread = sum(abs(noise[e][loss] - ref[e][loss]) for e in both) / max(len(both), 1)
                text += f" (seed spread {spread:.4f})"
            summary.append(text)
    return "\n".join(lines + summary) + "\n"


def plot(
    runs: list[tuple[str, dict[int, dict[str, float]]]],
    noise: dict[int, dict[str, float]] | None,
    out: Path,
    losses: tuple[str, ...] = ("post_mel", "duration", "pitch", "energy"),
) -> None:
    """One panel per loss: every run's dev curve over epochs; the seed run dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(losses), figsize=(4 * len(losses), 3.2))
    for ax, loss in zip(axes, losses):
        for label, r in runs:
            eps = sorted(r)
            ax.plot(eps, [r[e][loss] for e in eps], marker="o", ms=3, label=label)
        if noise is not None:
            eps = sorted(noise)
            ax.plot(eps, [noise[e][loss] for e in eps], "k--", lw=1, label="other seed")
        ax.set_title(f"dev {loss}")
        ax.set_xlabel("epoch (= utterances seen / corpus size)")
        ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, help="LABEL=path/history.jsonl")
    p.add_argument("--noise", help="history.jsonl of the reference recipe with another seed")
    p.add_argument("--out", required=True, help="output stem: writes <out>.md and <out>.png")
    args = p.parse_args(argv)
    runs = [(label, read_dev(path)) for label, path in map(_parse_run, args.run)]
    noise = read_dev(args.noise) if args.noise else None
    table = compare(runs, noise)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table)
    plot(runs, noise, out.with_suffix(".png"))
    print(table)
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
