"""Stage 0: prepare the parallel lists of a dataset version (spk)."""

from __future__ import annotations

import sys

from vc_toolkit.bin import common
from vc_toolkit.prepare import stage as prepare

EPILOG = """\
outputs:
  data/<SPK>/{train,dev,eval}/{src,tgt}.scp   utt_id and wav path per line
  data/<SPK>/report.txt                       unmatched / unreadable / excluded files
  dump/<SPK>/config.yaml, fingerprint.json    the frozen spk config
  text spks (a text: block): data/<SPK>/{train,dev,eval}/{tgt.scp,text} instead of the
  pairs, and data/<SPK>/phone_times/ when the corpus has them (demo_tts)

example:
  vc-prepare-data --spk demo
  vc-prepare-data --spk demo_tts
"""


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-prepare-data", __doc__, EPILOG)
    p.add_argument("--spk", required=True, help="dataset version: conf/spk/<SPK>.yaml")
    p.add_argument("--nj", type=int, default=2, help="parallel jobs (demo synthesis)")
    p.add_argument(
        "--force", action="store_true", help="redo even if prepared; accept a changed spk config"
    )
    args = p.parse_args(argv)
    return common.run(lambda a, lay: prepare.run(a.spk, lay, force=a.force, nj=a.nj) and 0, args)


if __name__ == "__main__":
    sys.exit(main())
