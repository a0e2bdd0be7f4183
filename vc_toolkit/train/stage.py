"""Train a tag from the command line: lock, pretrain chain, DDP world, set-up, loop."""

from __future__ import annotations

from vc_toolkit import log
from vc_toolkit.config import ConfigError, load_spk, load_tag
from vc_toolkit.device import pick_device
from vc_toolkit.lock import tag_lock
from vc_toolkit.paths import Layout
from vc_toolkit.train import ddp, pretrain
from vc_toolkit.train.loop import Trainer
from vc_toolkit.train.setup import setup

logger = log.get("train")


def run(
    tag: str,
    layout: Layout,
    device: str = "auto",
    force: bool = False,
    resume_from: str | None = None,
    with_pretrain: bool = False,
) -> dict:
    """Train ``tag`` (and, with ``with_pretrain``, its untrained ancestors first).

    Returns:
        The run summary (also in ``exp/<tag>/summary.json``).
    """
    cfg = load_tag(tag, layout.root)
    ancestors = pretrain.chain(tag, layout)  # raises on cycles
    if with_pretrain and cfg.pretrain is not None:
        for parent in ancestors:
            child_cfg_ckpt = _wanted_checkpoint(parent, ancestors, tag, layout)
            if not pretrain.is_trained(parent, layout, child_cfg_ckpt):
                logger.info("training pretrain ancestor '%s' first", parent)
                _train_one(parent, layout, device, False, None)
    return _train_one(tag, layout, device, force, resume_from)


def _wanted_checkpoint(parent: str, ancestors: list[str], tag: str, layout: Layout) -> str:
    """The checkpoint name the child of ``parent`` in the chain asks for."""
    order = [*ancestors, tag]
    child = order[order.index(parent) + 1]
    return load_tag(child, layout.root).pretrain.checkpoint


def _check_spk(tag: str, layout: Layout) -> None:
    """The tag's spk config exists and is valid (checked before anything is written).

    Raises:
        ConfigError: it is not; the message names the tag and its config file.
    """
    spk = load_tag(tag, layout.root).spk
    try:
        load_spk(spk, layout.root)
    except ConfigError as err:
        conf = layout.shown(layout.tag_conf(tag))
        raise ConfigError(f"spk of tag '{tag}' ({conf}): {err}") from None


def _train_one(tag: str, layout: Layout, device: str, force: bool, resume_from: str | None) -> dict:
    _check_spk(tag, layout)
    world = ddp.init_from_env(pick_device(device).type)
    try:
        if world.is_main:
            with tag_lock(layout.exp(tag) / "train.lock", f"tag '{tag}'"):
                exp = setup(tag, layout, device, force, resume_from, world=world)
                return Trainer(exp).run()
        exp = setup(tag, layout, device, False, resume_from, world=world, write=False)
        return Trainer(exp).run()
    finally:
        ddp.shutdown(world)
