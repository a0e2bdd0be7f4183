"""Write a trained TTS tag's learned durations (its aligner's MAS) into the spk's dump."""

from __future__ import annotations

import sys

from vc_toolkit.bin import common

EPILOG = """\
The durations of every sentence (reduced frames per token, summing exactly to its
frames) go to dump/<SPK>/<split>/durations/<TAG>.npy. A later tag trains on them
instead of learning its own with model.text.durations: <TAG>.

examples:
  vc-align --tag demo_tts
  vc-align --tag demo_tts --checkpoint latest --splits train dev
"""


def _main(args, layout) -> int:
    from vc_toolkit.train import align

    rows = align.run(
        args.tag,
        layout,
        checkpoint_name=args.checkpoint,
        splits=tuple(args.splits),
        device=args.device,
        batch_size=args.batch_size,
    )
    for row in rows:
        print(
            f"{row.split}: {row.utterances} utterances, {row.tokens} tokens, "
            f"{row.mean_duration:.2f} reduced frames per token -> {row.path}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-align", __doc__, EPILOG)
    p.add_argument("--tag", required=True, help="a trained fastspeech2tts tag")
    p.add_argument("--checkpoint", default="best", help="best, latest, epochN or a .pt file")
    p.add_argument(
        "--splits", nargs="+", default=list(("train", "dev", "eval")), help="splits to align"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--batch_size", type=int, default=16, help="sentences aligned at once")
    return common.run(_main, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
