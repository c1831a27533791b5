"""Processes of this machine, named ``host:pid`` on the trials and workers they own.

Liveness is asked of the operating system without signalling the process: on Windows,
``os.kill(pid, 0)`` does not test a process but terminates it."""

from __future__ import annotations

import socket

import psutil


def local_pid(who: str) -> int | None:
    """The pid of ``who`` (``host:pid``) when ``host`` is this machine; None otherwise."""
    host, _, pid = who.rpartition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one not yet reaped counts)."""
    return bool(psutil.pid_exists(pid))
