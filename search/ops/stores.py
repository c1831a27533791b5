"""Create each store once, even when several processes start on a fresh folder together.

A brand-new sqlite file opened by two processes at once races: both see no tables, both run
the migrations, one crashes ("table ... already exists") or leaves the database half-migrated.
:func:`created_once` serializes the creation with an exclusive file lock on ``<db>.lock``
beside the database (``filelock``: ``flock`` on POSIX, ``msvcrt.locking`` on Windows): the
first process creates the store, the others wait, then find it created and only open it. Use
it around the first open of a store::

    with created_once(storage):
        study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True)

On PostgreSQL the same block runs under a session advisory lock of that database, so two
processes opening a fresh database together do not race on its tables either. Other stores
(MySQL, tracking servers) pass straight through.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

from search.ops.postgres import prefer_psycopg
from search.ops.retry import retried, transient
from search.ops.uris import redact, sqlite_path

#: Longest wait for another process to finish creating a store, in seconds.
LOCK_TIMEOUT = 300.0
_POLL = 0.05


class StoreLockError(RuntimeError):
    """Another process held a store's creation lock for longer than :data:`LOCK_TIMEOUT`."""


def lock_path(url: str) -> Path | None:
    """``<db>.lock`` beside the sqlite file of ``url``; None for other stores."""
    path = sqlite_path(url)
    return None if path is None else path.with_name(path.name + ".lock")


@contextlib.contextmanager
def created_once(url: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the creation lock of the store at ``url`` (a sqlite Optuna storage or MLflow
    tracking URI) while the block creates or opens it; create the database's folder first.

    Raises:
        StoreLockError: the lock stayed taken for ``timeout`` seconds.
    """
    prefer_psycopg()  # plain postgresql:// URLs work with psycopg 3 alone
    if url.startswith("postgresql"):
        with _advisory_lock(url, timeout):
            yield
        return
    lock = lock_path(url)
    if lock is None:
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    held = filelock.FileLock(lock)
    try:
        held.acquire(timeout=timeout, poll_interval=_POLL)
    except filelock.Timeout:
        raise StoreLockError(
            f"{redact(url)}: another process has been creating this store for "
            f"{timeout:.0f}s (lock {lock}); is it stuck?"
        ) from None
    try:
        yield
    finally:
        held.release()


#: Advisory lock key of store creation (any 64-bit number other tools are unlikely to use).
_ADVISORY_KEY = zlib.crc32(b"cropsearch.created_once")


@contextlib.contextmanager
def _advisory_lock(url: str, timeout: float) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock :data:`_ADVISORY_KEY` in the database of ``url``.

    Taking it survives a database restarting (the connection is retried, as every storage call
    is: :mod:`search.ops.retry`); a session lost while the lock is held has released it, so
    the unlock then has nothing to do."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        deadline = time.monotonic() + timeout
        connection = retried(
            _locked_connection, engine, url, timeout, deadline, what=f"the database {redact(url)}"
        )
        try:
            yield
        finally:
            try:
                unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:key)")
                connection.execute(unlock, {"key": _ADVISORY_KEY})
                connection.commit()
            except Exception as error:
                if not transient(error):
                    raise
            finally:
                with contextlib.suppress(Exception):
                    connection.close()
    finally:
        engine.dispose()


def _locked_connection(engine: Any, url: str, timeout: float, deadline: float) -> Any:
    """A new connection of ``engine`` that holds the advisory lock (polled until ``deadline``)."""
    import sqlalchemy

    connection = engine.connect()
    try:
        take = sqlalchemy.text("SELECT pg_try_advisory_lock(:key)")
        while not connection.execute(take, {"key": _ADVISORY_KEY}).scalar():
            if time.monotonic() > deadline:
                raise StoreLockError(
                    f"{redact(url)}: another process has been creating this store for "
                    f"{timeout:.0f}s (advisory lock {_ADVISORY_KEY}); is it stuck?"
                )
            time.sleep(_POLL)
        connection.commit()
        return connection
    except BaseException:
        with contextlib.suppress(Exception):
            connection.close()
        raise


def refused_connection(error: Exception) -> str | None:
    """A store that answered but refused us (wrong password, not a database): the one line
    that says why; None for any other error."""
    from sqlalchemy.exc import SQLAlchemyError  # SQLAlchemy loads only when a store failed

    if isinstance(error, SQLAlchemyError):
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        if "password authentication failed" in reason or "no password supplied" in reason:
            reason += " (check PGPASSWORD or the ~/.pgpass file PGPASSFILE names)"
        return f"the study storage refused the connection: {reason}"
    return None
