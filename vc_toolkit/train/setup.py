"""One set-up path for every training run (stage 2, fine-tuning, Optuna trials).

:func:`setup` checks the prerequisites (features of the spk built and current,
tag config unchanged since its first run), builds data loaders, model, loss,
optimizer and schedule, and restores state: from the tag's own checkpoint when
one exists (exact resume), else from the pretrain tag when configured.

What differs between speech input (VC) and text input (TTS) — the split reader, the
collate function, the sampler lengths, the model, checkpoint extras, baselines and dev
examples — is asked of the tag's :class:`~vc_toolkit.train.family.InputFamily`, chosen
once here (:func:`~vc_toolkit.train.family.input_family`).

The tag's speaker table (:mod:`vc_toolkit.train.speakers`) sizes the model's
conditioning tables, maps every utterance's labels to ids for the batches, and is
written to ``exp/<TAG>/speakers.json`` (and into every checkpoint).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vc_toolkit import checkpoint, log
from vc_toolkit.config import SpkConfig, TagConfig, load_spk, load_tag
from vc_toolkit.config.pin import check_frozen, freeze, read_fingerprint
from vc_toolkit.data.labels import SPEAKERS_FILE, SpeakerTable
from vc_toolkit.device import pick_device
from vc_toolkit.errors import UserError
from vc_toolkit.features.stats import load_stats
from vc_toolkit.models import loss_names, loss_sources
from vc_toolkit.models.loss import VCLoss
from vc_toolkit.paths import Layout, checkpoints_dir
from vc_toolkit.train import pretrain, speakers
from vc_toolkit.train.ddp import World
from vc_toolkit.train.family import SPEECH, InputFamily, input_family
from vc_toolkit.train.frame_sampler import build_sampler, describe
from vc_toolkit.train.sampler import PlannedBatchSampler
from vc_toolkit.train.scheduler import LRSchedule

logger = log.get("setup")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_best_metric(cfg: TagConfig) -> None:
    """``train.best_metric`` is a dev loss the tag's model logs.

    Raises:
        UserError: it is not (names what the model logs and which choice gives the loss).
    """
    metric, logged = cfg.train.best_metric, loss_names(cfg.model)
    if metric not in logged:
        needs = " or ".join(loss_sources(metric))
        raise UserError(
            f"train.best_metric '{metric}' is not logged by this model (it logs "
            f"{', '.join(logged)}); '{metric}' needs {needs}, or choose another best_metric"
        )


def ensure_features(spk: str, layout: Layout) -> dict:
    """The spk's stage-1 features exist and match its current config; returns its fingerprint."""
    dump = layout.dump(spk)
    fp = read_fingerprint(dump)
    state_file = dump / "features.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    run_it = f"./run.sh --stage 0 --stop_stage 1 --spk {spk}"
    if fp is None or not state.get("complete") or state.get("fingerprint") != fp["fingerprint"]:
        raise UserError(f"features of spk '{spk}' are missing or incomplete; run {run_it}")
    cfg = load_spk(spk, layout.root)
    conf = os.path.relpath(layout.spk_conf(spk), layout.root)
    check_frozen(dump / "config.yaml", cfg, conf, False, f"spk '{spk}'")
    return fp


@dataclass
class Experiment:
    """Everything the training loop needs, built by :func:`setup`."""

    tag: str
    cfg: TagConfig
    spk_cfg: SpkConfig
    layout: Layout
    exp_dir: Path
    device: torch.device
    world: World
    model: nn.Module
    criterion: VCLoss
    optimizer: torch.optim.Optimizer
    scheduler: LRSchedule
    train_set: Any
    dev_set: Any
    sampler: PlannedBatchSampler
    stats: dict
    fingerprint: dict
    resume: dict | None = None
    resumed_from: Path | None = None
    pretrain_report: pretrain.LoadReport | None = None
    lineage: list[dict] = field(default_factory=list)
    write: bool = True
    speakers: SpeakerTable = field(default_factory=lambda: SpeakerTable(["src", "tgt"]))
    family: InputFamily = SPEECH

    @property
    def core(self) -> nn.Module:
        """The model without its DDP wrapper."""
        return getattr(self.model, "module", self.model)

    def train_loader(self, generator: torch.Generator | None = None) -> torch.utils.data.DataLoader:
        return _loader(
            self.train_set,
            self.sampler,
            self.cfg.train.num_workers,
            self.device,
            self.speakers,
            self.family.collate,
            generator,
        )

    def dev_loader(self) -> torch.utils.data.DataLoader:
        lengths, extra = self.family.lengths(self.dev_set)
        sampler = build_sampler(self.cfg.train, lengths, extra, shuffle=False)
        return _loader(self.dev_set, sampler, 0, self.device, self.speakers, self.family.collate)


