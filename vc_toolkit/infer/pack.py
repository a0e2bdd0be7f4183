"""Bundles (a trained model with its configs and statistics) and self-contained packs.

A *pack* is a directory that converts speech with nothing else of the recipe
(``vc-pack --tag T --checkpoint C`` → ``exp/<T>/pack/<C>/``)::

    config.yaml    resolved tag config (model, infer and eval blocks)
    spk.yaml       frozen spk config (the feature analysis the model expects)
    stats.npz      normalisation statistics of the spk
    model.pt       weights only, with tag/checkpoint/epoch/step/spk fingerprint
    vocoder.yaml   the vocoder: type and settings; for hifigan the generator files,
                   copied into vocoder/ (paths relative to the pack) or referenced
    speakers.json  the tag's speaker/emotion table (embedding rows), as training wrote it
    pairs.tsv      the speaker pairs of the spk (the default pair when there is one)
    symbols.json   text models (``fastspeech2tts``) only: the spk's frozen symbol table;
                   the front-end settings are the ``text`` block of spk.yaml
    voicing.json   text models only: voiced share per symbol id (the voicing a WORLD
                   vocoder needs, :func:`vc_toolkit.infer.align.symbol_voicing`)
    README.txt     what it is and how to convert (or synthesise) with it

Packs made before speakers existed have neither file: they read as one-to-one
(speakers ``src`` and ``tgt``).

``vc-convert --pack DIR --input WAV|FOLDER`` (``vc-synthesize --pack DIR --text ...`` for
a text model) loads exactly these files (:func:`load_pack`).

A checkpoint ``untrained`` (:data:`UNTRAINED`) is the tag's model as initialised before
its first step (``train.seed``, no pretrain weights): stage 4 of a text tag scores it
as a floor.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vc_toolkit import __version__, log
from vc_toolkit import checkpoint as ckpt
from vc_toolkit.config import SpkConfig, TagConfig, build, to_dict
from vc_toolkit.config.pin import read_fingerprint
from vc_toolkit.config.resolve import dump_yaml, read_yaml
from vc_toolkit.config.tag import Vocoder
from vc_toolkit.data.labels import SPEAKERS_FILE, SpeakerTable
from vc_toolkit.errors import UserError
from vc_toolkit.features.stats import load_stats, save_stats
from vc_toolkit.infer.pack_readme import readme
from vc_toolkit.infer.speakers import (
    LEGACY_PAIR,
    PAIRS_FILE,
    SpeakerPair,
    read_pairs,
    spk_pairs,
    tag_table,
    write_pairs,
)
from vc_toolkit.io import atomic_write_text
from vc_toolkit.paths import Layout
from vc_toolkit.records import code_version, load_tag_config, not_trained
from vc_toolkit.vocoder import VOCODERS
from vc_toolkit.vocoder.base import locate, resolve_files

logger = log.get("pack")
PACK_FILES = ("config.yaml", "spk.yaml", "stats.npz", "model.pt", "vocoder.yaml")
SYMBOLS_FILE = "symbols.json"
VOICING_FILE = "voicing.json"
UNTRAINED = "untrained"
"""Checkpoint name of the freshly initialised model (the untrained floor)."""


def input_kind(model_type: str) -> str:
    """``speech`` or ``text``: what the model family ``model_type`` reads (model registry)."""
    from vc_toolkit.models import MODEL_FAMILIES

    return MODEL_FAMILIES.get(model_type).input_kind


@dataclass
class Bundle:
    """A trained model with the configs and statistics it was trained with.

    Attributes:
        tag (str): experiment name.
        cfg (TagConfig): resolved tag config (its ``infer`` block: the default controls).
        spk_cfg (SpkConfig): frozen spk config (feature analysis).
        stats (dict): normalisation statistics of the spk (``stats.npz``).
        weights (dict): model state dict.
        checkpoint (str): checkpoint name (``best``, ``latest``, ``epochN``).
        epoch (int | None): epoch of the checkpoint.
        step (int | None): optimizer step of the checkpoint.
        spk_fingerprint (str | None): fingerprint of the features it was trained on.
        origin (str): where it was loaded from (for messages and records).
        speakers (SpeakerTable): the model's speaker/emotion table (``exp/<TAG>/speakers.json``;
            one-to-one ``src``/``tgt`` when the tag has none).
        pairs (list[SpeakerPair]): the speaker pairs of the spk, sorted.
        symbols (dict | None): text models: the frozen symbol table (JSON of
            ``symbols.json``, as the checkpoint carries it); None for speech models.
        voicing (list[float] | None): text models: voiced share per symbol id, for a
            vocoder that needs F0 (None: not computed).
    """

    tag: str
    cfg: TagConfig
    spk_cfg: SpkConfig
    stats: dict
    weights: dict
    checkpoint: str
    epoch: int | None = None
    step: int | None = None
    spk_fingerprint: str | None = None
    origin: str = ""
    speakers: SpeakerTable = field(default_factory=lambda: SpeakerTable(["src", "tgt"]))
    pairs: list[SpeakerPair] = field(default_factory=lambda: [LEGACY_PAIR])
    symbols: dict | None = None
    voicing: list[float] | None = None

    @property
    def is_text(self) -> bool:
        """Whether the model reads text (a TTS model) rather than speech."""
        return input_kind(self.cfg.model.type) == "text"

    @property
    def vocab_size(self) -> int | None:
        """Symbols of the table including padding (text models), else None."""
        return len(self.symbols["symbols"]) if self.symbols else None

    def identity(self) -> dict:
        """What identifies the weights: tag, checkpoint, epoch, step, spk fingerprint."""
        keys = ("tag", "checkpoint", "epoch", "step", "spk_fingerprint")
        return {k: getattr(self, k) for k in keys}


def load_tag_bundle(layout: Layout, tag: str, checkpoint: str = "best") -> Bundle:
    """The :class:`Bundle` of a trained tag.

    Raises:
        UserError: unknown tag (lists the tags that exist), untrained tag (gives the
            command), unknown checkpoint (lists the ones that exist), missing or rebuilt
            features of its spk.
    """
    cfg = load_tag_config(layout, tag)
    folder = layout.checkpoints(tag)
    if checkpoint == UNTRAINED:
        path, state = folder / f"{UNTRAINED}.pt", {"epoch": 0, "step": 0}
    else:
        if not ckpt.available(folder):
            raise not_trained(tag)
        path = ckpt.resolve(folder, checkpoint)
        state = ckpt.load(path)
    dump = layout.dump(cfg.spk)
    stage1 = f"./run.sh --stage 0 --stop_stage 1 --spk {cfg.spk}"
    if not (dump / "config.yaml").is_file() or not (dump / "stats.npz").is_file():
        raise UserError(f"features of spk '{cfg.spk}' are missing in {dump}; run {stage1}")
    spk_cfg = build(SpkConfig, read_yaml(dump / "config.yaml"), where=str(dump / "config.yaml"))
    pairs = spk_pairs(dump)
    current = (read_fingerprint(dump) or {}).get("fingerprint")
    recorded = current if checkpoint == UNTRAINED else state.get("spk_fingerprint")
    if recorded and current and recorded != current:
        raise UserError(
            f"features of spk '{cfg.spk}' were rebuilt since tag '{tag}' was trained "
            f"(fingerprint {recorded} -> {current}); its statistics no longer match the model: "
            f"retrain with ./run.sh --stage 2 --stop_stage 2 --tag {tag} --force"
        )
    symbols = state.get("symbols")
    if symbols is None and input_kind(cfg.model.type) == "text":
        symbols = _read_symbols(layout.exp(tag) / SYMBOLS_FILE, dump / SYMBOLS_FILE)
    bundle = Bundle(
        tag=tag,
        cfg=cfg,
        spk_cfg=spk_cfg,
        stats=load_stats(dump / "stats.npz"),
        weights={} if checkpoint == UNTRAINED else ckpt.weights_only(state),
        checkpoint=path.stem if path.parent == folder else str(path),
        epoch=state.get("epoch"),
        step=state.get("step"),
        spk_fingerprint=recorded,
        origin=str(path),
        speakers=_table(state, tag_table(layout.exp(tag) / SPEAKERS_FILE, pairs)),
        pairs=pairs,
        symbols=symbols,
    )
    if checkpoint == UNTRAINED:
        bundle.weights = untrained_weights(bundle)
    return bundle


def untrained_weights(bundle: Bundle) -> dict:
    """The weights of the bundle's model as built before training (seed ``train.seed``)."""
    import torch

    from vc_toolkit.models import build_model

    spk = bundle.spk_cfg
    torch.manual_seed(bundle.cfg.train.seed)
    model = build_model(
        bundle.cfg.model,
        spk.feats.mel.n_mels,
        spk.reduction_factor,
        speakers=bundle.speakers,
        vocab_size=bundle.vocab_size,
    )
    return model.state_dict()


