"""Liveness of this machine's processes (``psutil``: on Windows ``os.kill`` would end them)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from search.ops.processes import alive, local_pid


def test_this_process_is_alive() -> None:
    assert alive(os.getpid())


def test_a_reaped_child_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert child.wait(timeout=60) == 0  # reaped: its pid is free
    assert not alive(child.pid)


@pytest.mark.parametrize(
    ("who", "pid"),
    [
        (f"{socket.gethostname()}:123", 123),
        ("another-host:123", None),
        (f"{socket.gethostname()}:", None),
        ("no-colon", None),
    ],
)
def test_local_pid_only_for_this_machine(who: str, pid: int | None) -> None:
    assert local_pid(who) == pid
