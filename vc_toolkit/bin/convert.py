"""Stage 3: convert speech with a trained tag (its dev/eval sets, or any wav) or a pack."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from vc_toolkit import log
from vc_toolkit.bin import common
from vc_toolkit.errors import UserError

logger = log.get("convert")

EPILOG = """\
modes:
  vc-convert --tag T [--checkpoint best]             dev/eval of the tag's spk (stage 3)
  vc-convert --tag T --input x.wav|DIR [--output D]  any audio, features as the spk's
  vc-convert --pack exp/T/pack/best --input DIR      the same from a pack (no corpus, no exp/)

speakers: stage 3 converts each dev/eval utterance with the speaker pair its spk defines.
--input runs convert with --src_speaker A --tgt_speaker B (names of the model's speaker
table): sources normalised with A's statistics, the model conditioned on A -> B, the
output denormalised with B's statistics. When the spk has one pair, that pair is the
default; otherwise both flags are required (the error lists the known speakers).

stage 3 writes exp/<T>/convert/<C>/{dev,eval}/<utt>.{wav,npz} (npz: log-mel, log-F0,
energy, durations), settings.json and rtf.json (real-time factors of the acoustic model
and the vocoder). Finished utterances are skipped unless --force; other settings or a
newer checkpoint redo them. Standalone runs write <output>/<name>.{wav,npz} and
<output>/rtf.json; a folder run reports unusable files and converts the rest.

text tags (model.type fastspeech2tts): stage 3 synthesises the dev/eval sentences into
the same layout; new text goes through vc-synthesize.

examples:
  vc-convert --tag demo_conv --checkpoint best
  vc-convert --tag demo_conv --input my_voice.wav --pitch_scale 1.2 --output out/
  vc-convert --pack exp/demo_conv/pack/best --input recordings/ --output out/
  vc-convert --tag demo_multi_pre --input my_voice.wav --src_speaker m3 --tgt_speaker f2
"""


def add_infer_options(p) -> None:
    """The inference controls that override the tag's ``infer`` block."""
    g = p.add_argument_group("inference controls (default: the tag's infer block)")
    g.add_argument("--pitch_scale", type=float, help="multiply the predicted F0 (Hz)")
    g.add_argument("--energy_scale", type=float, help="multiply the predicted energy")
    g.add_argument("--duration_scale", type=float, help="multiply the predicted durations")
    g.add_argument("--prosody", choices=["mean", "sample"], help="wGMM: mixture mean or a sample")
    g.add_argument("--temperature", type=float, help="wGMM sampling temperature")
    g.add_argument("--batch_size", type=int, help="utterances converted at once")
    g.add_argument("--vocoder", choices=["griffin_lim", "hifigan", "world"], help="vocoder")
    g.add_argument("--voc", help="hifigan: a vocoder trained here (exp/voc/<VOC>)")
    g.add_argument("--vocoder_checkpoint", help="hifigan: generator checkpoint (with --voc: name)")
    g.add_argument("--vocoder_config", help="hifigan: its config (default: next to it)")


def _overrides(args) -> dict:
    from vc_toolkit.infer.convert import OVERRIDES

    return {k: getattr(args, k) for k in OVERRIDES}


def _standalone(args, layout) -> int:
    from vc_toolkit.device import pick_device
    from vc_toolkit.infer.convert import Converter, resolve_infer, rtf_line
    from vc_toolkit.infer.pack import load_pack, load_tag_bundle
    from vc_toolkit.infer.source import convert_files, find_inputs
    from vc_toolkit.infer.speakers import choose_pair
    from vc_toolkit.io import atomic_write_text

    inputs, base = find_inputs(Path(args.input))
    if args.pack:
        bundle = load_pack(args.pack)
        infer = resolve_infer(bundle.cfg.infer, _overrides(args))
    else:
        bundle = load_tag_bundle(layout, args.tag, args.checkpoint)
        infer = resolve_infer(bundle.cfg.infer, _overrides(args), layout)
    if bundle.is_text:
        raise UserError(
            f"tag '{bundle.tag}' is a text-to-speech model: speak text with vc-synthesize "
            f'--tag {bundle.tag} --text "..."'
        )
    pair = choose_pair(
        bundle.pairs, bundle.speakers, bundle.stats,
        args.src_speaker, args.tgt_speaker, args.src_emotion, args.tgt_emotion,
    )  # fmt: skip
    out = Path(args.output)
    conv = Converter(bundle, infer, pick_device(args.device))
    if len(bundle.pairs) > 1 or pair not in bundle.pairs:
        logger.info("converting %s", pair.name)
    written, failed = convert_files(conv, inputs, base, out, args.verbose > 0, pair)
    if len(inputs) == 1 and failed:
        raise UserError(f"cannot convert {failed[0]}")
    for err in failed:
        logger.error("skipped %s", err)
    record = {
        **conv.rtf.as_dict(),
        "device": str(conv.device),
        "vocoder": infer.vocoder.type,
        "pair": pair.name,
    }
    if written:
        atomic_write_text(out / "rtf.json", json.dumps(record, indent=2) + "\n")
    print(f"{len(written)} of {len(inputs)} files converted into {out}/; {rtf_line(record)}")
    if failed:
        print(f"error: {len(failed)} unusable file(s) skipped (listed above)", file=sys.stderr)
        return 1
    return 0


def _main(args, layout) -> int:
    if bool(args.tag) == bool(args.pack):
        raise UserError("give exactly one of --tag and --pack")
    if args.pack and not args.input:
        raise UserError("--pack converts audio you give: add --input FILE|FOLDER")
    if args.input:
        return _standalone(args, layout)
    if args.output:
        raise UserError("--output is for --input runs; stage 3 writes exp/<TAG>/convert/")
    for flag in SPEAKER_FLAGS:
        if getattr(args, flag) is not None:
            raise UserError(
                f"--{flag} is for --input runs; stage 3 converts each pair its spk defines"
            )
    from vc_toolkit.infer import stage
    from vc_toolkit.infer.convert import rtf_line

    record = stage.run(
        layout, args.tag, args.checkpoint, _overrides(args), args.device, args.force,
        progress=args.verbose > 0,
    )  # fmt: skip
    if record.get("converted"):
        print(rtf_line(record))
    return 0


SPEAKER_FLAGS = ("src_speaker", "tgt_speaker", "src_emotion", "tgt_emotion")


def add_speaker_options(p) -> None:
    """The speaker pair of an ``--input`` run."""
    g = p.add_argument_group("speakers (--input runs; default: the spk's only pair)")
    g.add_argument("--src_speaker", help="who speaks the input (a speaker of the model)")
    g.add_argument("--tgt_speaker", help="whose voice to convert to")
    g.add_argument("--src_emotion", help="style of the input [neutral]")
    g.add_argument("--tgt_emotion", help="style to convert to [neutral]")


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-convert", __doc__, EPILOG)
    p.add_argument("--tag", help="trained experiment (exp/<TAG>)")
    p.add_argument("--pack", help="a pack directory made by vc-pack (instead of --tag)")
    p.add_argument("--checkpoint", default="best", help="best, latest or epochN [best]")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads [all cores]")
    p.add_argument("--force", action="store_true", help="convert finished utterances again")
    p.add_argument("--input", help="a wav file or a folder of audio files (standalone mode)")
    p.add_argument("--output", default=None, help="standalone output folder [converted]")
    add_speaker_options(p)
    add_infer_options(p)
    args = p.parse_args(argv)
    import torch  # after parsing, so --help stays fast

    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    if args.input and args.output is None:
        args.output = "converted"
    return common.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
