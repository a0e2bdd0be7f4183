"""Text to speech: synthesise sentences with a trained text tag (fastspeech2tts) or its pack."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from vc_toolkit import log
from vc_toolkit.bin import common
from vc_toolkit.errors import UserError

logger = log.get("synthesize")

EPILOG = """\
input: --text "one sentence" or --text_file F (one sentence per line; empty lines and
lines starting with # are skipped). The text goes through the spk's front-end (its
frozen text block: espeak phonemes, characters, ...) and the symbol table the model was
trained with (dump/<SPK>/symbols.json, kept in every checkpoint and pack). A symbol the
table lacks stops the run before any audio is made, naming the symbols.

output (--out, default synthesized/): <name>.wav and <name>.npz per sentence (log-mel,
log-F0, energy, durations per token, token ids), names 0001, 0002, ... in input order
(--name for a single --text), and rtf.json (real-time factors of the acoustic model
and the vocoder). The vocoder is the tag's infer block, as stage 3 uses it. world gets
the predicted F0, voiced on the tokens whose symbol is mostly voiced in the spk's
recordings (measured with the tag's aligner on the train split; packs keep it).

stage 3 of a text tag (./run.sh --stage 3 --tag T, or vc-convert --tag T) synthesises the
spk's dev/eval sentences into exp/<T>/convert/<C>/{dev,eval}/ instead.

examples:
  vc-synthesize --tag demo_tts --text "The quick brown fox jumps over the lazy dog."
  vc-synthesize --tag demo_tts --text_file sentences.txt --out out/ --duration_scale 1.2
  vc-synthesize --pack exp/demo_tts/pack/best --text "Hello there." --name hello
  vc-synthesize --tag ljspeech_tts --checkpoint epoch40 --vocoder hifigan --voc lj_hifigan \\
      --text "Good morning."
"""


def _main(args, layout) -> int:
    if bool(args.tag) == bool(args.pack):
        raise UserError("give exactly one of --tag and --pack")
    if bool(args.text) == bool(args.text_file):
        raise UserError('give exactly one of --text "..." and --text_file FILE')
    if args.name and not args.text:
        raise UserError("--name names the one --text sentence; --text_file numbers its lines")
    if args.text_file:
        path = Path(args.text_file)
        if not path.is_file():
            raise UserError(f"--text_file {path} does not exist")
        from vc_toolkit.infer.synthesize import sentences

        texts = sentences(path.read_text(encoding="utf-8").splitlines())
        if not texts:
            raise UserError(f"--text_file {path} holds no sentence (one per line)")
    else:
        texts = [args.text]
    from vc_toolkit.bin.convert import _overrides
    from vc_toolkit.device import pick_device
    from vc_toolkit.infer.convert import resolve_infer, rtf_line
    from vc_toolkit.infer.pack import load_pack, load_tag_bundle
    from vc_toolkit.infer.synthesize import (
        Synthesizer,
        pick_speaker,
        prepare_voicing,
        synthesize_texts,
    )
    from vc_toolkit.io import atomic_write_text

    if args.pack:
        bundle = load_pack(args.pack)
        infer = resolve_infer(bundle.cfg.infer, _overrides(args))
    else:
        bundle = load_tag_bundle(layout, args.tag, args.checkpoint)
        infer = resolve_infer(bundle.cfg.infer, _overrides(args), layout)
        prepare_voicing(bundle, infer, layout)
    synth = Synthesizer(bundle, infer, pick_device(args.device))
    pair = pick_speaker(bundle.pairs, args.speaker)
    out = Path(args.out)
    names = [args.name] if args.name else None
    progress = len(texts) > 1 and args.verbose > 0
    written = synthesize_texts(synth, texts, out, names, pair, progress)
    record = {**synth.rtf.as_dict(), "device": str(synth.device), "vocoder": infer.vocoder.type}
    atomic_write_text(out / "rtf.json", json.dumps(record, indent=2) + "\n")
    shown = written[0] if len(written) == 1 else f"{out}/"
    print(f"{len(written)} sentence(s) synthesised into {shown}; {rtf_line(record)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from vc_toolkit.bin.convert import add_infer_options

    p = common.parser("vc-synthesize", __doc__, EPILOG)
    p.add_argument("--tag", help="trained text experiment (exp/<TAG>, model.type fastspeech2tts)")
    p.add_argument("--pack", help="a pack directory made by vc-pack (instead of --tag)")
    p.add_argument("--checkpoint", default="best", help="best, latest or epochN [best]")
    p.add_argument("--text", help="a sentence to speak")
    p.add_argument("--text_file", help="a UTF-8 file of sentences, one per line")
    p.add_argument("--name", help="file name of the one --text sentence [0001]")
    p.add_argument("--out", default="synthesized", help="output folder [synthesized]")
    p.add_argument("--speaker", help="voice of a multi-speaker model (a speaker of its spk)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads [all cores]")
    add_infer_options(p)
    args = p.parse_args(argv)
    import torch  # after parsing, so --help stays fast

    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    return common.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