def _read_symbols(*paths: Path) -> dict:
    """The first symbol table (JSON) of ``paths`` that exists.

    Raises:
        UserError: none exists (stage 1 of the text spk makes it).
    """
    for path in paths:
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    raise UserError(
        f"no symbol table ({' or '.join(map(str, paths))}); run stage 1 of the text spk"
    )


def _table(state: dict, default: SpeakerTable) -> SpeakerTable:
    """The speaker table saved in a checkpoint (the rows of its weights), else ``default``."""
    saved = state.get("speakers")
    return SpeakerTable.from_dict(saved) if isinstance(saved, dict) else default


def _readable(folder: Path) -> None:
    """Give the pack the usual permissions (temporary files are created private)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def write_pack(bundle: Bundle, out: Path, copy_vocoder: bool = True) -> Path:
    """Write the pack of ``bundle`` to ``out`` (replacing an existing pack atomically).

    Args:
        bundle: What to pack.
        out: Destination directory, e.g. ``exp/<T>/pack/<C>``.
        copy_vocoder: For hifigan, copy the generator files into ``vocoder/``
            (otherwise ``vocoder.yaml`` references them by absolute path).

    Returns:
        ``out``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        header = f"# tag '{bundle.tag}' packed from {bundle.origin} (vc_toolkit {__version__})"
        dump_yaml(bundle.cfg, tmp / "config.yaml", header=header)
        spk_header = f"# frozen config of spk '{bundle.cfg.spk}'"
        dump_yaml(bundle.spk_cfg, tmp / "spk.yaml", header=spk_header)
        save_stats(tmp / "stats.npz", bundle.stats)
        bundle.speakers.save(tmp / SPEAKERS_FILE)
        write_pairs(tmp / PAIRS_FILE, bundle.pairs)
        if bundle.symbols is not None:
            text = json.dumps(bundle.symbols, ensure_ascii=False, indent=1)
            atomic_write_text(tmp / SYMBOLS_FILE, text + "\n")
        if bundle.voicing is not None:
            atomic_write_text(tmp / VOICING_FILE, json.dumps(bundle.voicing) + "\n")
        state = {"model": bundle.weights, **bundle.identity(), "code": code_version()}
        ckpt.save(tmp / "model.pt", state)
        voc_cfg = bundle.cfg.infer.vocoder
        voc = to_dict(voc_cfg)
        voc.update(VOCODERS.get(voc_cfg.type).export(voc_cfg, tmp / "vocoder", copy_vocoder))
        text = yaml.safe_dump(voc, sort_keys=False)
        note = "# vocoder of this pack; relative paths are inside the pack\n"
        atomic_write_text(tmp / "vocoder.yaml", note + text)
        atomic_write_text(tmp / "README.txt", readme(bundle, str(out), voc))
        _readable(tmp)
        old = out.with_name(f".{out.name}.old-{os.getpid()}") if out.exists() else None
        if old is not None:
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def pack_tag(layout: Layout, tag: str, checkpoint: str = "best", copy_vocoder: bool = True) -> Path:
    """Pack checkpoint ``checkpoint`` of ``tag`` into ``exp/<tag>/pack/<checkpoint>/``."""
    bundle = load_tag_bundle(layout, tag, checkpoint)
    locate(bundle.cfg.infer.vocoder, layout)
    if bundle.is_text:
        from vc_toolkit.infer.align import tag_voicing

        bundle.voicing = tag_voicing(layout, bundle)
    return write_pack(bundle, layout.pack_dir(tag, bundle.checkpoint), copy_vocoder)


