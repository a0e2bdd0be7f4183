"""Stage 1: extract features of a dataset version (spk) into dump/<SPK>/."""

from __future__ import annotations

import sys

from vc_toolkit.bin import common

EPILOG = """\
per pair: trim silence (pydub semantics), log-mel + log-F0/voicing + log energy,
DTW durations at the reduction factor, sentence segments; then corpus outlier
filtering, train-split statistics and packed, normalised features.

outputs (dump/<SPK>/):
  {train,dev,eval}/   packed features + manifest.tsv
  stats.npz           normalisation statistics (train split only)
  report.tsv          every pair: kept or dropped, with the reason
  summary.json        kept/dropped per reason, hours, trimmed seconds, speed
  raw/                per-pair cache (an interrupted run resumes from it)

text spks: per recording the same features (no DTW, no source side) plus token ids
from the spk's text front-end; dump/<SPK>/symbols.json holds the symbol table and
{train,dev,eval}/ the packed text dump (vc_toolkit.data.text_dump).

example:
  vc-preprocess --spk demo --nj 2
"""


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-preprocess", __doc__, EPILOG)
    p.add_argument("--spk", required=True, help="dataset version: conf/spk/<SPK>.yaml")
    p.add_argument("--nj", type=int, default=2, help="worker processes")
    p.add_argument(
        "--force",
        action="store_true",
        help="rebuild from scratch; accept a changed spk config or changed input files",
    )
    args = p.parse_args(argv)

    def _main(a, layout):
        from vc_toolkit.preprocess import stage as preprocess

        preprocess.run(a.spk, layout, nj=a.nj, force=a.force)

    return common.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
