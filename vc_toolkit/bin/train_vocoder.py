"""Train a neural vocoder (HiFi-GAN) for a dataset version: conf/voc/<VOC>.yaml."""

from __future__ import annotations

import os
import subprocess
import sys

from vc_toolkit.bin import common
from vc_toolkit.bin.train import _argv_without

EPILOG = """\
a voc names its spk (whose sample rate and mel analysis it takes), the generator
(v1, v2, v3 or tiny) and discriminator sizes, its data (the spk's recordings, or a
tag's teacher-forced mels with data.finetune) and its budget. Like a tag it is frozen
at its first run, resumes exactly and refuses a changed config unless --force.

outputs (exp/voc/<VOC>/):
  config.yaml         frozen resolved config
  checkpoints/        latest.pt, best.pt, epochN.pt + config.json: each checkpoint
                      is also a HiFi-GAN generator file (infer.vocoder.voc: <VOC>)
  tensorboard/        losses, dev spectrograms and audio
  train.log, history.jsonl, summary.json, lineage.json, pairs.json

examples:
  vc-train-vocoder --voc demo_hifigan
  vc-train-vocoder --voc demo_hifigan_ft --with_pretrain   fine-tune on demo_conv's mels
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = common.parser("vc-train-vocoder", __doc__, EPILOG)
    p.add_argument("--voc", required=True, help="vocoder experiment: conf/voc/<VOC>.yaml")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--force", action="store_true", help="accept a changed config and start over")
    p.add_argument("--resume_from", default=None, help="best or epochN instead of latest")
    p.add_argument(
        "--with_pretrain", action="store_true", help="train an untrained pretrain voc first"
    )
    p.add_argument("--nj", type=int, default=2, help="processes preparing the training pairs")
    p.add_argument("--ngpu", type=int, default=0, help="GPUs per node for DDP (0/1: one process)")
    p.add_argument("--nproc", type=int, default=None, help="processes per node (default: ngpu)")
    p.add_argument("--nnodes", type=int, default=1, help="machines taking part")
    p.add_argument("--node_rank", type=int, default=0, help="rank of this machine")
    p.add_argument("--master_addr", default="localhost", help="address of the rank-0 machine")
    p.add_argument("--master_port", type=int, default=29500, help="port of the rank-0 machine")
    args = p.parse_args(argv)

    nproc = args.nproc if args.nproc is not None else args.ngpu
    if (nproc > 1 or args.nnodes > 1) and "WORLD_SIZE" not in os.environ:
        from vc_toolkit.train.ddp import torchrun_command

        drop = {"--ngpu", "--nproc", "--nnodes", "--node_rank", "--master_addr", "--master_port"}
        cmd = torchrun_command(
            __spec__.name if __spec__ else __name__,
            max(nproc, 1), args.nnodes, args.node_rank, args.master_addr, args.master_port,
            _argv_without(argv, drop),
        )  # fmt: skip
        print("+ " + " ".join(cmd), file=sys.stderr)
        return subprocess.call(cmd)

    def _main(a, layout):
        from vc_toolkit.train import voc_stage

        voc_stage.run(a.voc, layout, a.device, a.force, a.resume_from, a.with_pretrain, a.nj)

    return common.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
