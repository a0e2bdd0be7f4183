"""Text to speech with a trained text tag (``model.type: fastspeech2tts``) or its pack.

A :class:`Synthesizer` is the :class:`~vc_toolkit.infer.convert.Converter` of a text
model: the same bundle, inference controls, vocoder, timing (real-time factors) and
output writing (:func:`~vc_toolkit.infer.convert.write_outputs`); only the acoustic
step differs. A sentence goes through the spk's front-end (the frozen ``text`` block
of its spk config, :func:`vc_toolkit.text.frontend.text_to_ids`) with the symbol table
the model was trained with (``Bundle.symbols``, the checkpoint's copy of
``dump/<SPK>/symbols.json``); its segments end after each pause token, as stage 1
cut them (:func:`vc_toolkit.text.symbols.segments`). The model
(:meth:`FastSpeech2TTS.infer`) predicts durations, pitch and energy, the log-mel is
denormalised with the speaker's statistics and vocoded.

Outputs per sentence, as conversion writes them: ``<name>.wav`` and ``<name>.npz``
with ``mel`` (T, n_mels), ``lf0`` and ``energy`` (T,), ``duration`` (N,) reduced frames
per token (``T = r * duration.sum()``) and ``tokens`` (N,) the symbol ids.

The model predicts no voicing. A vocoder that synthesises a given F0 (``world``) gets
the predicted F0 voiced on the tokens whose symbol is mostly voiced in the spk's
recordings (``Bundle.voicing``: voiced share per symbol over the aligned train
sentences, :func:`vc_toolkit.infer.align.symbol_voicing`; :func:`prepare_voicing`
computes it, packs keep it), stored as ``f0`` in the npz. Griffin-Lim and HiFi-GAN
vocode the mel alone.

Example:
    >>> sentences(["  First one. ", "", "# a comment", "Second"])
    ['First one.', 'Second']
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vc_toolkit.config.tag import Infer
from vc_toolkit.data.labels import ID_KEYS, Labels
from vc_toolkit.errors import UserError
from vc_toolkit.features.pitch import voiced_f0
from vc_toolkit.features.stats import (
    denormalize_energy,
    denormalize_lf0,
    denormalize_mel,
    pair_stats,
)
from vc_toolkit.infer.convert import Converter, _clock, batches, write_outputs
from vc_toolkit.infer.pack import Bundle
from vc_toolkit.infer.speakers import SpeakerPair
from vc_toolkit.text.frontend import text_to_ids
from vc_toolkit.text.symbols import SymbolTable, segments
from vc_toolkit.vocoder import VOCODERS, Vocoder


def symbol_table(bundle: Bundle) -> SymbolTable:
    """The symbol table a text bundle was trained with.

    Raises:
        UserError: the bundle is not a text model or carries no table.
    """
    if not bundle.is_text:
        raise UserError(
            f"tag '{bundle.tag}' is a {bundle.cfg.model.type} model (speech input): convert "
            "speech with vc-convert, or synthesise with a fastspeech2tts tag"
        )
    data = bundle.symbols
    if not data or not data.get("symbols"):
        raise UserError(f"{bundle.origin} carries no symbol table; retrain the tag")
    return SymbolTable(data["symbols"][1:], data.get("pauses", []), data.get("meta"))


def sentences(lines: Iterable[str]) -> list[str]:
    """The sentences of a text file: one per line, stripped; empty and ``#`` lines skipped."""
    out = [line.strip() for line in lines]
    return [s for s in out if s and not s.startswith("#")]


def pick_speaker(pairs: list[SpeakerPair], speaker: str | None) -> SpeakerPair:
    """The voice to speak with: the spk's only speaker, or ``speaker`` (``--speaker``).

    Raises:
        UserError: several speakers and none chosen, or an unknown name (lists the known).
    """
    known = sorted({p.tgt_speaker for p in pairs})
    if speaker is None:
        if len(pairs) == 1:
            return pairs[0]
        raise UserError(f"the model speaks {len(known)} voices; choose one with --speaker NAME "
                        f"({', '.join(known)})")  # fmt: skip
    found = [p for p in pairs if p.tgt_speaker == speaker]
    if not found:
        raise UserError(f"--speaker {speaker!r} is not a speaker of the model ({', '.join(known)})")
    return found[0]


