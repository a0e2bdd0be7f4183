"""Console logging shared by the command-line entry points."""

from __future__ import annotations

import logging
import sys


def setup(verbose: int = 1) -> None:
    """Log to stderr as ``HH:MM:SS [name] message``; ``verbose`` 0 = warnings, 2 = debug."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s [%(name)s] %(message)s", "%H:%M:%S"))
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # the console shows ``level``; file logs (train.log) still receive INFO
    root.setLevel(min(level, logging.INFO))
    for noisy in ("numba", "matplotlib", "PIL", "h5py", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get(name: str) -> logging.Logger:
    """A named logger (e.g. ``stage0``)."""
    return logging.getLogger(name)