class _Items(torch.utils.data.Dataset):
    """The items of a split with their speaker/emotion ids (rows of ``table``).

    Raises:
        LabelError: an utterance names a speaker or emotion the table lacks.
    """

    def __init__(self, split: Any, table: SpeakerTable):
        self.split = split
        self.ids = [table.ids(split.labels[utt]) for utt in split.utt_ids]

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict:
        return {**self.split[i], **self.ids[i]}


def _loader(
    split, sampler, workers, device, table, collate_fn, generator=None
) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        _Items(split, table),
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        generator=generator,
    )


def freeze_run_config(
    exp_dir: Path, what: str, cfg: Any, conf_file: Path, layout: Layout, force: bool
) -> None:
    """Freeze a run's resolved config into ``exp_dir/config.yaml`` (tags and vocs alike).

    A config that differs from the frozen one is refused with the diff, or with
    ``force`` the run is wiped and starts over.

    Args:
        exp_dir: The run's folder.
        what: ``"tag 'x'"`` or ``"voc 'x'"``, for messages.
        cfg: The resolved config.
        conf_file: The ``conf/`` file it came from.
        layout: Recipe root.
        force: Accept a changed config (starts over).

    Raises:
        ConfigChangedError: the config changed and ``force`` is false.
    """
    frozen = exp_dir / "config.yaml"
    conf = os.path.relpath(conf_file, layout.root)
    diff = check_frozen(frozen, cfg, conf, force, what)
    if diff and force:
        logger.warning("--force: %s changed; starting it over:", what)
        for line in diff:
            logger.warning("    %s", line)
        _wipe(exp_dir)
    from vc_toolkit import __version__

    header = f"# resolved config of {what} (vc_toolkit {__version__}), frozen from {conf}"
    freeze(frozen, cfg, header=header)


