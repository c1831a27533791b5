"""Leave the process without the interpreter's own tear-down.

Once a command has imported TensorFlow, Python's finalization (its modules, their C++
destructors) takes 1.4-2.7 s here after the last line is printed (``benchmarks/README.md``,
time to an answer). :func:`exit_now` does first, in the same order, everything the
interpreter's exit does for the program: the shutdown of threads (executors' idle workers are
woken and every non-daemon thread is joined), the ``atexit`` handlers (logging's flush,
multiprocessing's clean-up of its processes and queues, MLflow's and Optuna's), and the flush
of the standard streams. Only the tear-down of the modules is skipped.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Exit with ``code`` after the program's own clean-up, skipping the interpreter's."""
    # The interpreter's first step at exit (Py_FinalizeEx). It runs the thread-exit hooks
    # (concurrent.futures wakes its idle workers there) before it joins the threads, so a
    # plain join of every thread would wait for ever on an executor nobody shut down.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
