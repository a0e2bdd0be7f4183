"""Explore silence thresholds on a sample of a spk before choosing a dataset version.

Trims and segments N train utterances (source and target) under every
combination of the given head threshold, tail threshold and minimum internal
pause, prints one table row per setting, and draws before/after mels so the
cut regions and segment boundaries can be checked by eye. Needs stage 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from vc_toolkit.bin import common
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout

EPILOG = """\
columns:
  head_s, tail_s   mean seconds cut at the start / end of a file
  kept             fraction of the audio left after head/tail trimming
  pause            fraction of the kept audio inside internal silences
  seg_src, seg_tgt mean segments per file; mismatch: pairs whose counts differ
  silent           files with nothing left; spk: '*' marks the spk's own setting

outputs (default exp/thresholds/<SPK>/):
  thresholds.tsv, thresholds.md   the table
  png/<utt>/h<H>_t<T>_m<M>.png    before/after mels (red: trimmed, grey: pauses, cyan: cuts)

example:
  vc-explore-thresholds --spk demo -n 8 --thresh_h -40 -50 -60 --thresh_t -50 -60 \\
      --min_silence_len 100 150 300
Then copy the chosen values into a new conf/spk/<SPK>_<N>.yaml (base: <SPK>).
"""


def _numbers(kind: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            msg = f"expected {kind.__name__} values, got {text!r}"
            raise argparse.ArgumentTypeError(msg) from None

    return parse


def _flat(groups: list[list] | None) -> list | None:
    return [v for g in groups for v in g] if groups else None


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-explore-thresholds", __doc__, EPILOG)
    p.add_argument("--spk", required=True, help="dataset version: conf/spk/<SPK>.yaml")
    p.add_argument(
        "-n", "--num_utts", "--num-utts", type=int, default=10, help="utterances to sample"
    )
    grid = [
        ("--thresh_h", float, "DB", "head thresholds, dBFS (-40 -50 or =-40,-50)"),
        ("--thresh_t", float, "DB", "tail and internal-pause thresholds, dBFS"),
        ("--min_silence_len", int, "MS", "shortest internal pauses, ms"),
    ]
    for flag, kind, metavar, text in grid:
        p.add_argument(
            flag,
            flag.replace("_", "-"),
            nargs="+",
            type=_numbers(kind),
            metavar=metavar,
            help=f"{text}; default: the spk's",
        )
    p.add_argument("--out", default=None, help="output folder (default: exp/thresholds/<SPK>)")
    p.add_argument("--seed", type=int, default=0, help="seed of the utterance sample")
    p.add_argument(
        "--no_plots", "--no-plots", action="store_true", help="skip the PNGs (table only)"
    )
    args = p.parse_args(argv)

    def run(a: argparse.Namespace, layout: Layout) -> int:
        from vc_toolkit.preprocess import explore

        if a.num_utts < 1:
            raise UserError(f"--num_utts must be >= 1, got {a.num_utts}")
        rows = explore.explore(
            a.spk,
            layout,
            num_utts=a.num_utts,
            thresh_h=_flat(a.thresh_h),
            thresh_t=_flat(a.thresh_t),
            min_silence_len=_flat(a.min_silence_len),
            out_dir=layout.resolve(a.out) if a.out else None,
            seed=a.seed,
            plots=not a.no_plots,
        )
        print(explore.format_table(rows))
        out = a.out or f"exp/thresholds/{a.spk}"
        print(f"table: {out}/thresholds.tsv, {out}/thresholds.md")
        if not a.no_plots:
            print(f"mels: {out}/png/<utt>/<setting>.png")
        return 0

    return common.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
