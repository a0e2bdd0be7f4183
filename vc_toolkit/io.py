"""Small file helpers: atomic writes, Kaldi-style ``scp`` lists, cached content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vc_toolkit.errors import DiskFullError, disk_full


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


def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file's content."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


#: a file modified this recently may change again within the file system's timestamp
#: resolution without its stat changing: its hash is not cached (racy, as in git's index;
#: a later write sets a new modification time, so only a recent one is in doubt)
RACY_SECONDS = 2.0


def file_digests(files: dict[str, Path], cache: Path) -> dict[str, str]:
    """SHA-256 of each file's content, hashed once and then read from ``cache``.

    A cached hash is reused while the file's size, modification time, status-change
    time and inode are what they were when it was hashed (the status-change time
    cannot be set back, so ``cp -p``/``touch -r`` do not fool it); otherwise the
    file is hashed again. The cache is a small JSON file, rewritten atomically
    when it changes; an unreadable one is ignored.

    Args:
        files: ``{key: path}``; the key names the file in the cache and the result
            (e.g. the path as a list gives it).
        cache: The JSON cache file.

    Returns:
        ``{key: hex digest}`` of the files that exist (missing ones are left out).
    """
    try:
        old = json.loads(cache.read_text(encoding="utf-8"))
        old = old if isinstance(old, dict) else {}
    except (OSError, ValueError):
        old = {}
    now = time.time()
    new: dict[str, list] = {}
    digests: dict[str, str] = {}
    for key, path in files.items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        entry = old.get(key)
        if isinstance(entry, list) and entry[:4] == stamp:
            digest = entry[4]
        else:
            digest = sha256_file(path)
        digests[key] = digest
        if now - st.st_mtime > RACY_SECONDS:
            new[key] = [*stamp, digest]
    if new != old:
        with contextlib.suppress(OSError, DiskFullError):  # no cache: only slower next time
            atomic_write_text(cache, json.dumps(new, separators=(",", ":")) + "\n")
    return digests
