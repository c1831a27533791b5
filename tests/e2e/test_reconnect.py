"""A lost connection is retried for a bounded time, then ends in one line; other errors are
not retried."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from servers import free_port

from search.ops.retry import StoreUnavailable, retried, transient


def _refused(port: int) -> None:
    psycopg.connect(f"postgresql://u:secret@127.0.0.1:{port}/db", connect_timeout=2)


def test_a_store_that_stays_away_ends_in_one_redacted_line() -> None:
    port = free_port()  # nobody listens there: connection refused
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        retried(_refused, port, what=f"postgresql://u:secret@127.0.0.1:{port}/db", seconds=1.5)
    assert 1.0 < time.monotonic() - started < 10
    message = str(raised.value)
    assert "\n" not in message and "secret" not in message
    assert message.startswith(f"postgresql://u:***@127.0.0.1:{port}/db did not answer for 2s")


def test_a_connection_back_within_the_limit_is_a_success() -> None:
    from sqlalchemy.exc import OperationalError

    calls = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))
        return "ok"

    assert retried(flaky, seconds=30) == "ok"
    assert len(calls) == 3 and calls[2] - calls[0] >= 1.0  # backed off 0.5 s, then 1 s


def test_only_lost_connections_are_retried() -> None:
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import IntegrityError, OperationalError

    lost = OperationalError("x", {}, Exception("server closed the connection unexpectedly"))
    wrapped = StorageInternalError("An exception is raised during the commit.")
    wrapped.__cause__ = lost
    assert transient(lost) and transient(wrapped) and transient(ConnectionRefusedError())
    assert not transient(IntegrityError("x", {}, Exception("duplicate key")))
    assert not transient(ValueError("connection refused"))
    from mlflow.exceptions import RestException

    # a tracking server whose database restarts answers 503, whatever the driver's words
    for words in ("the connection is lost", "connection failed: Connection refused"):
        assert transient(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": words}))
    assert not transient(RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "x"}))
    # a server that answered and refused: a wrong password or database is not waited for
    for refusal in (
        'FATAL:  password authentication failed for user "postgres"',
        "fe_sendauth: no password supplied",
        'FATAL:  database "nope" does not exist',
    ):
        assert not transient(OperationalError("x", {}, Exception(refusal)))
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("a refusal by a store that answered")

    with pytest.raises(ValueError):
        retried(broken, seconds=30)
    assert calls == [1]


def test_the_retry_limit_is_one_budget_per_store_not_per_call() -> None:
    """A second call (another thread's write, the run's end) to a store already lost waits
    only for what is left of the outage's budget; once it is spent, a call tries once."""
    what = f"the test store {free_port()}"
    calls: list[str] = []

    def lost(name: str) -> None:
        calls.append(name)
        raise ConnectionRefusedError("connection refused")

    ended: list[float] = []

    def first_call() -> None:
        with pytest.raises(StoreUnavailable):
            retried(lost, "a", what=what, seconds=2.0)
        ended.append(time.monotonic())

    started = time.monotonic()
    first = threading.Thread(target=first_call)
    first.start()
    time.sleep(1.0)
    with pytest.raises(StoreUnavailable):  # begun 1 s after the outage: 1 s left, not 2
        retried(lost, "b", what=what, seconds=2.0)
    first.join()
    assert ended and 1.9 < ended[0] - started < 2.9 and time.monotonic() - started < 2.9
    calls.clear()
    spent = time.monotonic()
    for name in ("c", "d"):  # the budget is spent: each tries once and fails at once
        with pytest.raises(StoreUnavailable, match="did not answer for 2s"):
            retried(lost, name, what=what, seconds=2.0)
    assert calls == ["c", "d"] and time.monotonic() - spent < 0.5


def test_a_store_that_answers_again_gets_a_new_budget() -> None:
    what = f"the test store {free_port()}"
    answers = iter([ConnectionRefusedError("connection refused"), None])

    def flaky() -> None:
        answer = next(answers, ConnectionRefusedError("connection refused"))
        if answer is not None:
            raise answer

    retried(flaky, what=what, seconds=1.0)  # lost, then back: the outage is over
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):  # a new outage: a whole second again
        retried(flaky, what=what, seconds=1.0)
    assert time.monotonic() - started >= 0.9
