"""The ``README.txt`` of a pack: what it holds and how to convert (or synthesise) with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vc_toolkit import __version__

if TYPE_CHECKING:
    from vc_toolkit.infer.pack import Bundle


def readme(bundle: Bundle, name: str, voc: dict) -> str:
    """The text of ``README.txt`` for the pack of ``bundle`` written as ``name``."""
    cfg, spk = bundle.cfg, bundle.spk_cfg
    vocoder = voc["type"] + (f" ({voc['checkpoint']})" if voc.get("checkpoint") else "")
    title = "text-to-speech" if bundle.is_text else "voice-conversion"
    table = ", symbols.json (symbol table)" if bundle.symbols is not None else ""
    table += ", voicing.json (voiced share per symbol)" if bundle.voicing is not None else ""
    return f"""vc_toolkit {title} pack
================================

Tag          {bundle.tag}  ({cfg.note or "no note"})
Checkpoint   {bundle.checkpoint} (epoch {bundle.epoch}, step {bundle.step})
Spk          {cfg.spk}  ({spk.note or "no note"}), features fingerprint {bundle.spk_fingerprint}
Audio        {spk.sample_rate} Hz, hop {spk.feats.mel.hop_length}, {spk.feats.mel.n_mels} mel bins,
             reduction factor {spk.reduction_factor}
Vocoder      {vocoder}
Speakers     {_speakers_line(bundle)}
Made by      vc_toolkit {__version__}

{_usage(bundle, name)}
Files: config.yaml (resolved experiment config), spk.yaml (feature analysis),
stats.npz (normalisation statistics), model.pt (weights), vocoder.yaml,
speakers.json (speaker table of the model), pairs.tsv (speaker pairs of the spk){table}.
"""


def _usage(bundle: Bundle, name: str) -> str:
    where = f"PACK is this folder, wherever it was copied (it was written as {name})"
    if bundle.is_text:
        return f"""Synthesise sentences (no corpus or exp/ needed); {where}:

    vc-synthesize --pack PACK --text "A sentence in no corpus." --out synth/
    vc-synthesize --pack PACK --text_file sentences.txt --out synth/

Text goes through the spk's front-end (the text block of spk.yaml) and symbols.json;
a symbol the table lacks is an error naming it. Each sentence gives <name>.wav and
<name>.npz (log-mel, log-F0, energy, durations per token).
"""
    return f"""Convert a wav file or every audio file in a folder (no corpus or exp/ needed);
{where}:

    vc-convert --pack PACK --input speech.wav --output converted/
    vc-convert --pack PACK --input folder/ --output converted/ --pitch_scale 1.1

Input audio goes through the same loading, resampling, silence trimming and
feature analysis as the training data (spk.yaml), normalised with stats.npz.
Each input gives <name>.wav and <name>.npz (log-mel, log-F0, energy, durations).

{_pair_usage(bundle)}"""


def _speakers_line(bundle: Bundle) -> str:
    pairs = bundle.pairs
    shown = pairs[0].name if len(pairs) == 1 else f"{len(pairs)} pairs"
    return f"{', '.join(bundle.speakers.speakers)} ({shown})"


def _pair_usage(bundle: Bundle) -> str:
    if len(bundle.pairs) == 1:
        return f"Conversions speak the pair {bundle.pairs[0].name} of the spk.\n"
    p = bundle.pairs[0]
    return (
        f"The model knows {len(bundle.pairs)} speaker pairs: choose one, e.g.\n\n"
        f"    vc-convert --pack PACK --input speech.wav --src_speaker {p.src_speaker} "
        f"--tgt_speaker {p.tgt_speaker}\n"
    )
