"""Stage 4: score converted speech (MCD, F0 RMSE, V/UV, duration) against the real target."""

from __future__ import annotations

import sys

from vc_toolkit.bin import common

EPILOG = """\
scores exp/<TAG>/convert/<C>/{dev,eval}/*.wav against the trimmed target recordings
(data/<SPK>/<split>/tgt.scp), the source recordings against the same targets as
the no-conversion floor, and the targets' own features through the conversion's
vocoder as the vocoder floor (both cached in dump/<SPK>/eval_floor/). Missing files
are reported, counted and skipped.

outputs (exp/<TAG>/eval/<C>/):
  {dev,eval}/per_utt.tsv   one row per utterance: conv_*, floor_* and voc_* metrics
  summary.json             mean, std, n, 95% CI per metric and split; counts; RTFs;
                           per_pair: the same per speaker pair (src->tgt of the labels)
  pairs.tsv                per pair and split (dev, eval, overall): means of conv_*,
                           floor_* (that pair's own source floor) and voc_* metrics

text tags (fastspeech2tts): no source floor (no source speech); an untrained floor (the
tag's model before training, exp/<TAG>/convert/untrained/, untr_* columns) and the
duration error (dur_mae_frames, dur_mae_log) of the predicted durations against the
aligner's on the same sentences.

examples:
  vc-evaluate --tag demo_conv --checkpoint best --nj 2
  vc-report leaderboard
"""


def _main(args, layout) -> int:
    from vc_toolkit.eval import stage

    stage.run(layout, args.tag, args.checkpoint, args.nj, args.force, args.verbose > 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-evaluate", __doc__, EPILOG)
    p.add_argument("--tag", required=True, help="experiment (exp/<TAG>)")
    p.add_argument("--checkpoint", default="best", help="which conversion: best, latest, epochN")
    p.add_argument("--nj", type=int, default=2, help="worker processes [2]")
    p.add_argument("--force", action="store_true", help="score again even if up to date")
    args = p.parse_args(argv)
    if args.nj < 1:
        p.error(f"--nj must be >= 1, got {args.nj}")
    return common.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
