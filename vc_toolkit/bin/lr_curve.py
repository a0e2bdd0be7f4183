"""Print and plot a tag's learning-rate schedule before training it."""

from __future__ import annotations

import math
import sys

from vc_toolkit.bin import common

EPILOG = """\
The schedule is defined in samples seen, so it is shown against both optimizer
steps and utterances; pass --batch_size to see what a different batch size does
(the curve against utterances does not move).

example:
  vc-lr-curve --tag demo_conv --out exp/demo_conv/lr.png
"""


def _main(args, layout) -> int:
    from vc_toolkit import plots
    from vc_toolkit.config import load_tag
    from vc_toolkit.data.dump import DumpSplit
    from vc_toolkit.train.sampler import GroupedBatchSampler
    from vc_toolkit.train.scheduler import lr_curve

    cfg = load_tag(args.tag, layout.root)
    batch = (args.batch_size or cfg.train.batch_size) * args.world_size
    steps = args.steps
    if steps is None:
        split = layout.dump(cfg.spk) / "train"
        if (split / "manifest.tsv").is_file():
            ds = DumpSplit(split)
            per_rank = args.batch_size or cfg.train.batch_size
            per_epoch = len(GroupedBatchSampler(ds.tgt_frames, per_rank, cfg.train.group_size))
            per_epoch = math.ceil(per_epoch / args.world_size)
            steps = per_epoch * cfg.train.epochs
        else:
            steps = 20 * cfg.train.scheduler.warmup_in_samples() // max(batch, 1) or 1000
    if cfg.train.max_steps:
        steps = min(steps, cfg.train.max_steps)
    lrs = lr_curve(cfg.train.scheduler, batch, cfg.model.hidden, steps)
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    sched = cfg.train.scheduler
    print(f"tag {args.tag}: {sched.type} schedule, global batch {batch}, {steps} steps")
    warm = sched.warmup_in_samples()
    print(f"  warmup: {warm} utterances = {warm / batch:.0f} steps")
    print(f"  peak lr {lrs[peak]:.3g} at step {peak + 1}; final lr {lrs[-1]:.3g}")
    for k in sorted({1, 10, 100, 1000, 10000, peak + 1, steps} & set(range(1, steps + 1))):
        print(f"  step {k:>7d} ({k * batch:>9d} utts): lr {lrs[k - 1]:.4g}")
    if args.out:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.plot(range(1, steps + 1), lrs)
        ax.set_xlabel(f"optimizer step (batch {batch})")
        ax.set_ylabel("learning rate")
        top = ax.secondary_xaxis("top", functions=(lambda s: s * batch, lambda u: u / batch))
        top.set_xlabel("utterances seen")
        ax.set_title(args.tag, fontsize=9, loc="left")
        fig.tight_layout()
        path = plots.save(fig, layout.resolve(args.out))
        print(f"  plot: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-lr-curve", __doc__, EPILOG)
    p.add_argument("--tag", required=True, help="experiment: conf/tag/<TAG>.yaml")
    p.add_argument("--batch_size", type=int, default=None, help="override train.batch_size")
    p.add_argument("--world_size", type=int, default=1, help="data-parallel processes")
    p.add_argument("--steps", type=int, default=None, help="steps to show (default: the budget)")
    p.add_argument("--out", default=None, help="PNG to write")
    return common.run(_main, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
