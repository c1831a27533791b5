"""A lost database or tracking-server connection is retried, not fatal.

A PostgreSQL restart, a failover or a network blip drops the connections of every worker.
``pool_pre_ping`` replaces a stale pooled connection before use, but a call already under way
fails. :func:`retried` repeats such a call with a short backoff for up to
:data:`RETRY_SECONDS`, then raises :class:`StoreUnavailable` (one line). Only connection
errors are retried (SQLAlchemy/psycopg ``OperationalError``, a refused or reset HTTP
connection, a tracking server's 503 for its lost database), never a refusal by a store that
answered.

The minute is one budget per store and process, not per call: the first failed call starts the
store's outage, and every call to that store (on any thread) retries only until the outage is
:data:`RETRY_SECONDS` old. Once it is, a later call tries once and fails at once, so the calls
that follow a lost store on the way out (queued writes, ending the runs) add no minute of
their own. Any call that succeeds ends the outage.
"""

from __future__ import annotations

import threading
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
#: What an MLflow server answers (HTTP 503) when its own database connection failed.
_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
#: A database server that answered and refused: waiting will not change its mind.
_REFUSAL_WORDS = (
    "password authentication failed",
    "no password supplied",
    "does not exist",  # the database or the role
    "permission denied",
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
            return not any(word in str(current).lower() for word in _REFUSAL_WORDS)
        if isinstance(current, ConnectionError) or (
            name in ("ConnectionError", "ProtocolError", "NewConnectionError")
            and module.startswith(("requests", "urllib3"))
        ):
            return True
        mlflow_error = any(c.__name__ == "MlflowException" for c in type(current).__mro__)
        if mlflow_error and (  # RestException too: what a tracking server's answer raises
            getattr(current, "error_code", None) == _UNAVAILABLE
            or any(word in str(current).lower() for word in _CONNECTION_WORDS)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


class _Outages:
    """When each store's current outage began (monotonic seconds), shared by all threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}

    def begin(self, what: str, at: float) -> float:
        """The start of ``what``'s outage: ``at`` unless one is already under way."""
        with self._lock:
            return self._since.setdefault(what, at)

    def end(self, what: str) -> None:
        """``what`` answered: its outage is over."""
        with self._lock:
            self._since.pop(what, None)


_OUTAGES = _Outages()


def retried(
    call: Callable[..., T],
    *args: Any,
    what: str = "the store",
    seconds: float | None = None,
    **kwargs: Any,
) -> T:
    """``call(*args, **kwargs)``, repeated while it fails with a lost connection until the
    store's outage (begun by this call or an earlier one) is ``seconds`` old (default
    :data:`RETRY_SECONDS`). A signal during a call is raised once the call is done
    (:func:`~search.ops.signals.shielded`), never half-way through a commit.

    Raises:
        StoreUnavailable: the connection stayed lost; names ``what`` and the last error.
    """
    limit = RETRY_SECONDS if seconds is None else seconds
    delay = _FIRST_DELAY
    while True:
        attempt = time.monotonic()
        with shielded():  # a signal waits for the call to finish, then raises
            try:
                result = call(*args, **kwargs)
            except Exception as caught:
                error = caught
            else:
                _OUTAGES.end(what)
                return result
        if not transient(error):
            raise error
        remaining = _OUTAGES.begin(what, attempt) + limit - time.monotonic()
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
