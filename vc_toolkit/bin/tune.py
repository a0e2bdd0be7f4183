"""Hyper-parameter studies with Optuna over a tag's config (conf/optuna/<STUDY>.yaml)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from vc_toolkit import log
from vc_toolkit.bin import common
from vc_toolkit.errors import UserError

EPILOG = """\
subcommands:
  run      create or resume the study; run trials until it has n_trials trials (any
           state) or timeout passed; then print the summary. Re-running continues.
  export   write a complete trial as a new tag: conf/tag/<TAG>.yaml = base tag + the
           trial's parameters + a note (per-trial budget keys such as train.epochs are
           not written unless --epochs)
  summary  best trials, state counts with fail reasons, parameter importances, plots

outputs (exp/optuna/<STUDY>/):
  study.journal      the study (default storage; shared by workers, resumable)
  trial_<N>/         config.yaml, metrics.json, history.jsonl, summary.json, tensorboard/
  history.png, intermediate.png, importances.png   (written by run and summary)

examples:
  vc-tune run --study demo
  vc-tune run --study demo --n_workers 2       two worker processes, one storage
  vc-tune summary --study demo
  vc-tune export --study demo --trial best --tag demo_tuned
  optuna-dashboard exp/optuna/demo/study.journal   (pip install optuna-dashboard)
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="conf/optuna/<STUDY>.yaml")
    # also accepted after the subcommand
    p.add_argument("--root", default=argparse.SUPPRESS, help="recipe root (default: $VC_ROOT or .)")
    p.add_argument("--verbose", type=int, default=argparse.SUPPRESS, help="0, 1 or 2")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("vc-tune", __doc__, EPILOG)
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,export,summary}")
    run = sub.add_parser("run", help="run trials (creates or resumes the study)")
    _add_common(run)
    run.add_argument("--n_workers", type=int, default=1, help="worker processes on this machine")
    run.add_argument(
        "--device", default=None, help="auto, cpu, cuda, cuda:N (default and auto: the study's)"
    )
    exp = sub.add_parser("export", help="write a trial as conf/tag/<TAG>.yaml")
    _add_common(exp)
    exp.add_argument("--trial", default="best", help="trial number or best")
    exp.add_argument("--tag", required=True, help="name of the new tag")
    exp.add_argument("--force", action="store_true", help="overwrite an existing tag file")
    exp.add_argument(
        "--epochs",
        nargs="?",
        const="trial",
        default=None,
        help="also write train.epochs: N, or the trial's epochs when given without N",
    )
    summ = sub.add_parser("summary", help="best trials, states, importances, plots")
    _add_common(summ)
    summ.add_argument("--top", type=int, default=10, help="trials in the table")
    summ.add_argument("--no_plots", action="store_true", help="do not write PNG plots")
    return p


def _run(args, layout) -> int:
    from vc_toolkit.tune.objective import prepare, work
    from vc_toolkit.tune.summary import summarize

    if args.n_workers < 1:
        raise UserError(f"--n_workers must be >= 1, got {args.n_workers}")
    device = None if args.device in (None, "auto") else args.device
    ctx = prepare(args.study, layout, args.n_workers, device)
    if args.n_workers == 1:
        work(ctx)
    else:
        _spawn(ctx, args.n_workers, args.verbose)
    print(summarize(args.study, layout))
    return 0


def _spawn(ctx, n_workers: int, verbose: int) -> None:
    """Run ``n_workers`` worker processes on the study and wait for them."""
    import multiprocessing

    import torch

    gpus = torch.cuda.device_count() if ctx.device in ("auto", "cuda") else 0
    mp = multiprocessing.get_context("spawn")
    procs = []
    for i in range(n_workers):
        wctx = dataclasses.replace(ctx, device=f"cuda:{i % gpus}") if gpus > 1 else ctx
        procs.append(mp.Process(target=_worker, args=(wctx, i, verbose), name=f"tune-worker-{i}"))
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        for proc in procs:
            proc.join(timeout=60)
        raise
    failed = [i for i, proc in enumerate(procs) if proc.exitcode != 0]
    if failed:
        raise UserError(
            f"worker(s) {', '.join(map(str, failed))} stopped with an error (see above); "
            "finished trials are kept, re-run to continue"
        )


def _worker(ctx, index: int, verbose: int) -> None:
    """Entry point of a spawned worker process."""
    from vc_toolkit.tune.objective import work

    log.setup(verbose)
    _quiet_optuna(verbose)
    fmt = logging.Formatter(f"%(asctime)s [w{index}] [%(name)s] %(message)s", "%H:%M:%S")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(fmt)
    try:
        work(ctx, index)
    except UserError as err:
        print(f"error: worker {index}: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def _export(args, layout) -> int:
    from vc_toolkit.tune.export import export_trial

    epochs = args.epochs
    if epochs not in (None, "trial"):
        try:
            epochs = int(epochs)
        except ValueError:
            raise UserError(f"--epochs takes a number (or nothing), got {epochs!r}") from None
    path, trial = export_trial(args.study, layout, args.trial, args.tag, args.force, epochs)
    print(
        f"wrote {path} (trial {trial.number}, value {trial.value:.6g}); "
        f"train it: ./run.sh --stage 2 --tag {args.tag}"
    )
    return 0


def _summary(args, layout) -> int:
    from vc_toolkit.tune.summary import summarize

    print(summarize(args.study, layout, top=args.top, plots=not args.no_plots))
    return 0


def _quiet_optuna(verbose: int) -> None:
    """Optuna logs through the toolkit's handler; its per-study chatter only with --verbose 2."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(logging.INFO if verbose >= 2 else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_optuna(args.verbose)
    actions = {"run": _run, "export": _export, "summary": _summary}
    return common.run(actions[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
