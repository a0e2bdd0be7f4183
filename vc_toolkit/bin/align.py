"""Write a trained TTS tag's learned durations (its aligner's MAS) into the spk's dump."""

from __future__ import annotations

import sys

from vc_toolkit.bin import common

EPILOG = """\
The durations of every sentence (reduced frames per token, summing exactly to its
frames) go to dump/<SPK>/<split>/durations/<TAG>.npy. A later tag trains on them
instead of learning its own with model.text.durations: <TAG>.

alignment report (exp/<TAG>/align/<C>/): where data/<SPK>/phone_times/<utt>.tsv exist
(espeak-ng's own phoneme timings, written by the demo_tts corpus), the absolute
difference between each learned phoneme start and espeak-ng's (report.json: mean,
median, 90th percentile in ms; boundaries.tsv per utterance; boundary_errors.png), and
soft/hard alignment images of a few dev sentences (images/). Pause, word-boundary and
stress tokens are not compared (see vc_toolkit.eval.alignment).

examples:
  vc-align --tag demo_tts
  vc-align --tag demo_tts --checkpoint latest --splits train,dev
"""


def _main(args, layout) -> int:
    from vc_toolkit.eval.alignment import alignment_report
    from vc_toolkit.train import align

    splits = tuple(s for arg in args.splits for s in arg.split(",") if s)
    rows = align.run(
        args.tag,
        layout,
        checkpoint_name=args.checkpoint,
        splits=splits,
        device=args.device,
        batch_size=args.batch_size,
    )
    for row in rows:
        print(
            f"{row.split}: {row.utterances} utterances, {row.tokens} tokens, "
            f"{row.mean_duration:.2f} reduced frames per token -> {row.path}"
        )
    report = alignment_report(
        layout, args.tag, args.checkpoint, tuple(r.split for r in rows), args.images
    )
    o = report["overall"]
    if o["boundaries"]:
        print(
            f"phoneme starts vs espeak-ng: mean {o['mean_ms']:.1f} ms, median "
            f"{o['median_ms']:.1f} ms over {o['boundaries']} boundaries"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-align", __doc__, EPILOG)
    p.add_argument("--tag", required=True, help="a trained fastspeech2tts tag")
    p.add_argument("--checkpoint", default="best", help="best, latest, epochN or a .pt file")
    p.add_argument(
        "--splits",
        nargs="+",
        default=["train", "dev", "eval"],
        help="splits to align (space- or comma-separated) [train,dev,eval]",
    )
    p.add_argument("--images", type=int, default=4, help="alignment images of dev sentences [4]")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--batch_size", type=int, default=16, help="sentences aligned at once")
    return common.run(_main, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
