"""Pack a trained tag into a self-contained directory that vc-convert --pack loads."""

from __future__ import annotations

import sys

from vc_toolkit.bin import common

EPILOG = """\
writes exp/<TAG>/pack/<CHECKPOINT>/: config.yaml, spk.yaml, stats.npz, model.pt
(weights only), vocoder.yaml (hifigan files copied into vocoder/ unless --link_vocoder),
speakers.json (the model's speaker table), pairs.tsv (the spk's speaker pairs) and
README.txt. Copy the folder anywhere and convert with it (a pack of several pairs
needs --src_speaker and --tgt_speaker):
  vc-convert --pack exp/demo_conv/pack/best --input speech.wav --output out/

examples:
  vc-pack --tag demo_conv
  vc-pack --tag demo_conv --checkpoint epoch40
  vc-pack --tag demo_conv_hifigan --tar      one file, vocoder included:
  vc-convert --pack exp/demo_conv_hifigan/pack/best.tar.gz --input speech.wav
"""


def _main(args, layout) -> int:
    from vc_toolkit.infer.pack import pack_tag

    out = pack_tag(layout, args.tag, args.checkpoint, copy_vocoder=not args.link_vocoder)
    print(f"packed tag {args.tag} ({args.checkpoint}) into {out}")
    if args.tar:
        from vc_toolkit.infer.pack import archive_pack

        out = archive_pack(out)
        print(f"archived as {out}")
    print(f"convert with: vc-convert --pack {out} --input FILE|FOLDER --output DIR")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-pack", __doc__, EPILOG)
    p.add_argument("--tag", required=True, help="trained experiment (exp/<TAG>)")
    p.add_argument("--checkpoint", default="best", help="best, latest or epochN [best]")
    p.add_argument("--tar", action="store_true", help="also write <pack>.tar.gz (one file)")
    p.add_argument(
        "--link_vocoder",
        action="store_true",
        help="hifigan: reference the generator files by path instead of copying them",
    )
    return common.run(_main, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
