"""Stage 3: convert normalised source features to target log-mels and waveforms.

A :class:`~vc_toolkit.infer.pack.Bundle` holds what a conversion needs (configs,
statistics, weights), from a trained tag or a pack (:mod:`vc_toolkit.infer.pack`).
A :class:`Converter` runs the acoustic model (:meth:`FastSpeech2VC.infer`) on batches of source
utterances, denormalises its outputs with the *target* statistics and
vocodes them, timing the acoustic model and the vocoder separately.

Speaker pairs: each item may carry its ``labels``
(:class:`~vc_toolkit.data.labels.Labels`); an item without them speaks the spk's only
pair. The model is conditioned on the ids of the pair in the bundle's speaker table
(``cond``), and each result is denormalised with the target statistics of its own
pair (:func:`~vc_toolkit.features.stats.pair_stats`: the target speaker's own
statistics with ``stats: per_speaker``). Items of different pairs in one call are run
pair by pair (the pitch/energy scales need one pair's statistics per batch).

Real-time factor: ``rtf = compute seconds / seconds of output audio``, for the
acoustic model and the vocoder apart (CUDA is synchronised before reading the
clock); below 1 is faster than real time.

Outputs per utterance (:func:`write_outputs`): ``<utt>.wav`` (16-bit PCM; a
waveform peaking above :data:`PEAK` is scaled down to it, not clipped, and the
gain is stored as ``wav_gain``) and ``<utt>.npz`` with ``mel`` (T, n_mels)
log-mel, ``lf0`` (T,) predicted log-F0 (continuous: the model predicts no voicing), ``energy`` (T,)
log energy, ``duration`` (Ls,) reduced target frames per reduced source frame, so
``T = r * duration.sum()`` and the wav has ``T * hop_length`` samples.

A vocoder that synthesises a given F0 (``uses_f0``: WORLD) gets the predicted F0
in Hz with a voicing the model does not predict: the *source* voiced mask carried
onto the output frames through the predicted durations, 0 Hz on the frames it
leaves unvoiced (:mod:`vc_toolkit.features.pitch`: ``output_voicing``,
``voiced_f0``). That F0 is stored as ``f0`` (T,) in the npz; vocoders without F0
get none and no ``f0`` is stored.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vc_toolkit import log
from vc_toolkit.config import ConfigError, SpkConfig, build, to_dict
from vc_toolkit.config.resolve import deep_merge
from vc_toolkit.config.tag import Infer
from vc_toolkit.data.batch import collate_sources
from vc_toolkit.data.labels import ID_KEYS, Labels
from vc_toolkit.features.pitch import output_voicing, voiced_f0
from vc_toolkit.features.stats import (
    denormalize_energy,
    denormalize_lf0,
    denormalize_mel,
    pair_stats,
)
from vc_toolkit.infer.pack import Bundle
from vc_toolkit.io import atomic_open
from vc_toolkit.models import build_model
from vc_toolkit.paths import Layout
from vc_toolkit.vocoder import VOCODERS, Vocoder, build_vocoder
from vc_toolkit.vocoder.base import locate

logger = log.get("convert")
PEAK = 0.99
"""Largest sample written: louder waveforms are scaled down (never clipped)."""
#: command-line inference controls and where they go in the ``infer`` block
_PLAIN = ("pitch_scale", "energy_scale", "duration_scale", "prosody", "temperature", "batch_size")
OVERRIDES = {
    **{k: (k,) for k in _PLAIN},
    "vocoder": ("vocoder", "type"),
    "voc": ("vocoder", "voc"),
    "vocoder_checkpoint": ("vocoder", "checkpoint"),
    "vocoder_config": ("vocoder", "config"),
}


def resolve_infer(
    base: Infer, overrides: dict | None = None, layout: Layout | None = None
) -> Infer:
    """The ``infer`` block with command-line overrides applied (``None`` values ignored).

    Args:
        base: The tag's ``infer`` block.
        overrides: Keys of :data:`OVERRIDES` (``pitch_scale``, ``vocoder``, ...).
        layout: Resolves a relative vocoder checkpoint/config against the recipe root.

    Raises:
        ConfigError: a value out of range or of the wrong type (one line).

    Example:
        >>> resolve_infer(Infer(), {"pitch_scale": 1.5, "vocoder": None}).pitch_scale
        1.5
    """
    data = to_dict(base)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in OVERRIDES:
            raise ConfigError(f"unknown inference control '{key}' (known: {', '.join(OVERRIDES)})")
        *parents, leaf = OVERRIDES[key]
        patch: dict = {leaf: value}
        for name in reversed(parents):
            patch = {name: patch}
        data = deep_merge(data, patch)
    infer = build(Infer, data, where="inference settings (tag infer block + command line)")
    for name in ("pitch_scale", "energy_scale"):
        if getattr(infer, name) <= 0:
            raise ConfigError(f"--{name} must be > 0, got {getattr(infer, name)}")
    voc = infer.vocoder
    if layout is not None:
        locate(voc, layout)
    for key, what in VOCODERS.get(voc.type).required.items():
        if not getattr(voc, key):
            raise ConfigError(f"--vocoder {voc.type} needs --vocoder_{key} ({what}) or --voc")
    return infer


@dataclass
class RTF:
    """Accumulated compute time and output duration (see the module docstring)."""

    acoustic_seconds: float = 0.0
    vocoder_seconds: float = 0.0
    feature_seconds: float = 0.0
    audio_seconds: float = 0.0
    utterances: int = 0

    def as_dict(self) -> dict:
        """Seconds, utterance count and ``acoustic_rtf``, ``vocoder_rtf``, ``total_rtf``."""
        audio = self.audio_seconds

        def ratio(x: float) -> float | None:
            return x / audio if audio > 0 else None

        out = {
            "acoustic_rtf": ratio(self.acoustic_seconds),
            "vocoder_rtf": ratio(self.vocoder_seconds),
            "total_rtf": ratio(self.acoustic_seconds + self.vocoder_seconds),
            "acoustic_seconds": self.acoustic_seconds,
            "vocoder_seconds": self.vocoder_seconds,
            "audio_seconds": audio,
            "utterances": self.utterances,
        }
        if self.feature_seconds:
            out["feature_seconds"] = self.feature_seconds
            out["feature_rtf"] = ratio(self.feature_seconds)
        return out


def rtf_line(record: dict) -> str:
    """One human line from an RTF record (:meth:`RTF.as_dict`, ``rtf.json``)."""
    if not record.get("acoustic_rtf"):
        return "no audio converted in this run"
    return (
        f"{record['utterances']} utterances, {record['audio_seconds']:.1f} s of audio: real-time "
        f"factor acoustic model {record['acoustic_rtf']:.4f}, vocoder {record['vocoder_rtf']:.4f} "
        f"(total {record['total_rtf']:.4f})"
    )


@contextlib.contextmanager
def _clock(device: torch.device, add) -> Iterator[None]:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    sync()
    start = time.perf_counter()
    try:
        yield
    finally:
        sync()
        add(time.perf_counter() - start)


class Converter:
    """Acoustic model + vocoder of a :class:`Bundle`, with timing.

    Args:
        bundle: The trained model and its configs.
        infer: Inference controls (default: the bundle's ``infer`` block).
        device: Where model and vocoder run.
        vocoder: A ready vocoder (default: built from ``infer.vocoder``).
    """

    def __init__(
        self,
        bundle: Bundle,
        infer: Infer | None = None,
        device: str | torch.device = "cpu",
        vocoder: Vocoder | None = None,
    ) -> None:
        self.bundle = bundle
        self.infer = infer or bundle.cfg.infer
        self.device = torch.device(device)
        spk = bundle.spk_cfg
        self.model = build_model(
            bundle.cfg.model,
            spk.feats.mel.n_mels,
            spk.reduction_factor,
            speakers=bundle.speakers,
            vocab_size=bundle.vocab_size,
        )
        self.model.load_state_dict(bundle.weights)
        self.model.to(self.device).eval()
        self.vocoder = vocoder or build_vocoder(self.infer.vocoder, spk, self.device)
        self.rtf = RTF()
        if self.infer.prosody == "sample":  # the same inputs in the same batches: same samples
            torch.manual_seed(bundle.cfg.train.seed)

    def labels(self, item: dict) -> Labels:
        """The labels of ``item``; without ``labels``, the spk's only pair.

        Raises:
            ValueError: the item has no labels and the spk has several pairs.
        """
        if item.get("labels") is not None:
            return item["labels"]
        pairs = self.bundle.pairs
        if len(pairs) != 1:
            raise ValueError(
                f"item {item.get('utt_id', '?')} has no labels and the model knows "
                f"{len(pairs)} speaker pairs; set item['labels']"
            )
        return pairs[0].labels(str(item.get("utt_id", "-")))

    def acoustic(self, items: list[dict]) -> list[dict]:
        """Normalised source items → per utterance ``mel`` (T, n_mels), ``lf0``, ``energy`` (T,)
        denormalised with the target statistics of the item's pair, ``duration`` (Ls,) int32,
        and the model's per-segment outputs (:attr:`FastSpeech2VC.segment_outputs`, e.g. wGMM
        ``prosody``). Items of several pairs are converted pair by pair, in input order."""
        groups: dict[tuple[str, str], list[int]] = {}
        for i, it in enumerate(items):
            lab = self.labels(it)
            groups.setdefault((lab.src_speaker, lab.tgt_speaker), []).append(i)
        results: list[dict | None] = [None] * len(items)
        for idx in groups.values():
            for i, res in zip(idx, self._acoustic([items[i] for i in idx]), strict=True):
                results[i] = res
        return results  # type: ignore[return-value]

    def _acoustic(self, items: list[dict]) -> list[dict]:
        """:meth:`acoustic` of items whose pairs share their speakers."""
        inf = self.infer
        labels = [self.labels(it) for it in items]
        st = pair_stats(self.bundle.stats, labels[0].src_speaker, labels[0].tgt_speaker)
        ids = [self.bundle.speakers.ids(lab) for lab in labels]

        def add(seconds: float) -> None:
            self.rtf.acoustic_seconds += seconds

        with _clock(self.device, add):
            with_ids = [{**it, **i} for it, i in zip(items, ids, strict=True)]
            x = {k: v.to(self.device) for k, v in collate_sources(with_ids).items()}
            cond = {k: x[k] for k in ID_KEYS}
            out = self.model.infer(
                x["src_mel"],
                x["src_lf0"],
                x["src_energy"],
                x["src_lens"],
                x["src_seg"],
                x["n_seg"],
                pitch_scale=inf.pitch_scale,
                energy_scale=inf.energy_scale,
                duration_scale=inf.duration_scale,
                prosody=inf.prosody,
                temperature=inf.temperature,
                stats=st,
                cond=cond,
            )
            out = {k: v.detach().cpu() for k, v in out.items()}
        results = []
        r = self.model.r
        for i, it in enumerate(items):
            t = int(out["tgt_lens"][i])
            ls = len(it["src_mel"]) // r
            res = {
                "mel": denormalize_mel(out["mel"][i, :t].numpy(), st, side="tgt"),
                "lf0": denormalize_lf0(out["pitch"][i, :t].numpy(), st, side="tgt"),
                "energy": denormalize_energy(out["energy"][i, :t].numpy(), st, side="tgt"),
                "duration": out["duration"][i, :ls].numpy().astype(np.int32),
            }
            for key in self.model.segment_outputs:  # per-segment choices of the model's parts
                res[key] = out[key][i, : len(it["src_seg"])].numpy()
            results.append(res)
        return results

    def vocode(self, results: list[dict], items: list[dict] | None = None) -> None:
        """Add ``wav`` (T * hop,) float32 to each result of :meth:`acoustic`.

        A vocoder that uses F0 also gets, and each result gains, ``f0`` (T,) float32 in Hz:
        the predicted log-F0 voiced where the source was (``output_voicing`` of the
        item's ``src_vuv``); a result that already holds ``f0`` keeps it.

        Args:
            results: From :meth:`acoustic`.
            items: The source items of ``results`` (same order), for their ``src_vuv``;
                needed only by a vocoder that uses F0, for results without ``f0``.

        Raises:
            ValueError: the vocoder uses F0 and a result has neither ``f0`` nor an item.
        """
        f0s = None
        if self.vocoder.uses_f0:
            for i, res in enumerate(results):
                if "f0" in res:
                    continue
                if items is None:
                    raise ValueError(
                        f"vocoder {self.infer.vocoder.type} needs F0 with voicing: pass the "
                        "source items (src_vuv) to vocode()"
                    )
                vuv = output_voicing(items[i]["src_vuv"], res["duration"], self.model.r)
                res["f0"] = voiced_f0(res["lf0"], vuv)
            f0s = [r["f0"] for r in results]

        def add(seconds: float) -> None:
            self.rtf.vocoder_seconds += seconds

        with _clock(self.device, add):
            wavs = self.vocoder.batch([r["mel"] for r in results], f0s)
        for res, wav in zip(results, wavs, strict=True):
            res["wav"] = wav
            self.rtf.audio_seconds += len(wav) / self.vocoder.sample_rate
            self.rtf.utterances += 1

    def __call__(self, items: list[dict]) -> list[dict]:
        """Acoustic model, then vocoder: :meth:`acoustic` results with ``wav`` added."""
        results = self.acoustic(items)
        self.vocode(results, items)
        return results


def write_outputs(out_dir: Path, name: str, result: dict, spk: SpkConfig) -> Path:
    """Write ``<name>.npz``, then ``<name>.wav``, into ``out_dir`` atomically; returns the wav."""
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in result.items() if k != "wav"}
    peak = float(np.abs(result["wav"]).max()) if len(result["wav"]) else 0.0
    arrays.update(
        wav_gain=np.float32(min(1.0, PEAK / peak) if peak > 0 else 1.0),
        sample_rate=np.int64(spk.sample_rate),
        hop_length=np.int64(spk.feats.mel.hop_length),
        reduction_factor=np.int64(spk.reduction_factor),
    )
    with atomic_open(out_dir / f"{name}.npz", "wb") as f:
        np.savez(f, **arrays)
    wav = np.asarray(result["wav"], dtype=np.float32) * arrays["wav_gain"]
    with atomic_open(out_dir / f"{name}.wav", "wb") as f:
        sf.write(f, wav, spk.sample_rate, format="WAV", subtype="PCM_16")
    return out_dir / f"{name}.wav"


def batches(items: list, lengths: list[int], size: int) -> list[list]:
    """Items in batches of ``size``, longest first (similar lengths share a batch).

    Example:
        >>> batches(["a", "b", "c"], [1, 3, 2], 2)
        [['b', 'c'], ['a']]
    """
    order = sorted(range(len(items)), key=lambda i: -lengths[i])
    return [[items[i] for i in order[k : k + size]] for k in range(0, len(order), size)]
