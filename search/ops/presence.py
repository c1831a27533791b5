"""This process among a study's workers: each worker notes itself in the study (system
attribute ``worker:<host>:<pid>``, kept fresh by a heartbeat thread every
:data:`~search.engines.optuna_storage.HEARTBEAT_SECONDS`) when it joins, and notes that it
left when it stops. A worker is live when it has not left and its process is alive (same
machine) or its heartbeat is younger than :data:`~search.engines.optuna_storage.GRACE_SECONDS`
(another machine; clocks in sync)."""

from __future__ import annotations

import threading
import time
from typing import Any

import optuna

from search.engines.optuna_storage import GRACE_SECONDS, HEARTBEAT_SECONDS, owner
from search.ops.processes import alive, local_pid
from search.settings import WORKER_KEY


class Presence:
    """This process among the study's workers: noted at once, kept fresh by a daemon thread
    until :meth:`leave`."""

    def __init__(self, study: optuna.Study, who: str | None = None) -> None:
        self.study, self.who = study, who or owner()
        self._stop = threading.Event()
        self._note(left=False)
        self._thread = threading.Thread(
            target=self._beat, args=(HEARTBEAT_SECONDS,), daemon=True, name="worker-presence"
        )
        self._thread.start()

    def _note(self, left: bool) -> None:
        note_worker(self.study, self.who, {"beat": time.time(), "left": left})

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self._note(left=False)
            except Exception:  # a store away for over a minute: the next beat tries again
                continue

    def leave(self) -> bool:
        """Note that this worker left; True when no other worker is live (it is the last)."""
        if self._stop.is_set():
            return False
        self._stop.set()
        self._thread.join(timeout=5)
        self._note(left=True)
        return not live_workers(self.study)


def note_worker(study: optuna.Study, who: str, note: dict[str, Any]) -> None:
    """Keep ``note`` on worker ``who`` (a system attribute: not a setting of the study)."""
    study._storage.set_study_system_attr(study._study_id, WORKER_KEY + who, note)


def live_workers(study: optuna.Study) -> list[str]:
    """The study's workers (``host:pid``) that have not left and are alive."""
    notes = study._storage.get_study_system_attrs(study._study_id)
    return [
        key[len(WORKER_KEY) :]
        for key, value in notes.items()
        if key.startswith(WORKER_KEY) and _alive(key[len(WORKER_KEY) :], value)
    ]


def _alive(who: str, note: Any) -> bool:
    if not isinstance(note, dict) or note.get("left", True):
        return False
    pid = local_pid(who)
    if pid is not None:
        return alive(pid)
    return bool(time.time() - float(note.get("beat", 0.0)) < GRACE_SECONDS)
