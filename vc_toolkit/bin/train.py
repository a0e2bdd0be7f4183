"""Stage 2: train the experiment pinned in conf/tag/<TAG>.yaml."""

from __future__ import annotations

import os
import subprocess
import sys

from vc_toolkit.bin import common

EPILOG = """\
re-running a tag continues from its latest checkpoint (exactly: RNG, sampler and
schedule included); --resume_from best|epochN continues from another one (later
checkpoints are moved aside). A changed conf/tag file is refused with the diff
unless --force, which starts the tag over.

outputs (exp/<TAG>/):
  config.yaml        frozen resolved config
  checkpoints/       latest.pt, best.pt, epochN.pt
  tensorboard/       tensorboard --logdir exp/<TAG>/tensorboard
  train.log, history.jsonl, summary.json, lineage.json

examples:
  vc-train --tag demo_conv
  vc-train --tag demo_ft --with_pretrain
  vc-train --tag big --ngpu 4
"""


def _argv_without(argv: list[str], drop: set[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in drop:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = common.parser("vc-train", __doc__, EPILOG)
    p.add_argument("--tag", required=True, help="experiment: conf/tag/<TAG>.yaml")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument(
        "--force", action="store_true", help="accept a changed tag config and start over"
    )
    p.add_argument("--resume_from", default=None, help="best or epochN instead of latest")
    p.add_argument(
        "--with_pretrain", action="store_true", help="train untrained pretrain ancestors first"
    )
    p.add_argument("--ngpu", type=int, default=0, help="GPUs per node for DDP (0/1: one process)")
    p.add_argument(
        "--nproc", type=int, default=None, help="processes per node (default: ngpu; CPU: gloo)"
    )
    p.add_argument("--nnodes", type=int, default=1, help="machines taking part")
    p.add_argument("--node_rank", type=int, default=0, help="rank of this machine")
    p.add_argument("--master_addr", default="localhost", help="address of the rank-0 machine")
    p.add_argument("--master_port", type=int, default=29500, help="port of the rank-0 machine")
    args = p.parse_args(argv)

    nproc = args.nproc if args.nproc is not None else args.ngpu
    if (nproc > 1 or args.nnodes > 1) and "WORLD_SIZE" not in os.environ:
        from vc_toolkit.train.ddp import torchrun_command

        inner = _argv_without(
            argv, {"--ngpu", "--nproc", "--nnodes", "--node_rank", "--master_addr", "--master_port"}
        )
        cmd = torchrun_command(
            __spec__.name if __spec__ else __name__,
            max(nproc, 1),
            args.nnodes,
            args.node_rank,
            args.master_addr,
            args.master_port,
            inner,
        )
        print("+ " + " ".join(cmd), file=sys.stderr)
        return subprocess.call(cmd)

    def _main(a, layout):
        from vc_toolkit.train import stage

        stage.run(
            a.tag,
            layout,
            device=a.device,
            force=a.force,
            resume_from=a.resume_from,
            with_pretrain=a.with_pretrain,
        )

    return common.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
