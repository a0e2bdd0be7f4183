"""Errors that are the user's to fix: the CLI prints them as one line, no traceback."""

from __future__ import annotations

import errno

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
"""``errno`` values of a write refused for lack of space (device full, quota exceeded)."""


class UserError(Exception):
    """Bad input (config, corpus, command line, missing prerequisite stage)."""


class DiskFullError(UserError):
    """The disk filled up while writing ``path``.

    Every file the toolkit writes is written to a temporary name and renamed when
    complete, so what was finished before is intact and re-running the same command
    continues from it.

    Attributes:
        path (str): the file being written.
    """

    def __init__(self, path: str) -> None:
        self.path = str(path)
        super().__init__(
            f"no space left on device while writing {self.path}; nothing finished was lost: "
            "free some space and run the same command again to continue"
        )

    def __reduce__(self) -> tuple:
        return type(self), (self.path,)  # raised in worker processes, re-raised in the parent


def disk_full(err: BaseException | None, path: str | None = None) -> DiskFullError | None:
    """The :class:`DiskFullError` behind ``err``, or None when it is not about disk space.

    ``err``, its cause and its context are searched, so an ``OSError(ENOSPC)`` that a
    library turned into its own error (torch's ``inline_container`` ``RuntimeError``)
    is found too.

    Args:
        err: The exception raised while writing.
        path: The file being written (else the ``OSError``'s own file name, if any).

    Example:
        >>> str(disk_full(OSError(errno.ENOSPC, "No space left"), "x.pt")).split(";")[0]
        'no space left on device while writing x.pt'
        >>> disk_full(ValueError("bad")) is None
        True
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, DiskFullError):
            return err
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            return DiskFullError(path or err.filename or "a file")
        err = err.__cause__ or err.__context__
    return None
