"""Study storages shared by workers: opened without races, with one lock per study.

A storage target is a journal file path or a database URL (see
:func:`vc_toolkit.tune.study.storage_target`). Several processes, on one machine or
on several, may open the same target at the same time:

* Creating a database's tables is done by one process at a time (a file lock next
  to a SQLite file, an advisory lock on PostgreSQL), and retried after a race on
  other databases.
* :func:`study_lock` is the mutual exclusion of the workers of one study: whoever
  creates the study, marks stale trials or starts a new trial holds it, so a study
  never gets more than ``n_trials`` trials. It is a file lock for a journal or SQLite
  file (processes of one machine, or of several sharing the file system) and an
  advisory lock on the PostgreSQL server (any machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import random
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.pool import NullPool

from vc_toolkit.config.core import ConfigError

_ATTEMPTS = 5


def open_storage(target: str) -> optuna.storages.BaseStorage:
    """The journal file (created as needed) or the database at ``target``.

    Raises:
        ConfigError: the database cannot be opened (driver missing, bad URL, no server).
    """
    if "://" not in target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(target))
    # sqlite: wait for a busy database instead of failing with "database is locked"
    engine = {"connect_args": {"timeout": 120}} if target.startswith("sqlite") else {}
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with _lock(target, "schema"):
                return optuna.storages.RDBStorage(target, engine_kwargs=engine)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as err:
            # another process created the same tables meanwhile (a dialect without a lock)
            if attempt == _ATTEMPTS:
                raise _unusable(target, err) from None
            time.sleep(random.uniform(0.1, 1.0))
        except Exception as err:  # driver import errors, URL errors, connection errors
            raise _unusable(target, err) from None
    raise AssertionError("not reached")


def _unusable(target: str, err: BaseException) -> ConfigError:
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, ImportError) or "No module named" in first:
        first += " (install the pinned dependencies: utils/install.sh)"
    return ConfigError(f"cannot open storage {redacted(target)}: {first}")


def redacted(target: str) -> str:
    """``target`` for messages: a database URL without its password.

    Example:
        >>> redacted("postgresql://vc:secret@db.example.org/vc_optuna")
        'postgresql://vc:***@db.example.org/vc_optuna'
    """
    if "://" not in target:
        return target
    try:
        return sqlalchemy.engine.make_url(target).render_as_string(hide_password=True)
    except Exception:
        return target.split("://")[0] + "://..."


@contextlib.contextmanager
def study_lock(target: str, study: str, fallback: Path) -> Iterator[None]:
    """Hold the lock of ``study`` in storage ``target`` (one holder on any machine).

    Args:
        target: Journal file path or database URL.
        study: Study name.
        fallback: Lock file for a database other than SQLite and PostgreSQL (which
            then excludes the processes of this machine only).
    """
    with _lock(target, f"study:{study}", fallback):
        yield


def lock_file(target: str, what: str) -> Path | None:
    """The lock file used for ``target`` (a journal or SQLite file), or None for a server.

    Example:
        >>> str(lock_file("exp/optuna/s/study.journal", "study:s"))
        'exp/optuna/s/study.journal.study.lock'
        >>> str(lock_file("sqlite:///db/s.db", "schema"))
        'db/s.db.schema.lock'
        >>> lock_file("postgresql://u@h/db", "schema") is None
        True
    """
    kind = what.split(":")[0]
    if backend(target) == "journal":
        return Path(f"{target}.{kind}.lock")
    database = sqlalchemy.engine.make_url(target).database
    if backend(target) != "sqlite" or database in (None, "", ":memory:"):
        return None
    return Path(f"{database}.{kind}.lock")


def backend(target: str) -> str:
    """``journal`` for a file path, else the database of the URL (``sqlite``, ``postgresql``).

    Example:
        >>> backend("exp/optuna/s/study.journal"), backend("postgresql+psycopg://u@h/db")
        ('journal', 'postgresql')
    """
    if "://" not in target:
        return "journal"
    return sqlalchemy.engine.make_url(target).get_backend_name()


@contextlib.contextmanager
def _lock(target: str, what: str, fallback: Path | None = None) -> Iterator[None]:
    """A lock named ``what`` for the storage at ``target``: a file, or PostgreSQL's."""
    path = lock_file(target, what)
    postgres = backend(target) == "postgresql"
    if path is None and not postgres:
        path = fallback
    if path is not None:
        with _flock(path):
            yield
        return
    if not postgres:  # another database: creating tables relies on the retries of open_storage
        yield
        return
    name = f"vc_toolkit.tune:{what}".encode()
    key = {"k": int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)}
    with _engine(target).connect() as conn:  # a session-level lock, released with its session
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), key)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), key)
            conn.commit()


_ENGINES: dict[str, sqlalchemy.engine.Engine] = {}


def _engine(url: str) -> sqlalchemy.engine.Engine:
    """One engine per URL for the locks (no pool: a lock's connection closes with it)."""
    if url not in _ENGINES:
        _ENGINES[url] = sqlalchemy.create_engine(url, poolclass=NullPool)
    return _ENGINES[url]


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
