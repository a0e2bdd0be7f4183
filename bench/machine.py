"""What the figures were measured on: CPU, threads, library versions, environment, load."""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
from pathlib import Path

THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "KMP_AFFINITY",
    "OMP_PROC_BIND",
)


def cpu_model() -> str:
    """The ``model name`` line of ``/proc/cpuinfo`` (else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages (empty where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def host_name() -> str:
    """Short host name, safe in a file name."""
    name = socket.gethostname().split(".")[0] or "host"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def machine_info() -> dict:
    """CPU, cores, torch threads, versions and thread-related environment variables."""
    import numpy as np
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "date": dt.datetime.now().isoformat("T", "seconds"),
        "host": host_name(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "env": {k: os.environ.get(k) for k in THREAD_ENV},
        "load_average": load_average(),
    }
