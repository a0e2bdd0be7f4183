"""Stage 3: convert the dev and eval utterances of a tag's spk with one of its checkpoints.

The model and its configs come from :func:`~vc_toolkit.infer.pack.load_tag_bundle`;
the acoustic model and vocoder run in a :class:`~vc_toolkit.infer.convert.Converter`.
Each utterance is converted with the speaker pair of its labels (``labels.tsv`` of the
dump split); batches hold one pair each.

A text tag (``model.type: fastspeech2tts``, :attr:`Bundle.is_text`) is decided here, once:
its dev/eval sentences (the token ids stage 1 froze, ``TextDumpSplit``) are synthesised by
a :class:`~vc_toolkit.infer.synthesize.Synthesizer` into the same layout, so stage 4 reads
both alike. Checkpoint ``untrained`` (:data:`~vc_toolkit.infer.pack.UNTRAINED`) converts
with the freshly initialised model (stage 4's untrained floor of a text tag).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm import tqdm

from vc_toolkit import log
from vc_toolkit.config.core import pinned_dict
from vc_toolkit.config.resolve import diff_configs
from vc_toolkit.config.tag import Infer
from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.data.text_dump import TextDumpSplit
from vc_toolkit.device import pick_device
from vc_toolkit.infer.convert import Converter, batches, resolve_infer, write_outputs
from vc_toolkit.infer.pack import Bundle, load_tag_bundle
from vc_toolkit.infer.synthesize import Synthesizer, prepare_voicing
from vc_toolkit.io import atomic_write_text
from vc_toolkit.paths import EVAL_SPLITS, Layout
from vc_toolkit.records import read_json

logger = log.get("convert")


def _settings(bundle: Bundle, infer: Infer) -> dict:
    # keys added to the schema later are left out while they hold their default, so
    # conversions made before they existed stay up to date
    data = pinned_dict(infer)
    data.pop("batch_size")
    return {**bundle.identity(), "infer": data}


def _done(out_dir: Path, utt: str) -> bool:
    return (out_dir / f"{utt}.wav").is_file() and (out_dir / f"{utt}.npz").is_file()


def _pair_batches(ds: DumpSplit | TextDumpSplit, todo: list[int], size: int) -> list[list[int]]:
    """Indices of ``todo`` in batches of one speaker pair each (pairs in sorted order),
    similar lengths together (source frames, or tokens of a text split)."""
    lengths = ds.token_counts if isinstance(ds, TextDumpSplit) else ds.src_frames
    by_pair: dict[str, list[int]] = {}
    for i in todo:
        by_pair.setdefault(ds.labels[ds.utt_ids[i]].pair, []).append(i)
    out = []
    for pair in sorted(by_pair):
        idx = by_pair[pair]
        out += batches(idx, [int(lengths[i]) for i in idx], size)
    return out


def run(
    layout: Layout,
    tag: str,
    checkpoint: str = "best",
    overrides: dict | None = None,
    device: str = "auto",
    force: bool = False,
    splits: tuple[str, ...] = EVAL_SPLITS,
    progress: bool = True,
    infer: Infer | None = None,
) -> dict:
    """Stage 3: convert (text tags: synthesise) the dev and eval utterances of ``tag``'s spk.

    Sources are the normalised features in ``dump/<SPK>/<split>``; outputs go to
    ``exp/<tag>/convert/<checkpoint>/<split>/<utt>.{wav,npz}``, with ``settings.json``
    (weights identity + inference controls) and ``rtf.json``. Finished utterances
    are skipped unless ``force``; when the checkpoint or the controls differ from
    those of the existing outputs, everything is converted again.

    ``infer`` (e.g. another conversion's controls) replaces the tag's block and ``overrides``.

    Returns:
        The RTF record (also in ``rtf.json``), with ``converted`` and ``skipped`` counts.
    """
    bundle = load_tag_bundle(layout, tag, checkpoint)
    if infer is None:
        infer = resolve_infer(bundle.cfg.infer, overrides, layout)
    root = layout.convert_dir(tag, bundle.checkpoint)
    settings = _settings(bundle, infer)
    previous = read_json(root / "settings.json")
    if previous is not None and previous != settings and not force:
        changes = diff_configs(previous, settings)
        logger.warning("%s was made with other settings; converting again:", layout.shown(root))
        for line in changes:
            logger.warning("    %s", line)
        force = True
    reader, kind = (TextDumpSplit, Synthesizer) if bundle.is_text else (DumpSplit, Converter)
    data = {s: reader(layout.dump(bundle.cfg.spk) / s) for s in splits}
    for ds in data.values():  # a speaker the model has no row for: stop before converting
        for lab in ds.labels.values():
            bundle.speakers.ids(lab)
    todo = {
        s: [i for i, u in enumerate(ds.utt_ids) if force or not _done(root / s, u)]
        for s, ds in data.items()
    }
    total = sum(len(ds) for ds in data.values())
    pending = sum(len(v) for v in todo.values())
    if pending == 0:
        logger.info(
            "%s: all %d utterances converted; nothing to do (--force redoes)",
            layout.shown(root),
            total,
        )
        return {**(read_json(root / "rtf.json") or {}), "converted": 0, "skipped": total}
    atomic_write_text(root / "settings.json", json.dumps(settings, indent=2) + "\n")
    dev = pick_device(device)
    prepare_voicing(bundle, infer, layout)
    conv = kind(bundle, infer, dev)
    verb = "synthesising" if bundle.is_text else "converting"
    logger.info(
        "tag %s, checkpoint %s (epoch %s): %s %d of %d utterances on %s, vocoder %s",
        tag, bundle.checkpoint, bundle.epoch, verb, pending, total, dev, infer.vocoder.type,
    )  # fmt: skip
    bar = tqdm(total=pending, desc=f"stage 3: {verb}", unit="utt", disable=not progress)
    for split, ds in data.items():
        for idx in _pair_batches(ds, todo[split], infer.batch_size):
            items = [{**ds[i], "labels": ds.labels[ds.utt_ids[i]]} for i in idx]
            for item, res in zip(items, conv(items), strict=True):
                write_outputs(root / split, item["utt_id"], res, bundle.spk_cfg)
            bar.update(len(idx))
    bar.close()
    record = {
        **conv.rtf.as_dict(),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "vocoder": infer.vocoder.type,
        "batch_size": infer.batch_size,
    }
    atomic_write_text(root / "rtf.json", json.dumps(record, indent=2) + "\n")
    logger.info("outputs: %s/{%s}/<utt>.{wav,npz}, rtf.json", layout.shown(root), ",".join(splits))
    return {**record, "converted": pending, "skipped": total - pending}