def _wipe(exp_dir: Path) -> None:
    for child in exp_dir.iterdir():
        if child.name == "train.lock":
            continue
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _optimizer(cfg: TagConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = cfg.train.optimizer
    cls = torch.optim.AdamW if opt.type == "adamw" else torch.optim.Adam
    return cls(params, lr=0.0, betas=tuple(opt.betas), eps=opt.eps, weight_decay=opt.weight_decay)


def setup(
    tag: str,
    layout: Layout,
    device: str = "auto",
    force: bool = False,
    resume_from: str | None = None,
    world: World | None = None,
    cfg: TagConfig | None = None,
    exp_dir: Path | None = None,
    write: bool = True,
) -> Experiment:
    """Build an :class:`Experiment` for ``tag``.

    Args:
        tag: Experiment name (``conf/tag/<tag>.yaml``).
        layout: Recipe root.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        force: Accept a changed tag config (starts the tag over).
        resume_from: ``best`` or ``epochN`` instead of ``latest``.
        world: Data-parallel placement (single process by default).
        cfg: Use this resolved config instead of ``conf/tag`` (Optuna trials); not frozen.
        exp_dir: Output folder (default ``exp/<tag>``).
        write: Whether this process writes files (rank 0).

    Raises:
        UserError: missing features, changed configs, untrained pretrain, bad checkpoints.
    """
    world = world or World()
    from_conf = cfg is None
    cfg = cfg or load_tag(tag, layout.root)
    check_best_metric(cfg)
    exp_dir = exp_dir or layout.exp(tag)
    spk_cfg = load_spk(cfg.spk, layout.root)
    fp = ensure_features(cfg.spk, layout)
    dev = pick_device(device)

    torch.set_num_threads(cfg.train.num_threads or max(1, os.cpu_count() or 1))
    seed_everything(cfg.train.seed)
    dump = layout.dump(cfg.spk)
    family = input_family(cfg, dump)
    train_set, dev_set = (
        family.open_split(dump / "train", cfg),
        family.open_split(dump / "dev", cfg),
    )
    stats = load_stats(dump / "stats.npz")
    table = speakers.tag_table(cfg, layout)
    model = family.build_model(cfg, spk_cfg, dump, table).to(dev)
    if cfg.pretrain is not None:
        pretrain.apply_freeze(model, cfg.pretrain.freeze)
    if write:  # frozen only once the model builds: a failed first start leaves no config behind
        exp_dir.mkdir(parents=True, exist_ok=True)
        if from_conf:
            freeze_run_config(exp_dir, f"tag '{tag}'", cfg, layout.tag_conf(tag), layout, force)
    sampler = build_sampler(cfg.train, *family.lengths(train_set), world.rank, world.world_size)
    logger.info("batches: %s", describe(sampler))
    exp = Experiment(
        tag=tag,
        cfg=cfg,
        spk_cfg=spk_cfg,
        layout=layout,
        exp_dir=exp_dir,
        device=dev,
        world=world,
        model=model,
        criterion=VCLoss(cfg.loss, cfg.model),
        optimizer=_optimizer(cfg, model),
        scheduler=None,  # type: ignore[arg-type]
        train_set=train_set,
        dev_set=dev_set,
        sampler=sampler,
        stats=stats,
        fingerprint=fp,
        write=write,
        speakers=table,
        family=family,
    )
    exp.scheduler = LRSchedule(
        cfg.train.scheduler, _nominal_batch(cfg, sampler, world), cfg.model.hidden, exp.optimizer
    )
    _restore(exp, resume_from)
    if write:
        table.save(exp_dir / SPEAKERS_FILE)
        family.write_files(dump, exp_dir)
    if world.distributed:
        exp.model = nn.parallel.DistributedDataParallel(
            model, device_ids=[world.local_rank] if dev.type == "cuda" else None
        )
    return exp


def _nominal_batch(cfg: TagConfig, sampler: PlannedBatchSampler, world: World) -> int:
    """Global utterances of a typical step: ``batch_size`` × ranks, or a frame plan's mean."""
    if cfg.train.batch_frames is None:
        return cfg.train.batch_size * world.world_size
    sizes = sampler.step_sizes(0)
    return max(1, round(sum(sizes) / max(len(sizes), 1)))


def _restore(exp: Experiment, resume_from: str | None) -> None:
    folder = checkpoints_dir(exp.exp_dir)
    found = checkpoint.load_for_resume(folder, resume_from or "latest")
    if found is not None:
        state, path = found
        recorded = state.get("spk_fingerprint")
        if recorded and recorded != exp.fingerprint["fingerprint"]:
            raise UserError(
                f"features of spk '{exp.cfg.spk}' were rebuilt since tag '{exp.tag}' started "
                f"(fingerprint {recorded} -> {exp.fingerprint['fingerprint']}); "
                "start the tag over with --force"
            )
        speakers.check_resumed(state.get("speakers"), exp.speakers, exp.tag)
        exp.core.load_state_dict(state["model"])
        exp.optimizer.load_state_dict(state["optimizer"])
        exp.scheduler.load_state_dict(state["scheduler"])
        exp.resume, exp.resumed_from = state, path
        if resume_from and exp.write:
            aside = checkpoint.move_aside_after(folder, state["epoch"], state["step"])
            if aside:
                logger.info("moved later checkpoints of this run to %s", aside)
        logger.info(
            "resuming from %s (epoch %d, step %d)",
            exp.layout.shown(path),
            state["epoch"],
            state["step"],
        )
        return
    if resume_from:
        raise checkpoint.CheckpointError(
            f"no checkpoint '{resume_from}' to resume from in {folder}"
        )
    if exp.cfg.pretrain is None:
        if exp.write:
            exp.lineage = pretrain.write_lineage(
                exp.exp_dir, exp.tag, exp.cfg, None, exp.layout, exp.speakers
            )
        return
    _load_pretrain(exp)


def _load_pretrain(exp: Experiment) -> None:
    pcfg = exp.cfg.pretrain
    layout = exp.layout
    parent_cfg = pretrain.load_parent(exp.tag, pcfg.tag, layout)
    pretrain.check_compatible(exp.cfg.spk, parent_cfg.spk, layout)
    folder = layout.checkpoints(pcfg.tag)
    try:
        path = checkpoint.resolve(folder, pcfg.checkpoint)
    except checkpoint.CheckpointError as err:
        raise pretrain.PretrainError(
            f"pretrain tag '{pcfg.tag}' has no checkpoint '{pcfg.checkpoint}' ({err}); "
            f"train it first: ./run.sh --stage 2 --stop_stage 2 --tag {pcfg.tag} "
            "(or add --with_pretrain)"
        ) from None
    state = checkpoint.load(path)
    parent_table = speakers.parent_table(pcfg.tag, layout)
    cross, notes = pretrain.family_exclusions(parent_cfg.model, exp.cfg.model)
    report = pretrain.load_weights(
        exp.core,
        state["model"],
        pcfg.strict,
        [*pcfg.exclude, *cross],
        pcfg.freeze,
        speakers=(parent_table, exp.speakers),
    )
    report.family_excluded = [n for n in report.excluded if pretrain.matches(n, cross)]
    report.notes += notes
    exp.pretrain_report = report
    logger.info("initialised from pretrain tag '%s' (%s):", pcfg.tag, layout.shown(path))
    for line in report.lines():
        logger.info("    %s", line)
    if not pcfg.reset_optimizer:
        pretrain.check_optimizer_transfer(pcfg, report)
        exp.optimizer.load_state_dict(state["optimizer"])
        exp.scheduler.load_state_dict(state["scheduler"])
        logger.info(
            "    optimizer and schedule restored (step %d, lr %.3g)",
            exp.scheduler.steps,
            exp.scheduler.lr,
        )
    entry = pretrain.lineage_entry(pcfg.tag, layout, path, state, parent_cfg)
    if exp.write:
        exp.lineage = pretrain.write_lineage(
            exp.exp_dir, exp.tag, exp.cfg, entry, layout, exp.speakers, report.seeded_rows
        )
