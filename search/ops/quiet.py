"""Keep a library's start-up lines off the terminal, without importing it before it is needed.

TensorFlow's C++ side writes absl's "All log messages before absl::InitializeLog()" warning and
the oneDNN notice to file descriptor 2 while ``import tensorflow`` runs, even with
``TF_CPP_MIN_LOG_LEVEL=2`` (measured: four lines per process). Python's ``sys.stderr`` never
sees them, so :func:`silence_first_import` redirects the descriptor itself around that one
import, wherever it happens (a loader, Keras, a figure), and shows the lines only if the import
fails.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import tempfile
import types
from collections.abc import Callable, Iterator, Sequence


@contextlib.contextmanager
def stderr_to_file() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block; replay it if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _SilentFirstImport(importlib.abc.MetaPathFinder):
    """Finds ``name`` once, through the normal finders, and runs its module code silenced,
    then ``then(module)`` (a first call that also writes to file descriptor 2)."""

    def __init__(self, name: str, then: Callable[[types.ModuleType], object] | None) -> None:
        self.name, self.then = name, then

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps find_spec below from recursing
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is not None and hasattr(loader, "exec_module"):
            run = loader.exec_module

            then = self.then

            def exec_module(module: types.ModuleType) -> None:
                with stderr_to_file():
                    run(module)
                    if then is not None:
                        then(module)

            loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def silence_first_import(
    name: str, then: Callable[[types.ModuleType], object] | None = None
) -> None:
    """Silence file descriptor 2 while module ``name`` is first imported, and while
    ``then(module)`` runs right after (no-op once loaded)."""
    if name in sys.modules or any(
        isinstance(finder, _SilentFirstImport) and finder.name == name for finder in sys.meta_path
    ):
        return
    sys.meta_path.insert(0, _SilentFirstImport(name, then))


def _list_devices(tf: types.ModuleType) -> None:
    # The first device listing of a GPU-capable TensorFlow tries CUDA and, on a machine
    # without a GPU driver, logs "failed call to cuInit" at error level.
    tf.config.list_physical_devices()


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keep TensorFlow's start-up lines (absl, oneDNN, and CUDA's absence on a machine without
    a GPU: written by C++ to file descriptor 2 even with TF_CPP_MIN_LOG_LEVEL=2) off the
    terminal unless ``verbose``; TensorFlow is still imported only where it is needed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not verbose:
        silence_first_import("tensorflow", then=_list_devices)


class _CursorCloseNoise(logging.Filter):
    """Drops SQLAlchemy's "Error closing cursor" records: when a signal or a lost connection
    ends a query, SQLAlchemy logs the failed close with a full traceback before the original
    error reaches us, and that error is what we report (in one line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Error closing cursor"


class _StderrNow(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (it may be replaced)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def quiet_store_noise() -> None:
    """Route SQLAlchemy's connection-pool log records through one stderr handler that leaves
    out the cursor-close noise (without a handler, Python's last resort prints them whole)."""
    pool = logging.getLogger("sqlalchemy.pool")
    if any(isinstance(f, _CursorCloseNoise) for h in pool.handlers for f in h.filters):
        return
    handler = _StderrNow()
    handler.setLevel(logging.WARNING)
    handler.addFilter(_CursorCloseNoise())
    pool.addHandler(handler)
