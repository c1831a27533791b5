"""A lost database or tracking-server connection is retried, not fatal.

A PostgreSQL restart, a failover or a network blip drops the connections of every worker.
``pool_pre_ping`` replaces a stale pooled connection before use, but a call already under way
fails. :func:`retried` repeats such a call with a short backoff for up to
:data:`RETRY_SECONDS`, then raises :class:`StoreUnavailable` (one line). Only connection
errors are retried (SQLAlchemy/psycopg ``OperationalError``, a refused or reset HTTP
connection), never a refusal by a store that answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from search.ops.signals import shielded
from search.ops.uris import UriError, redact

T = TypeVar("T")

#: Longest time a call is retried while its store does not answer, in seconds.
RETRY_SECONDS = 60.0
_FIRST_DELAY, _MAX_DELAY = 0.5, 5.0
_CONNECTION_WORDS = (
    "connection refused",
    "connection reset",
    "server closed the connection",
    "terminating connection",
    "could not connect",
    "connection failed",
    "connection timed out",
    "max retries exceeded",
    "the database system is",  # starting up / shutting down
)


class StoreUnavailable(UriError):
    """A store stayed unreachable for :data:`RETRY_SECONDS` (one line, as a user error)."""


def transient(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is a lost connection."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__
        name = type(current).__name__
        if name == "OperationalError" and module.startswith(("sqlalchemy", "psycopg")):
            return True
        if isinstance(current, ConnectionError) or (
            name in ("ConnectionError", "ProtocolError", "NewConnectionError")
            and module.startswith(("requests", "urllib3"))
        ):
            return True
        if name == "MlflowException" and any(
            word in str(current).lower() for word in _CONNECTION_WORDS
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def retried(
    call: Callable[..., T],
    *args: Any,
    what: str = "the store",
    seconds: float | None = None,
    **kwargs: Any,
) -> T:
    """``call(*args, **kwargs)``, repeated while it fails with a lost connection, for up to
    ``seconds`` (default :data:`RETRY_SECONDS`). A signal during a call is raised once the
    call is done (:func:`~search.ops.signals.shielded`), never half-way through a commit.

    Raises:
        StoreUnavailable: the connection stayed lost; names ``what`` and the last error.
    """
    limit = RETRY_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + limit
    delay = _FIRST_DELAY
    while True:
        with shielded():  # a signal waits for the call to finish, then raises
            try:
                return call(*args, **kwargs)
            except Exception as caught:
                error = caught
        if not transient(error):
            raise error
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise StoreUnavailable(
                f"{redact(what)} did not answer for {limit:.0f}s: "
                f"{type(error).__name__}: {redact(reason)}"
            ) from None
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_DELAY)


class Retrying:
    """A proxy whose method calls are :func:`retried` (an ``MlflowClient``, a storage)."""

    def __init__(self, target: Any, what: str) -> None:
        self._target, self._what = target, what

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return retried(value, *args, what=self._what, **kwargs)

        return call