class Synthesizer(Converter):
    """Acoustic model + vocoder of a text :class:`Bundle` (see the module docstring).

    Args:
        bundle: A trained text model (``bundle.is_text``) and its configs.
        infer: Inference controls (default: the bundle's ``infer`` block).
        device: Where model and vocoder run.
        vocoder: A ready vocoder (default: built from ``infer.vocoder``).

    Raises:
        UserError: a speech model, no symbol table, or a vocoder that needs F0.
    """

    def __init__(
        self,
        bundle: Bundle,
        infer: Infer | None = None,
        device: str | torch.device = "cpu",
        vocoder: Vocoder | None = None,
    ) -> None:
        self.table = symbol_table(bundle)
        voc_type = (infer or bundle.cfg.infer).vocoder.type
        if VOCODERS.get(voc_type).uses_f0 and bundle.voicing is None:
            raise UserError(
                f"vocoder {voc_type} needs the voiced share per symbol ({bundle.origin} has "
                "none: a pack made without it); use --vocoder griffin_lim or hifigan"
            )
        if bundle.spk_cfg.text is None:
            raise UserError(f"spk '{bundle.cfg.spk}' of {bundle.origin} has no text block")
        super().__init__(bundle, infer, device, vocoder)

    def item(self, text: str, name: str, pair: SpeakerPair | None = None) -> dict:
        """An input item of a new sentence: ``utt_id``, ``tokens`` (N,), ``tok_seg`` (K,).

        Raises:
            UserError: the sentence gives no symbol, or symbols the table lacks (named).
        """
        tokens = text_to_ids(text, self.bundle.spk_cfg.text, self.table)
        seg = np.asarray(segments(tokens, self.table.pause_ids), dtype=np.int64)
        item = {"utt_id": name, "tokens": tokens, "tok_seg": seg}
        if pair is not None:
            item["labels"] = pair.labels(name)
        return item

    def _acoustic(self, items: list[dict]) -> list[dict]:
        """Token items of one speaker → denormalised ``mel``, ``lf0``, ``energy`` (T,...),
        ``duration`` (N,) int32 per token, ``tokens`` and the per-segment outputs."""
        inf = self.infer
        labels: list[Labels] = [self.labels(it) for it in items]
        st = pair_stats(self.bundle.stats, labels[0].src_speaker, labels[0].tgt_speaker)
        ids = [self.bundle.speakers.ids(lab) for lab in labels]

        def add(seconds: float) -> None:
            self.rtf.acoustic_seconds += seconds

        with _clock(self.device, add):
            tokens, lens = _pad([it["tokens"] for it in items])
            seg, n_seg = _pad([it["tok_seg"] for it in items])
            cond = {k: torch.tensor([i[k] for i in ids], dtype=torch.long) for k in ID_KEYS}
            out = self.model.infer(
                tokens.to(self.device),
                lens.to(self.device),
                seg.to(self.device),
                n_seg.to(self.device),
                pitch_scale=inf.pitch_scale,
                energy_scale=inf.energy_scale,
                duration_scale=inf.duration_scale,
                prosody=inf.prosody,
                temperature=inf.temperature,
                stats=st,
                cond={k: v.to(self.device) for k, v in cond.items()},
            )
            out = {k: v.detach().cpu() for k, v in out.items()}
        results = []
        for i, it in enumerate(items):
            t, n = int(out["tgt_lens"][i]), len(it["tokens"])
            res = {
                "mel": denormalize_mel(out["mel"][i, :t].numpy(), st, side="tgt"),
                "lf0": denormalize_lf0(out["pitch"][i, :t].numpy(), st, side="tgt"),
                "energy": denormalize_energy(out["energy"][i, :t].numpy(), st, side="tgt"),
                "duration": out["duration"][i, :n].numpy().astype(np.int32),
                "tokens": np.asarray(it["tokens"], dtype=np.int32),
            }
            for key in self.model.segment_outputs:
                res[key] = out[key][i, : len(it["tok_seg"])].numpy()
            if self.vocoder.uses_f0:
                res["f0"] = voiced_f0(res["lf0"], self.voiced_frames(res))
            results.append(res)
        return results

    def voiced_frames(self, res: dict) -> np.ndarray:
        """(T,) voiced mask of a result: each token's frames voiced when its symbol is mostly
        voiced in the spk's recordings (``Bundle.voicing`` above 0.5)."""
        share = np.asarray(self.bundle.voicing, dtype=np.float64)
        frames = self.model.r * np.asarray(res["duration"], dtype=np.int64)
        return np.repeat(share[np.asarray(res["tokens"])] > 0.5, frames)


def prepare_voicing(bundle: Bundle, infer: Infer, layout) -> None:
    """Give a text bundle its per-symbol voicing when ``infer``'s vocoder needs F0 and the
    bundle has none (computed with its aligner over the spk's train split)."""
    if bundle.is_text and bundle.voicing is None and VOCODERS.get(infer.vocoder.type).uses_f0:
        from vc_toolkit.infer.align import tag_voicing

        bundle.voicing = tag_voicing(layout, bundle)


def _pad(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer rows → ((B, max len) long, 0-padded; (B,) lengths)."""
    lens = torch.tensor([len(r) for r in rows], dtype=torch.long)
    out = torch.zeros(len(rows), int(lens.max()), dtype=torch.long)
    for k, r in enumerate(rows):
        out[k, : len(r)] = torch.as_tensor(np.asarray(r), dtype=torch.long)
    return out, lens


def synthesize_texts(
    synth: Synthesizer,
    texts: list[str],
    out_dir: Path,
    names: list[str] | None = None,
    pair: SpeakerPair | None = None,
    progress: bool = False,
) -> list[Path]:
    """Synthesise ``texts`` into ``out_dir/<name>.{wav,npz}``; returns the wav paths.

    Every sentence is turned into tokens first, so an unknown symbol stops the run
    before any audio is made.

    Args:
        synth: The synthesiser.
        texts: Sentences.
        out_dir: Output folder.
        names: File names (default ``0001``, ``0002``, ... in input order).
        pair: The voice (default: the spk's only one).
        progress: Show a progress bar.

    Raises:
        UserError: a sentence gives no symbols or unknown ones (the first such sentence).
    """
    width = max(4, len(str(len(texts))))
    names = names or [f"{k + 1:0{width}d}" for k in range(len(texts))]
    items = [synth.item(t, n, pair) for t, n in zip(texts, names, strict=True)]
    written = []
    bar = tqdm(total=len(items), desc="synthesising", unit="sentence", disable=not progress)
    lengths = [len(it["tokens"]) for it in items]
    for batch in batches(items, lengths, synth.infer.batch_size):
        for item, res in zip(batch, synth(batch), strict=True):
            written.append(write_outputs(out_dir, item["utt_id"], res, synth.bundle.spk_cfg))
        bar.update(len(batch))
    bar.close()
    order = {n: k for k, n in enumerate(names)}
    return sorted(written, key=lambda p: order[p.stem])
