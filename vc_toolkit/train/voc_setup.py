"""Set-up of a vocoder run (``conf/voc/<VOC>.yaml`` → ``exp/voc/<VOC>/``).

:func:`setup` checks that the voc's spk has its stage-1 features, freezes the
voc's resolved config (a changed one is refused unless ``force``), prepares the
(log-mel, audio) training pairs, builds the HiFi-GAN generator (weight-normed,
sized for the spk's mel bins and hop) and discriminators with their optimizers
and schedules, and restores state: from the voc's own checkpoint when one exists
(exact resume), else from ``pretrain.voc``.

Training pairs (:func:`prepare_pairs`):

* the spk's recordings of the chosen ``data.sides`` for the pairs stage 1 kept,
  through the audio front-end to the stage-1 log-mel (the features the acoustic
  model predicts), cached once per spk in ``dump/<SPK>/voc/<side>/<split>/``;
* with ``data.finetune: {tag, checkpoint}``, the tag's teacher-forced mels (its own
  durations, pitch and energy targets) paired with the target audio, cached in
  ``exp/voc/<VOC>/gta/<split>/`` — the usual way to remove the mismatch between
  real and predicted mels [Kong et al., "HiFi-GAN", NeurIPS 2020, Sec. 4.4].
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from vc_toolkit import checkpoint, log
from vc_toolkit.config import SpkConfig, VocConfig, load_spk, load_voc
from vc_toolkit.data.dump import DumpSplit
from vc_toolkit.data.labels import SPEAKERS_FILE, SpeakerTable
from vc_toolkit.data.vocoder import gt_aligned_pair, make_pair, save_pair
from vc_toolkit.device import pick_device
from vc_toolkit.errors import UserError
from vc_toolkit.features import frontend
from vc_toolkit.features.stats import denormalize_mel, load_stats
from vc_toolkit.io import atomic_write_text, read_scp
from vc_toolkit.parallel import parallel_map
from vc_toolkit.paths import Layout, checkpoints_dir
from vc_toolkit.records import load_tag_config
from vc_toolkit.train.ddp import World
from vc_toolkit.train.family import input_family
from vc_toolkit.train.setup import ensure_features, freeze_run_config, seed_everything
from vc_toolkit.vocoder.discriminators import HiFiGANDiscriminator, discriminator_config
from vc_toolkit.vocoder.hifigan_generator import Generator, generator_config, original_config

logger = log.get("voc")
SPLITS = ("train", "dev")
SIDES = {"target": ("tgt",), "source": ("src",), "both": ("src", "tgt")}


@dataclass
class VocExperiment:
    """Everything :class:`~vc_toolkit.train.voc_loop.VocoderTrainer` needs."""

    voc: str
    cfg: VocConfig
    spk_cfg: SpkConfig
    layout: Layout
    exp_dir: Path
    device: torch.device
    world: World
    generator: nn.Module
    discriminator: nn.Module
    optim_g: torch.optim.Optimizer
    optim_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.ExponentialLR
    sched_d: torch.optim.lr_scheduler.ExponentialLR
    pairs: dict[str, list[Path]]
    fingerprint: dict
    resume: dict | None = None
    lineage: list[dict] = field(default_factory=list)
    write: bool = True

    @property
    def core_generator(self) -> Generator:
        """The generator without its DDP wrapper."""
        return getattr(self.generator, "module", self.generator)

    @property
    def core_discriminator(self) -> HiFiGANDiscriminator:
        return getattr(self.discriminator, "module", self.discriminator)


# ---- training pairs --------------------------------------------------------------------
def _pair_job(job: tuple) -> str | None:
    """Write one recording's pair; the reason on failure (the file is then left out)."""
    wav, out, spk_cfg = job
    try:
        save_pair(out, make_pair(wav, spk_cfg))
    except frontend.UnusableAudioError as err:
        return str(err)
    return None


def _kept(layout: Layout, spk: str, split: str) -> list[str]:
    """The utterances stage 1 kept (of a speech or a text spk)."""
    from vc_toolkit.data.text_dump import TextDumpSplit, is_text_dump

    dump = layout.dump(spk)
    reader = TextDumpSplit if is_text_dump(dump) else DumpSplit
    return reader(dump / split).utt_ids


def _recording_pairs(layout: Layout, cfg: VocConfig, spk_cfg: SpkConfig) -> dict[str, list]:
    jobs, paths = [], {s: [] for s in SPLITS}
    for side in SIDES[cfg.data.sides]:
        for split in SPLITS:
            listed = read_scp(layout.data(cfg.spk) / split / f"{side}.scp")
            folder = layout.dump(cfg.spk) / "voc" / side / split
            for utt in _kept(layout, cfg.spk, split):
                out = folder / f"{utt}.npz"
                paths[split].append(out)
                if not out.is_file():
                    jobs.append((layout.resolve(listed[utt]), out, spk_cfg))
    return {"paths": paths, "jobs": jobs}


