"""Writes off the training path: one thread per trial, joined before the trial's record is kept.

A trial's crop-sample figure (~0.5-1 s of matplotlib) and its per-epoch MLflow writes do not
need to hold up training. :class:`Writes` runs them in order on one background thread;
:meth:`Writes.join` waits for all of them, so a trial's run is complete in MLflow before its
record reaches the Optuna storage and before the next trial starts.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Writes:
    """Calls run one after another on a background thread, in the order submitted."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cropsearch-writes")
        self._pending: list[Future[Any]] = []

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        """Queue ``call(*args)``."""
        self._pending.append(self._pool.submit(call, *args))

    def idle(self) -> bool:
        """Nothing queued is still running."""
        return all(future.done() for future in self._pending)

    def join(self, raise_errors: bool = True) -> None:
        """Wait for every queued call; re-raise the first error unless ``raise_errors`` is
        False. The thread ends: nothing more may be submitted."""
        pending, self._pending = self._pending, []
        error = None
        for future in pending:
            failure = future.exception()
            error = error or failure
        self._pool.shutdown(wait=True)
        if error is not None and raise_errors:
            raise error
