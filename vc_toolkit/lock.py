"""One process at a time per run: an exclusive lock file with stale-lock takeover.

The lock is ``fcntl.flock`` on a lock file whose content names the holder (pid, host,
start time). The kernel drops a flock when its process dies, so a lock left by a dead
process is free, and taking it over is atomic: however many processes try at once,
exactly one gets it. Holders that wrote the file without a flock (an older version of
the toolkit) are still respected while their process lives.

A lock file is removed when its holder releases it, and so are the folders the lock
created, so a run that fails before writing anything leaves no empty folder behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from vc_toolkit import log
from vc_toolkit.errors import UserError

logger = log.get("lock")
_ATTEMPTS = 20


class LockedError(UserError):
    """Another live process holds the lock (is training this tag, extracting this spk...)."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_fd(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not unlinked or replaced)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _busy(what: str, doing: str, path: Path, holder: dict) -> LockedError:
    if not holder:
        return LockedError(
            f"{what} is locked by {path} (another process is taking it right now); "
            "try again, or delete it if no run is active"
        )
    return LockedError(
        f"{what} is already being {doing} by process {holder.get('pid')} on "
        f"{holder.get('host')} since {holder.get('started')}; wait for it, stop it, "
        f"or delete {path} if it is gone"
    )


def _judge(holder: dict, me: dict, what: str, doing: str, path: Path) -> bool:
    """With the flock held: whether the file names a stale holder to take over.

    Raises:
        LockedError: the file names a live holder that took it without a flock (an older
            version of the toolkit), or a holder on another host, which cannot be checked.
    """
    pid, host = holder.get("pid"), holder.get("host")
    if not holder or pid == me["pid"] and host == me["host"]:
        return False
    if host != me["host"] or isinstance(pid, int) and pid_alive(pid):
        raise _busy(what, doing, path, holder)
    return True


def _acquire(path: Path, what: str, doing: str, me: dict) -> int:
    """Open and flock ``path``, write ``me`` into it; the open descriptor."""
    for _ in range(_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_fd(fd)
            for _ in range(20):  # the holder may be writing its name this very moment
                if holder:
                    break
                time.sleep(0.01)
                holder = _read_fd(fd)
            os.close(fd)
            raise _busy(what, doing, path, holder) from None
        if not _same_file(fd, path):  # its holder released (and removed) it meanwhile
            os.close(fd)
            continue
        try:
            holder = _read_fd(fd)
            stale = _judge(holder, me, what, doing, path)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        if stale:
            logger.warning(
                "%s: taking over a stale lock of process %s (started %s), which is gone",
                what,
                holder.get("pid"),
                holder.get("started"),
            )
        return fd
    raise LockedError(f"could not take the lock {path}; try again")  # pragma: no cover


def _created_dirs(folder: Path) -> list[Path]:
    """The folders ``folder.mkdir(parents=True)`` would create, innermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


@contextlib.contextmanager
def tag_lock(path: Path, what: str, doing: str = "trained") -> Iterator[None]:
    """Hold ``path`` as an exclusive lock while the block runs.

    A lock left by a dead process on this host is taken over with a warning. A
    lock held by a live process (or by another host, which cannot be checked)
    is an error naming the holder.

    Args:
        path: The lock file (its folder is created if needed, and removed again
            on release when the lock created it and it is still empty).
        what: What is locked, for messages: ``"tag 'x'"``, ``"spk 'x'"``.
        doing: What the holder does, for messages: ``"... is already being <doing> by ..."``.

    Raises:
        LockedError: the lock is held.
    """
    created = _created_dirs(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now().isoformat("T", "seconds"),
    }
    try:
        fd = _acquire(path, what, doing, me)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield
    finally:
        if _same_file(fd, path) and _read_fd(fd).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
        os.close(fd)
        _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (the run wrote something), or gone
            return
