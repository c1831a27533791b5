"""Leave the process without the interpreter's own tear-down.

Once a command has imported TensorFlow, Python's finalization (its modules, its thread pools,
their C++ destructors) takes about 1.4 s here after the last line is printed
(``benchmarks/README.md``, time to an answer). Everything a normal exit does for the program
still happens first: non-daemon threads finish, the ``atexit`` handlers run (logging's
flush, multiprocessing's clean-up of its processes and queues, MLflow's and Optuna's), and the
standard streams are flushed.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Exit with ``code`` after the program's own clean-up, skipping the interpreter's."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