def archive_pack(folder: Path) -> Path:
    """``<folder>.tar.gz`` of a pack (one file to hand over; :func:`load_pack` reads it)."""
    out = folder.with_name(folder.name + ".tar.gz")
    tmp = folder.with_name(f".{folder.name}.tar.gz.{os.getpid()}")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    os.replace(tmp, out)
    return out


def _unpack(archive: Path) -> Path:
    """Extract a pack archive into a temporary folder; the pack folder inside it."""
    target = Path(tempfile.mkdtemp(prefix="vc-pack-"))
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
    inside = [p for p in target.iterdir() if p.is_dir()]
    if len(inside) != 1:
        raise UserError(f"{archive} does not hold one pack folder; make it with vc-pack --tar")
    return inside[0]


def load_pack(folder: str | Path) -> Bundle:
    """The :class:`Bundle` stored in a pack directory (or a ``.tar.gz`` of one).

    Raises:
        UserError: the folder is missing or lacks a pack file.
    """
    folder = Path(folder)
    if folder.is_file() and folder.name.endswith((".tar.gz", ".tgz")):
        folder = _unpack(folder)
    if not folder.is_dir():
        raise UserError(f"pack {folder} does not exist; make one with vc-pack --tag T")
    missing = [n for n in PACK_FILES if not (folder / n).is_file()]
    if missing:
        raise UserError(
            f"{folder} is not a vc_toolkit pack (no {', '.join(missing)}); "
            "make one with vc-pack --tag T --checkpoint C"
        )
    cfg = build(TagConfig, read_yaml(folder / "config.yaml"), where=str(folder / "config.yaml"))
    spk_cfg = build(SpkConfig, read_yaml(folder / "spk.yaml"), where=str(folder / "spk.yaml"))
    voc = build(Vocoder, read_yaml(folder / "vocoder.yaml"), where=str(folder / "vocoder.yaml"))
    resolve_files(voc, lambda value: Path(value) if Path(value).is_absolute() else folder / value)
    cfg.infer.vocoder = voc
    state = ckpt.load(folder / "model.pt")
    voicing = folder / VOICING_FILE
    return Bundle(
        tag=state.get("tag") or folder.parent.parent.name,
        cfg=cfg,
        spk_cfg=spk_cfg,
        stats=load_stats(folder / "stats.npz"),
        weights=ckpt.weights_only(state),
        checkpoint=state.get("checkpoint") or folder.name,
        epoch=state.get("epoch"),
        step=state.get("step"),
        spk_fingerprint=state.get("spk_fingerprint"),
        origin=str(folder),
        speakers=_table(state, SpeakerTable.load(folder / SPEAKERS_FILE)),
        pairs=read_pairs(folder / PAIRS_FILE),
        symbols=_read_symbols(folder / SYMBOLS_FILE)
        if input_kind(cfg.model.type) == "text"
        else None,
        voicing=json.loads(voicing.read_text()) if voicing.is_file() else None,
    )
