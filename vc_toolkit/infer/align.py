"""The learned alignment of a text bundle on its spk's sentences (stage 4, alignment report).

:func:`aligned_durations` runs the aligner of a trained text model
(:meth:`FastSpeech2TTS.align`: soft alignment of the recording's reduced frames over the
tokens, then monotonic alignment search) on a text dump split and returns, per
utterance, the hard durations (reduced frames per token, summing to ``T // r``) and,
for the utterances asked for, the soft and hard alignment matrices (for figures).
``vc-align`` writes the same durations into the dump
(:mod:`vc_toolkit.train.align`); stage 4 uses them as the reference of the predicted
durations, and the alignment report draws the matrices.

:func:`symbol_voicing` turns the alignment of the train split into the voiced share of
each symbol, the voicing a WORLD vocoder gets for synthesised speech (the TTS model
predicts none); :func:`tag_voicing` caches it per checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Collection

import numpy as np
import torch

from vc_toolkit.data.text_batch import collate_text
from vc_toolkit.data.text_dump import TextDumpSplit
from vc_toolkit.infer.pack import Bundle
from vc_toolkit.io import atomic_write_text
from vc_toolkit.models import build_model
from vc_toolkit.paths import Layout, checkpoint_label
from vc_toolkit.records import read_json


def bundle_model(bundle: Bundle, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The bundle's model with its weights, in eval mode on ``device``."""
    spk = bundle.spk_cfg
    model = build_model(
        bundle.cfg.model,
        spk.feats.mel.n_mels,
        spk.reduction_factor,
        speakers=bundle.speakers,
        vocab_size=bundle.vocab_size,
    )
    model.load_state_dict(bundle.weights)
    return model.to(device).eval()


@torch.no_grad()
def aligned_durations(
    model: torch.nn.Module,
    bundle: Bundle,
    ds: TextDumpSplit,
    batch_size: int = 8,
    images: Collection[str] = (),
    only: Collection[str] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The aligner's durations of every utterance of ``ds``.

    Args:
        model: A text model (:func:`bundle_model`).
        bundle: Its bundle (speaker table for the conditioning ids).
        ds: A text dump split of the bundle's spk.
        batch_size: Sentences aligned at once (similar lengths together).
        images: Utterance ids whose alignment matrices to return.
        only: Align only these utterance ids (None: all).

    Returns:
        ``({utt: (N,) int64 durations}, {utt: (soft (Lt, N) log-probabilities, hard (Lt, N)
        0/1)})``, the matrices cropped to the utterance's reduced frames and tokens.
    """
    device = next(model.parameters()).device
    order = np.argsort(np.asarray(ds.tgt_frames), kind="stable")
    if only is not None:
        order = np.asarray([i for i in order if ds.utt_ids[i] in only], dtype=np.int64)
    durations: dict[str, np.ndarray] = {}
    attn: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    r = bundle.spk_cfg.reduction_factor
    for start in range(0, len(order), batch_size):
        idx = [int(i) for i in order[start : start + batch_size]]
        items = [{**ds[i], **bundle.speakers.ids(ds.labels[ds.utt_ids[i]])} for i in idx]
        for item in items:
            item.pop("duration", None)
        batch = collate_text(items).to(device)
        out = model.align(batch)
        found = out["duration"].cpu().numpy()
        for k, i in enumerate(idx):
            utt, n = ds.utt_ids[i], int(batch.token_lens[k])
            durations[utt] = found[k, :n].astype(np.int64)
            if utt in images:
                frames = int(batch.tgt_lens[k]) // r
                soft = out["log_attn"][k, :frames, :n].cpu().numpy()
                hard = out["attn_hard"][k, :frames, :n].cpu().numpy()
                attn[utt] = (soft, hard)
    return durations, attn


def symbol_voicing(model: torch.nn.Module, bundle: Bundle, ds: TextDumpSplit) -> list[float]:
    """Share of voiced frames per symbol id over the aligned sentences of ``ds``.

    Each token's frames (its aligner duration, ``r`` frames per reduced frame) count
    towards its symbol; the share is voiced frames / frames (the recording's ``tgt_vuv``).
    A symbol never aligned to a frame gets 0.5 ("unknown").

    Returns:
        (vocab,) shares in [0, 1], index = symbol id (0: padding).

    Example (two tokens of symbols 1 and 2 over four frames, r = 1)::

        durations [1, 3], vuv [0, 1, 1, 0]  ->  symbol 1: 0.0, symbol 2: 2/3
    """
    r = bundle.spk_cfg.reduction_factor
    durations, _ = aligned_durations(model, bundle, ds)
    voiced = np.zeros(bundle.vocab_size or 0, np.float64)
    frames = np.zeros_like(voiced)
    for i, utt in enumerate(ds.utt_ids):
        item = ds[i]
        edges = np.concatenate([[0], np.cumsum(r * durations[utt])])
        per_token = np.add.reduceat(np.append(item["tgt_vuv"] > 0.5, 0), edges[:-1])
        per_token = np.where(np.diff(edges) > 0, per_token, 0)
        np.add.at(voiced, item["tokens"], per_token)
        np.add.at(frames, item["tokens"], np.diff(edges))
    share = np.where(frames > 0, voiced / np.maximum(frames, 1), 0.5)
    return [float(x) for x in share]


def tag_voicing(layout: Layout, bundle: Bundle) -> list[float]:
    """:func:`symbol_voicing` of the bundle's model over its spk's train split.

    Cached in ``exp/<TAG>/voicing/<checkpoint>.json`` with the checkpoint's step and the
    spk fingerprint (a newer checkpoint or rebuilt features compute it again).

    Args:
        layout: Recipe root holding ``dump/<SPK>/train``.
        bundle: A text bundle of a tag of ``layout``.
    """
    key = f"{bundle.checkpoint}@{bundle.step}/{bundle.spk_fingerprint}"
    path = layout.exp(bundle.tag) / "voicing" / f"{checkpoint_label(bundle.checkpoint)}.json"
    cached = read_json(path) or {}
    if cached.get("key") == key and len(cached.get("voicing", [])) == bundle.vocab_size:
        return cached["voicing"]
    ds = TextDumpSplit(layout.dump(bundle.cfg.spk) / "train")
    share = symbol_voicing(bundle_model(bundle), bundle, ds)
    atomic_write_text(path, json.dumps({"key": key, "voicing": share}) + "\n")
    return share
