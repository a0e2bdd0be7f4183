"""One training process per tag: an exclusive lock file with stale-lock takeover."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from vc_toolkit import log
from vc_toolkit.errors import UserError

logger = log.get("lock")


class LockedError(UserError):
    """Another live process is training this tag."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def tag_lock(path: Path, what: str) -> Iterator[None]:
    """Hold ``path`` as an exclusive lock while the block runs.

    A lock left by a dead process on this host is taken over with a warning. A
    lock held by a live process (or by another host, which cannot be checked)
    is an error naming the holder.

    Raises:
        LockedError: the lock is held.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now().isoformat("T", "seconds"),
    }
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            fd = None
        if fd is None:
            holder = _read(path)
            pid, host = holder.get("pid"), holder.get("host")
            if host == me["host"] and isinstance(pid, int) and not pid_alive(pid):
                logger.warning(
                    "%s: taking over a stale lock of process %s (started %s), which is gone",
                    what,
                    pid,
                    holder.get("started"),
                )
                path.unlink(missing_ok=True)
                continue
            if not holder:
                raise LockedError(
                    f"{what} is locked by {path} (unreadable); delete it if no run is active"
                )
            raise LockedError(
                f"{what} is already being trained by process {pid} on {host} since "
                f"{holder.get('started')}; wait for it, stop it, or delete {path} if it is gone"
            )
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:  # pragma: no cover - three races in a row
        raise LockedError(f"could not take the lock {path}")
    try:
        yield
    finally:
        if _read(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
