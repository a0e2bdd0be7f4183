"""One parallel map with a progress bar, for the stages that fan work out to processes.

Example:
    >>> sorted(parallel_map(abs, [-2, 1, -3], nj=1, desc="demo", progress=False))
    [1, 2, 3]
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

J = TypeVar("J")
R = TypeVar("R")


def _one_thread() -> None:
    """Worker initialiser: one BLAS/OpenMP thread per process unless the user set it."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def parallel_map(
    fn: Callable[[J], R],
    jobs: Iterable[J],
    nj: int,
    desc: str,
    unit: str = "it",
    progress: bool = True,
    chunksize: int = 1,
) -> Iterator[R]:
    """Yield ``fn(job)`` for every job, in completion order, with a tqdm bar.

    ``nj <= 1`` runs in this process (in order); otherwise a pool of ``nj`` forked
    processes runs the jobs (``fn`` and the jobs must be picklable; results arrive
    as they finish). The pool is closed and joined however the caller stops; when a job
    raises, the jobs not yet finished are abandoned and the error re-raised here.

    Args:
        fn: Work on one job; a module-level function.
        jobs: The jobs.
        nj: Worker processes.
        desc: Label of the progress bar.
        unit: Unit of the progress bar.
        progress: Show the bar.
        chunksize: Jobs handed to a worker at a time.
    """
    jobs = list(jobs)
    if not jobs:
        return
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress)
    pool = mp.get_context("fork").Pool(nj, initializer=_one_thread) if nj > 1 else None
    try:
        results = pool.imap_unordered(fn, jobs, chunksize) if pool else map(fn, jobs)
        for result in results:
            bar.update()
            yield result
    except Exception:
        if pool is not None:  # a job failed (e.g. the disk is full): do not start the rest
            pool.terminate()
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