def _gta_pairs(layout: Layout, cfg: VocConfig, spk_cfg: SpkConfig, exp_dir: Path) -> dict:
    """Teacher-forced mels of ``data.finetune.tag`` with the target audio, written now."""
    ft = cfg.data.finetune
    tag_cfg = load_tag_config(layout, ft.tag)
    if tag_cfg.spk != cfg.spk:
        raise UserError(
            f"data.finetune.tag '{ft.tag}' was trained on spk '{tag_cfg.spk}', the voc uses "
            f"'{cfg.spk}'; fine-tune on the vocoder's own spk"
        )
    state = checkpoint.load(checkpoint.resolve(layout.checkpoints(ft.tag), ft.checkpoint))
    table = SpeakerTable.load(layout.exp(ft.tag) / SPEAKERS_FILE)
    dump = layout.dump(cfg.spk)
    family = input_family(tag_cfg, dump)  # a VC or a TTS tag: teacher-forced either way
    model = family.build_model(tag_cfg, spk_cfg, dump, table)
    model.load_state_dict(state["model"])
    model.eval()
    stats = load_stats(layout.dump(cfg.spk) / "stats.npz")
    hop = spk_cfg.feats.mel.hop_length
    paths = {s: [] for s in SPLITS}
    for split in SPLITS:
        listed = read_scp(layout.data(cfg.spk) / split / "tgt.scp")
        data = family.open_split(dump / split, tag_cfg)
        for i, utt in enumerate(data.utt_ids):
            out = exp_dir / "gta" / split / f"{utt}.npz"
            paths[split].append(out)
            if out.is_file():
                continue
            item = {**data[i], **table.ids(data.labels[utt])}  # with its speaker ids
            with torch.no_grad():
                mel = model(family.collate([item]))["post_mel"][0].numpy()
            audio = frontend.load_speech(layout.resolve(listed[utt]), spk_cfg).samples
            pair = gt_aligned_pair(denormalize_mel(mel, stats, side="tgt"), audio, hop)
            save_pair(out, pair)
    return paths


def prepare_pairs(
    layout: Layout, cfg: VocConfig, spk_cfg: SpkConfig, exp_dir: Path, nj: int = 1
) -> dict[str, list[Path]]:
    """The pair files of the train and dev splits, made where missing (see the module doc).

    Raises:
        UserError: no usable training pair, or a fine-tuning tag of another spk.
    """
    if cfg.data.finetune is not None:
        logger.info("teacher-forced mels of tag '%s' for fine-tuning", cfg.data.finetune.tag)
        return _gta_pairs(layout, cfg, spk_cfg, exp_dir)
    found = _recording_pairs(layout, cfg, spk_cfg)
    failed = [r for r in parallel_map(_pair_job, found["jobs"], nj, "vocoder pairs", "file") if r]
    for reason in failed:
        logger.warning("left out: %s", reason)
    paths = {s: [p for p in found["paths"][s] if p.is_file()] for s in SPLITS}
    if not paths["train"]:
        raise UserError(f"spk '{cfg.spk}' gave no usable vocoder training pair")
    return paths


# ---- models ------------------------------------------------------------------------------
def build_generator(cfg: VocConfig, spk_cfg: SpkConfig) -> Generator:
    """The voc's generator shape for the spk's mel bins and hop (weight norm not applied)."""
    mel = spk_cfg.feats.mel
    rates = tuple(cfg.generator.upsample_rates) if cfg.generator.upsample_rates else None
    shape = generator_config(
        cfg.generator.preset,
        mel.n_mels,
        mel.hop_length,
        rates,
        upsample_initial_channel=cfg.generator.channels,
    )
    return Generator(shape)


def generator_dir(exp_dir: Path) -> Path:
    """``exp/voc/<VOC>/generator``: the generator files (original HiFi-GAN form) and config."""
    return exp_dir / "generator"


def write_loader_config(folder: Path, generator: Generator, spk_cfg: SpkConfig) -> None:
    """``config.json`` beside the generator files, so the HiFi-GAN loader reads them."""
    shape = original_config(generator.cfg, spk_cfg.sample_rate, spk_cfg.feats.mel)
    atomic_write_text(folder / "config.json", json.dumps(shape, indent=2) + "\n")


