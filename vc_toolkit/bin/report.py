"""Experiment reports: leaderboard, diff of two tags, memo, loss curves, one utterance."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vc_toolkit.bin import common
from vc_toolkit.errors import UserError

EPILOG = """\
commands:
  leaderboard [--tags GLOB] [--sort COL] [--format table|md|csv] [--out DIR]
      one row per tag of exp/ (its speaker pairs, training, eval MCD/F0 beside the floors);
      --out also writes leaderboard.{txt,md,csv} + loss_curves.png
  diff A B      every difference: configs, spk and its files, lineage, speakers, code, results
  memo [--out FILE]             Markdown memo of all spk versions and tags (per-pair tables)
  plot --tags GLOB [--out FILE]  loss curves of the matching tags (PNG)
  utt --tag T --utt U [--checkpoint C] [--out FILE]   mels and F0 of one utterance (PNG)

examples:
  vc-report leaderboard --tags 'N2C_*' --sort mcd
  vc-report diff N2C_4 N2C_18
  vc-report memo --out exp/report/memo.md
  vc-report utt --tag demo_conv --utt harvard_001
"""


def _leaderboard(args, layout) -> None:
    from vc_toolkit.eval.report import leaderboard, render, write_leaderboard

    records = leaderboard(layout, args.tags, args.sort, args.reverse)
    if not records:
        shown = f" matching {', '.join(args.tags)}" if args.tags else ""
        print(f"no tags{shown} in {layout.root / 'exp'} yet; train one with ./run.sh --stage 2")
        return
    print(render(records, args.format), end="")
    if args.out:
        for path in write_leaderboard(records, Path(args.out)):
            print(f"wrote {path}", file=sys.stderr)


def _main(args, layout) -> int:
    cmd = args.command
    if cmd == "leaderboard":
        _leaderboard(args, layout)
    elif cmd == "diff":
        from vc_toolkit.eval.report_diff import tag_diff

        if len(args.names) != 2:
            raise UserError("vc-report diff needs two tags: vc-report diff A B")
        print("\n".join(tag_diff(layout, *args.names)))
    elif cmd == "memo":
        from vc_toolkit.eval.report_memo import memo
        from vc_toolkit.io import atomic_write_text

        text = memo(layout)
        if args.out:
            atomic_write_text(Path(args.out), text)
            print(f"wrote {args.out}", file=sys.stderr)
        else:
            print(text, end="")
    elif cmd == "plot":
        from vc_toolkit.eval.report import select_tags
        from vc_toolkit.eval.report_plots import loss_curves

        tags = select_tags(layout, args.tags)
        if not tags:
            raise UserError(f"no tags in exp/ match {', '.join(args.tags or ['*'])}")
        out = Path(args.out or layout.root / "exp" / "report" / "loss_curves.png")
        print(loss_curves([layout.exp(t) for t in tags], out))
    elif cmd == "utt":
        from vc_toolkit.eval.report_plots import utterance_figure

        if not args.tag or not args.utt:
            raise UserError("vc-report utt needs --tag T and --utt U")
        out = Path(args.out) if args.out else None
        print(utterance_figure(layout, args.tag, args.utt, args.checkpoint, out))
    return 0


def main(argv: list[str] | None = None) -> int:
    from vc_toolkit.eval.report import COLUMN_KEYS

    p = common.parser("vc-report", __doc__, EPILOG)
    p.add_argument("command", choices=["leaderboard", "diff", "memo", "plot", "utt"])
    p.add_argument("names", nargs="*", help="diff: the two tags")
    p.add_argument("--tags", nargs="+", help="tag globs (e.g. 'N2C_*'; comma-separated ok)")
    p.add_argument("--sort", default="tag", help=f"leaderboard column: {', '.join(COLUMN_KEYS)}")
    p.add_argument("--reverse", action="store_true", help="sort descending")
    p.add_argument("--format", choices=["table", "md", "csv"], default="table")
    p.add_argument("--out", help="leaderboard: folder; memo, plot, utt: file")
    p.add_argument("--tag", help="utt: the tag")
    p.add_argument("--utt", help="utt: the utterance id")
    p.add_argument("--checkpoint", default="best", help="utt: best, latest, epochN [best]")
    try:
        return common.run(_main, p.parse_intermixed_args(argv))
    except BrokenPipeError:  # output piped into e.g. head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
