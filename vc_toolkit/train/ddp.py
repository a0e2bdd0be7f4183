"""Data-parallel training: process-group set-up and the torchrun launcher.

``vc-train --ngpu N`` re-launches itself under ``torch.distributed.run``
(torchrun) with N processes per node (``--nnodes/--node_rank/--master_addr``
for several machines). Each process trains on its own shard of the batches
(see :class:`~vc_toolkit.train.sampler.GroupedBatchSampler`); gradients are
averaged by DDP; only rank 0 writes checkpoints, logs and TensorBoard. The
warmup schedule counts the *global* batch, ``batch_size * world_size``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process' place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_from_env(device_type: str) -> World:
    """Join the process group torchrun describes in the environment (no-op when alone)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return World()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    return World(rank=rank, world_size=world_size, local_rank=local_rank)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def torchrun_command(
    module: str,
    nproc: int,
    nnodes: int,
    node_rank: int,
    master_addr: str,
    master_port: int,
    argv: list[str],
) -> list[str]:
    """The command that runs ``python -m <module> argv`` (the caller's entry point) under
    torchrun, ``nproc`` processes on each of ``nnodes`` machines."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        f"--nnodes={nnodes}",
        f"--node_rank={node_rank}",
        f"--master_addr={master_addr}",
        f"--master_port={master_port}",
        "-m",
        module,
        *argv,
    ]
