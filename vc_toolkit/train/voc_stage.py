"""Train a vocoder from the command line (``vc-train-vocoder``, ``./run.sh --stage voc``).

One process per voc (a lock file), its pretrain voc trained first when asked,
data-parallel under torchrun like stage 2, then the shared training loop.
"""

from __future__ import annotations

from vc_toolkit import log
from vc_toolkit.config import load_voc
from vc_toolkit.device import pick_device
from vc_toolkit.lock import tag_lock
from vc_toolkit.paths import Layout, checkpoints_dir
from vc_toolkit.train import ddp
from vc_toolkit.train.voc_loop import VocoderTrainer
from vc_toolkit.train.voc_setup import setup

logger = log.get("voc")


def run(
    voc: str,
    layout: Layout,
    device: str = "auto",
    force: bool = False,
    resume_from: str | None = None,
    with_pretrain: bool = False,
    nj: int = 1,
) -> dict:
    """Train ``voc`` (and, with ``with_pretrain``, an untrained pretrain voc first).

    Returns:
        The run summary (also in ``exp/voc/<voc>/summary.json``).
    """
    cfg = load_voc(voc, layout.root)
    if with_pretrain and cfg.pretrain is not None:
        parent = cfg.pretrain.voc
        if not (
            checkpoints_dir(layout.voc_exp(parent)) / f"{cfg.pretrain.checkpoint}.pt"
        ).is_file():
            logger.info("training pretrain voc '%s' first", parent)
            run(parent, layout, device, False, None, True, nj)
    world = ddp.init_from_env(pick_device(device).type)
    try:
        if world.is_main:
            with tag_lock(layout.voc_exp(voc) / "train.lock", f"voc '{voc}'"):
                exp = setup(voc, layout, device, force, resume_from, world=world, nj=nj)
                return VocoderTrainer(exp).run()
        exp = setup(voc, layout, device, False, resume_from, world=world, write=False)
        return VocoderTrainer(exp).run()
    finally:
        ddp.shutdown(world)
