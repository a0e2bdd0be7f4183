"""Small file helpers: atomic writes and Kaldi-style ``scp`` lists."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vc_toolkit.errors import disk_full


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn running out of disk space inside the block into a :class:`DiskFullError` on ``path``.

    Raises:
        DiskFullError: the block failed for lack of space (``ENOSPC``/``EDQUOT`` anywhere in
            the exception's cause or context).
    """
    try:
        yield
    except Exception as err:
        full = disk_full(err, str(path))
        if full is None or full is err:
            raise
        raise full from None


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary sibling of ``path``; rename it over ``path`` on success.

    A reader never sees a half-written file, and a crash leaves the previous
    version (or nothing) in place.

    Raises:
        DiskFullError: the disk filled up (the temporary file is removed).
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with _replacing(fd, tmp, path, mode, **kwargs) as f:
            yield f


@contextlib.contextmanager
def _replacing(fd: int, tmp: str, path: Path, mode: str, **kwargs) -> Iterator[IO]:
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; final files get normal permissions
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def read_scp(path: str | Path) -> dict[str, str]:
    """Read ``utt_id value`` lines (value may contain spaces) into an ordered dict."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'utt_id value', got {line!r}")
            out[parts[0]] = parts[1]
    return out


def write_scp(path: str | Path, entries: dict[str, str]) -> None:
    """Write ``utt_id value`` lines atomically, in the given order."""
    atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in entries.items()))
