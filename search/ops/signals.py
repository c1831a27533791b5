"""SIGINT and SIGTERM end a search cleanly: the running trial is marked failed (Optuna and
MLflow), the parent run is closed, one line is printed, and the exit code is 130 or 143.

TensorFlow can turn a ``KeyboardInterrupt`` raised inside its ops into a ``RuntimeError``,
which a trial's error handling would record as an ordinary failed trial and go on; so the
handler also remembers the signal, and :func:`raise_if_received` re-raises it after any
exception.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """The process received SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as shells report it (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


_received: int | None = None
#: A signal whose :class:`Interrupted` Python could not raise where it arrived.
_unraised: int | None = None
#: Signals received so far (a block can tell whether one arrived inside it).
_count = 0
_deferring = False


def _handle(signum: int, frame: FrameType | None) -> None:
    global _received, _count
    _received = signum
    _count += 1
    if not _deferring:
        raise Interrupted(signum)


@contextmanager
def shielded() -> Iterator[None]:
    """Steps that must not stop half-way: a database commit (an interrupt inside SQLAlchemy
    can leave a connection holding the sqlite write lock), a run created and noted on its
    trial. A signal that arrives inside the block is raised as it ends, once the steps are done;
    nested blocks raise at the outermost. Only the main thread, where Python runs signal
    handlers, is shielded."""
    global _deferring
    if threading.current_thread() is not threading.main_thread() or _deferring:
        yield
        return
    before = _count
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _count != before:
        raise_if_received()


@contextmanager
def stop_announced(echo: Callable[[str], object]) -> Iterator[None]:
    """Says at once that an interrupt (Ctrl-C, SIGTERM) is stopping the command: ending the
    trainings and writing the study's views take seconds before it exits."""
    try:
        yield
    except KeyboardInterrupt:
        echo("stopping: the running trainings end as failed, then the study's views are written")
        raise


@contextmanager
def handled() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only);
    the previous handlers come back afterwards."""
    global _received, _deferring, _unraised
    _received = _unraised = None
    _deferring = False
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, _handle)
    unraisable = sys.unraisablehook

    def quiet(hook_args: sys.UnraisableHookArgs) -> None:
        """An :class:`Interrupted` raised where Python cannot propagate it (a weakref
        callback, a ``__del__``) prints no traceback: :func:`raise_unraised` raises it at
        the next check (a training's next batch). Anything else goes to the hook before."""
        global _unraised
        if isinstance(hook_args.exc_value, Interrupted):
            _unraised = hook_args.exc_value.signum
        else:
            unraisable(hook_args)

    sys.unraisablehook = quiet
    try:
        yield
    finally:
        _unraised = None
        sys.unraisablehook = unraisable
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def forget() -> None:
    """Forget a signal received before (a new command starts)."""
    global _received
    _received = None


def received() -> Interrupted | None:
    """The interrupt of the last :func:`handled` block, if a signal arrived in it."""
    return None if _received is None else Interrupted(_received)


def raise_unraised() -> None:
    """Raise, once, the :class:`Interrupted` that Python could not raise where its signal
    arrived (a weakref callback during garbage collection); otherwise the work it should have
    stopped would go on. Long work calls this often (a training, at every batch)."""
    global _unraised
    if _unraised is not None:
        signum, _unraised = _unraised, None
        raise Interrupted(signum)


def raise_if_received() -> None:
    """Raise :class:`Interrupted` when a signal arrived (whatever exception it became)."""
    if _received is not None:
        raise Interrupted(_received)
