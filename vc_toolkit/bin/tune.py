"""Hyper-parameter studies with Optuna over a tag's config (conf/optuna/<STUDY>.yaml)."""

from __future__ import annotations

import argparse
import sys

from vc_toolkit.bin import common
from vc_toolkit.errors import UserError

EPILOG = """\
subcommands:
  run      create or resume the study; run trials until it has n_trials trials
           (complete, pruned or failed; interrupted ones are replaced) or timeout
           passed; then print the summary. Re-running continues; running it again
           elsewhere (another shell, another machine on the same storage) adds workers.
  export   write a complete trial as a new tag: conf/tag/<TAG>.yaml = base tag + the
           trial's parameters + a note (per-trial budget keys such as train.epochs are
           not written unless --epochs)
  summary  best trials, state counts with fail reasons, parameter importances, plots

outputs (exp/optuna/<STUDY>/):
  study.journal      the study (default storage; shared by workers, resumable)
  trial_<N>/         config.yaml, metrics.json, history.jsonl, summary.json, tensorboard/,
                     error.txt (the traceback of a trial that raised)
  history.png, intermediate.png, importances.png   (written by run and summary)

examples:
  vc-tune run --study demo
  vc-tune run --study demo --n_workers 2       two worker processes, one storage
  (storage: postgresql://user:pw@host/db in the study file: workers on several machines)
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
    from vc_toolkit.tune import stage

    print(stage.run(args.study, layout, args.n_workers, args.device, args.verbose))
    return 0


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
        f"wrote {layout.shown(path)} (trial {trial.number}, value {trial.value:.6g}); "
        f"train it: ./run.sh --stage 2 --tag {args.tag}"
    )
    return 0


def _summary(args, layout) -> int:
    from vc_toolkit.tune.summary import summarize

    print(summarize(args.study, layout, top=args.top, plots=not args.no_plots))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vc_toolkit.tune.stage import quiet_optuna

    quiet_optuna(args.verbose)
    actions = {"run": _run, "export": _export, "summary": _summary}
    return common.run(actions[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
