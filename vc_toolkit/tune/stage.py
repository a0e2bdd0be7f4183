"""Run an Optuna study: worker processes on one storage, then the summary.

``run`` creates or resumes the study, runs trials in ``n_workers`` processes on
this machine (the same command on other machines adds workers to a shared
storage) until it has ``n_trials`` trials or its timeout passed, and returns the
summary text.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

from vc_toolkit import log
from vc_toolkit.errors import UserError
from vc_toolkit.paths import Layout
from vc_toolkit.tune.objective import Context, prepare, work
from vc_toolkit.tune.summary import summarize


def run(
    study: str, layout: Layout, n_workers: int = 1, device: str | None = None, verbose: int = 1
) -> str:
    """Run trials of ``study`` and return its summary.

    Args:
        study: ``conf/optuna/<study>.yaml``.
        layout: Recipe root.
        n_workers: Worker processes on this machine.
        device: ``cpu``, ``cuda``, ``cuda:N``; None or ``auto``: the study's setting.
        verbose: Log level of spawned workers (0, 1, 2).

    Raises:
        UserError: bad study config, or a worker stopped with an error.
    """
    if n_workers < 1:
        raise UserError(f"--n_workers must be >= 1, got {n_workers}")
    ctx = prepare(study, layout, n_workers, None if device in (None, "auto") else device)
    if n_workers == 1:
        work(ctx)
    else:
        _spawn(ctx, n_workers, verbose)
    return summarize(study, layout)


def _spawn(ctx: Context, n_workers: int, verbose: int) -> None:
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


def _worker(ctx: Context, index: int, verbose: int) -> None:
    """Entry point of a spawned worker process."""
    log.setup(verbose)
    quiet_optuna(verbose)
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


def quiet_optuna(verbose: int) -> None:
    """Optuna logs through the toolkit's handler; its per-study chatter only with --verbose 2."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(logging.INFO if verbose >= 2 else logging.WARNING)
