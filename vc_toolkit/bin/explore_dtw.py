"""Compare DTW features on a spk: the alignment (durations) of each mel-band choice."""

from __future__ import annotations

import argparse
import sys

from vc_toolkit.bin import common
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout

EPILOG = """\
stage 1 takes the durations the model learns from a DTW between source and target;
feats.dtw.n_mels chooses what it aligns: the model's log-mel (null, 'all') or an
N-band log-mel that follows the spectral envelope rather than the harmonics. This
aligns sampled train pairs with each choice and prints, per choice, the relative
path cost, the share of source frames skipped (0 frames) or stretched (4+), how
ragged consecutive durations are, and how far the alignment moves from the first
choice. Set the winner in conf/spk/<SPK>.yaml (a new spk: it changes the features).

outputs (default exp/dtw/<SPK>/): dtw.tsv, dtw.md, png/<utt>.png (distance matrix
with the path, and the durations, per choice)

examples:
  vc-explore-dtw --spk demo                     the spk's choice against 20 bands
  vc-explore-dtw --spk demo --n_mels all 40 20 10 -n 20
"""


def _bands(text: str) -> int | None:
    if text.lower() in ("all", "null", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of bands or 'all', got {text!r}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-explore-dtw", __doc__, EPILOG)
    p.add_argument("--spk", required=True, help="dataset version: conf/spk/<SPK>.yaml")
    p.add_argument(
        "--n_mels",
        nargs="+",
        type=_bands,
        metavar="N|all",
        help="mel-band choices to compare (default: the spk's feats.dtw.n_mels and 20)",
    )
    p.add_argument("-n", "--num_utts", type=int, default=10, help="pairs to sample [10]")
    p.add_argument("--out", default=None, help="output folder (default: exp/dtw/<SPK>)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pair sample")
    p.add_argument("--no_plots", action="store_true", help="skip the PNGs (table only)")
    args = p.parse_args(argv)

    def run(a: argparse.Namespace, layout: Layout) -> int:
        from vc_toolkit.preprocess.explore_dtw import explore_dtw, format_table

        if a.num_utts < 1:
            raise UserError(f"--num_utts must be >= 1, got {a.num_utts}")
        out = layout.resolve(a.out) if a.out else None
        rows = explore_dtw(a.spk, layout, a.n_mels, a.num_utts, out, a.seed, not a.no_plots)
        print(format_table(rows))
        shown = a.out or f"exp/dtw/{a.spk}"
        print(
            f"table: {shown}/dtw.tsv, {shown}/dtw.md"
            + ("" if a.no_plots else f"; plots: {shown}/png/")
        )
        return 0

    return common.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
