"""The command's exit skips the interpreter's tear-down, not the program's clean-up."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_exit_now_keeps_the_exit_code_threads_handlers_and_buffered_output() -> None:
    script = """
import atexit, sys, threading, time
from search.ops.exit import exit_now
atexit.register(lambda: print("handler ran", flush=True))
threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished"))).start()
sys.stdout.write("buffered ")
exit_now(3)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered thread finished\nhandler ran\n"


def test_exit_now_does_not_wait_for_an_idle_executor_nobody_shut_down() -> None:
    script = """
from concurrent.futures import ThreadPoolExecutor
from search.ops.exit import exit_now
pool = ThreadPoolExecutor(max_workers=1)  # its worker thread waits for work, not daemon
print(pool.submit(lambda: "worked").result())
exit_now(0)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "worked\n"), done.stderr


def test_the_command_line_exits_with_the_command_s_code() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "search.cli", "search", "--trials", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "error:" in done.stderr and "Traceback" not in done.stderr