def _optimizers(cfg: VocConfig, g: nn.Module, d: nn.Module):
    t = cfg.train
    make = functools.partial(torch.optim.AdamW, lr=t.lr, betas=tuple(t.betas))
    optim_g = make(g.parameters(), weight_decay=t.weight_decay)
    optim_d = make(d.parameters(), weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR
    return optim_g, optim_d, sched(optim_g, t.lr_decay), sched(optim_d, t.lr_decay)


def setup(
    voc: str,
    layout: Layout,
    device: str = "auto",
    force: bool = False,
    resume_from: str | None = None,
    world: World | None = None,
    write: bool = True,
    nj: int = 1,
) -> VocExperiment:
    """Build a :class:`VocExperiment` for ``voc`` (see the module docstring).

    Raises:
        UserError: missing features, a changed config, a bad pretrain voc or checkpoint.
    """
    world = world or World()
    cfg = load_voc(voc, layout.root)
    spk_cfg = load_spk(cfg.spk, layout.root)
    fp = ensure_features(cfg.spk, layout)
    exp_dir = layout.voc_exp(voc)
    dev = pick_device(device)
    if write:
        exp_dir.mkdir(parents=True, exist_ok=True)
        freeze_run_config(exp_dir, f"voc '{voc}'", cfg, layout.voc_conf(voc), layout, force)
    torch.set_num_threads(cfg.train.num_threads or max(1, os.cpu_count() or 1))
    pairs = prepare_pairs(layout, cfg, spk_cfg, exp_dir, nj) if write else _existing(exp_dir)
    seed_everything(cfg.train.seed)
    generator = build_generator(cfg, spk_cfg).init_weights().apply_weight_norm().to(dev)
    disc = HiFiGANDiscriminator(discriminator_config(cfg.discriminator.preset)).to(dev)
    exp = VocExperiment(
        voc, cfg, spk_cfg, layout, exp_dir, dev, world, generator, disc,
        *_optimizers(cfg, generator, disc), pairs=pairs, fingerprint=fp, write=write,
    )  # fmt: skip
    if write:
        write_loader_config(generator_dir(exp_dir), exp.core_generator, spk_cfg)
    _restore(exp, resume_from)
    if world.distributed:
        ids = [world.local_rank] if dev.type == "cuda" else None
        exp.generator = nn.parallel.DistributedDataParallel(generator, device_ids=ids)
        exp.discriminator = nn.parallel.DistributedDataParallel(disc, device_ids=ids)
    return exp


def _existing(exp_dir: Path) -> dict[str, list[Path]]:
    """Pair lists recorded by rank 0 (other ranks do not write)."""
    recorded = json.loads((exp_dir / "pairs.json").read_text())
    return {s: [Path(p) for p in recorded[s]] for s in SPLITS}


def load_states(exp: VocExperiment, state: dict, optimizers: bool = True) -> None:
    """Put a voc checkpoint's weights (and optimizer/schedule states) into ``exp``."""
    exp.core_generator.load_state_dict(state["generator"])
    exp.core_discriminator.load_state_dict(state["discriminator"])
    if optimizers:
        for name in ("optim_g", "optim_d", "sched_g", "sched_d"):
            getattr(exp, name).load_state_dict(state[name])


def _restore(exp: VocExperiment, resume_from: str | None) -> None:
    folder = checkpoints_dir(exp.exp_dir)
    if exp.write:
        recorded = {s: [str(p) for p in exp.pairs[s]] for s in SPLITS}
        atomic_write_text(exp.exp_dir / "pairs.json", json.dumps(recorded, indent=1) + "\n")
    found = checkpoint.load_for_resume(folder, resume_from or "latest", key="generator")
    if found is not None:
        state, path = found
        load_states(exp, state)
        exp.resume = state
        recorded = exp.exp_dir / "lineage.json"
        exp.lineage = json.loads(recorded.read_text()) if recorded.is_file() else []
        logger.info(
            "resuming from %s (epoch %d, step %d)",
            exp.layout.shown(path),
            state["epoch"],
            state["step"],
        )
        return
    if resume_from:
        raise checkpoint.CheckpointError(f"no checkpoint '{resume_from}' to resume from")
    lineage = [{"voc": exp.voc, "spk": exp.cfg.spk, "data": _data_text(exp.cfg)}]
    if exp.cfg.pretrain is not None:
        pre = exp.cfg.pretrain
        parent = checkpoints_dir(exp.layout.voc_exp(pre.voc))
        try:
            path = checkpoint.resolve(parent, pre.checkpoint)
        except checkpoint.CheckpointError as err:
            raise UserError(
                f"pretrain voc '{pre.voc}' has no checkpoint '{pre.checkpoint}' ({err}); train "
                f"it first: ./run.sh --stage voc --voc {pre.voc}"
            ) from None
        state = checkpoint.load(path, key="generator")
        load_states(exp, state, optimizers=False)
        logger.info("initialised from voc '%s' (%s)", pre.voc, exp.layout.shown(path))
        lineage.append({"voc": pre.voc, "checkpoint": str(path), "step": state.get("step")})
    exp.lineage = lineage
    if exp.write:
        atomic_write_text(exp.exp_dir / "lineage.json", json.dumps(lineage, indent=2) + "\n")


def _data_text(cfg: VocConfig) -> str:
    ft = cfg.data.finetune
    if ft is not None:
        return f"teacher-forced mels of tag {ft.tag} ({ft.checkpoint})"
    return f"{cfg.data.sides} recordings"
