"""``vc-align``: write a trained TTS tag's learned durations into its spk's dump.

The aligner of a ``model.type: fastspeech2tts`` tag (:mod:`vc_toolkit.models.aligner`)
gives every sentence of the spk hard durations by monotonic alignment search, summing
exactly to its frame count. They go to ``dump/<SPK>/<split>/durations/<TAG>.npy``
(:func:`~vc_toolkit.data.text_dump.write_durations`), where a later tag reads them with
``model.text.durations: <TAG>`` and trains on fixed durations instead of its own aligner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vc_toolkit import checkpoint, log
from vc_toolkit.config import load_spk, load_tag
from vc_toolkit.data.labels import SPEAKERS_FILE, SpeakerTable
from vc_toolkit.device import pick_device
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout
from vc_toolkit.train.family import TEXT, input_family

logger = log.get("align")
SPLITS = ("train", "dev", "eval")


@dataclass
class SplitAlignment:
    """What :func:`run` wrote for one split."""

    split: str
    utterances: int
    tokens: int
    mean_duration: float
    path: str


def run(
    tag: str,
    layout: Layout,
    checkpoint_name: str = "best",
    splits: tuple[str, ...] = SPLITS,
    device: str = "cpu",
    batch_size: int = 16,
) -> list[SplitAlignment]:
    """Write the learned durations of tag ``tag`` for every split of its spk.

    Args:
        tag: A trained ``fastspeech2tts`` tag.
        layout: Recipe root.
        checkpoint_name: ``best``, ``latest``, ``epochN`` or a ``.pt`` path.
        splits: Splits to align (those missing from the dump are skipped).
        device: Where the aligner runs.
        batch_size: Sentences aligned at once.

    Returns:
        list[SplitAlignment]: one row per written split.

    Raises:
        UserError: not a TTS tag, untrained, or its spk has no text dump.
    """
    from vc_toolkit.data.text_dump import TextDumpSplit, write_durations

    cfg = load_tag(tag, layout.root)
    if cfg.model.type != TEXT.name:
        raise UserError(
            f"vc-align needs a fastspeech2tts tag (a learned aligner); tag '{tag}' is "
            f"{cfg.model.type}"
        )
    dump = layout.dump(cfg.spk)
    family = input_family(cfg, dump)
    try:
        path = checkpoint.resolve(layout.checkpoints(tag), checkpoint_name)
    except checkpoint.CheckpointError as err:
        raise UserError(
            f"tag '{tag}' has no checkpoint '{checkpoint_name}' ({err}); train it first: "
            f"./run.sh --stage 2 --stop_stage 2 --tag {tag}"
        ) from None
    state = checkpoint.load(path)
    table = SpeakerTable.load(layout.exp(tag) / SPEAKERS_FILE)
    dev = pick_device(device)
    model = family.build_model(cfg, load_spk(cfg.spk, layout.root), dump, table)
    model.load_state_dict(state["model"])
    model.to(dev).eval()
    logger.info("aligning spk '%s' with tag '%s' (%s)", cfg.spk, tag, layout.shown(path))
    rows = []
    for split in splits:
        split_dir = dump / split
        if not split_dir.is_dir():
            continue
        ds = TextDumpSplit(split_dir)
        found = _align_split(model, ds, table, family.collate, dev, batch_size)
        write_durations(split_dir, tag, found, ds)
        tokens = int(sum(len(d) for d in found.values()))
        mean = float(np.mean(np.concatenate(list(found.values())))) if tokens else 0.0
        out = split_dir / "durations" / f"{tag}.npy"
        rows.append(SplitAlignment(split, len(ds), tokens, mean, layout.shown(out)))
        logger.info(
            "%s: %d utterances, %d tokens, %.2f reduced frames per token -> %s",
            split,
            len(ds),
            tokens,
            mean,
            layout.shown(out),
        )
    return rows


@torch.no_grad()
def _align_split(model, ds, table, collate, device, batch_size) -> dict[str, np.ndarray]:
    """Durations (N,) per utterance id, in batches of similar length."""
    order = np.argsort(np.asarray(ds.tgt_frames), kind="stable")
    found: dict[str, np.ndarray] = {}
    for start in range(0, len(order), batch_size):
        idx = [int(i) for i in order[start : start + batch_size]]
        items = [{**ds[i], **table.ids(ds.labels[ds.utt_ids[i]])} for i in idx]
        for item in items:
            item.pop("duration", None)
        batch = collate(items).to(device)
        durations = model.align(batch)["duration"].cpu().numpy()
        for k, i in enumerate(idx):
            found[ds.utt_ids[i]] = durations[k, : int(batch.token_lens[k])]
    return found
