"""Several processes on one study: ``cropsearch search --workers N`` and ``cropsearch worker``.

A worker joins an existing study and takes everything from it: the data spec (checked against
the study's fingerprint), the space (kept in the study), epochs, seed, screening share,
algorithm, pruner and model. Each worker's sampler gets its own seed, derived from the study's
seed, the trials already run and the worker's host and process, and logged on the parent run.

``search --workers N`` creates the stores, the study, the MLflow experiment and parent run and
queues the anchor trials once, in its own process, before it starts N workers; they share the
``--trials`` budget; it waits for them, then confirms and closes the parent run. On sqlite this
is safe on one machine (the database files exist before the workers open them; Optuna retries
a locked database); across machines use PostgreSQL.

Only the last worker to finish closes the parent run. Each worker notes itself in the study
(system attribute ``worker:<host>:<pid>``, kept fresh by a heartbeat thread every
:data:`~search.engines.optuna.HEARTBEAT_SECONDS`) when it joins, and notes that it left when
it stops. A worker that stops closes the parent run only when no other worker is live: not
left, and its process alive (same machine) or its heartbeat younger than
:data:`~search.engines.optuna.GRACE_SECONDS` (another machine; clocks in sync). A worker
killed with ``kill -9`` counts as gone at once on its machine, after the grace elsewhere.
Two workers leaving in the same instant may both close the run, which is idempotent.
(``search --workers N`` itself closes the run after its confirmation, as a single search does.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from search.settings import derive_seed

if TYPE_CHECKING:
    import optuna

    from search.engines.optuna import OptunaSearch
    from search.results.views import Printer

#: Study system attribute of each worker that joined: ``worker:<host>:<pid>``.
WORKER = "worker:"


class WorkerError(ValueError):
    """A worker cannot join the study as asked (a user mistake: one line)."""


class Presence:
    """This process among the study's workers: noted at once, kept fresh by a daemon thread
    until :meth:`leave`."""

    def __init__(self, study: optuna.Study, who: str | None = None) -> None:
        from search.engines.optuna_storage import HEARTBEAT_SECONDS, owner

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
    study._storage.set_study_system_attr(study._study_id, WORKER + who, note)


def live_workers(study: optuna.Study) -> list[str]:
    """The study's workers (``host:pid``) that have not left and are alive."""
    notes = study._storage.get_study_system_attrs(study._study_id)
    return [
        key[len(WORKER) :]
        for key, value in notes.items()
        if key.startswith(WORKER) and _alive(key[len(WORKER) :], value)
    ]


def _alive(who: str, note: Any) -> bool:
    from search.engines.optuna_storage import GRACE_SECONDS

    if not isinstance(note, dict) or note.get("left", True):
        return False
    host, _, pid = who.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return bool(time.time() - float(note.get("beat", 0.0)) < GRACE_SECONDS)


def threads_per_worker(workers: int) -> int:
    """Intra-op threads of each of ``workers`` processes: a fair share of this machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def set_threads(threads: int) -> None:
    """Limit TensorFlow's intra-op threads (before it runs anything)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)


def join_study(
    name: str, storage: str, tracking_uri: str, trials: int | None, echo: Printer = print
) -> OptunaSearch:
    """An :class:`OptunaSearch` on the existing study ``name``, with the study's settings and
    its own sampler seed; no confirmation (the command that started the study confirms)."""
    import optuna

    from search.data import load_dataset
    from search.engines.common import SearchOptions
    from search.engines.optuna import SPACE_SPEC, OptunaSearch, sampler_seed
    from search.engines.optuna import _sampler as make_sampler
    from search.engines.optuna_storage import owner
    from search.space import Space, SpaceFile

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise WorkerError(
            f"no study '{name}' in this storage; start it with cropsearch search"
        ) from None
    attrs = study.user_attrs
    if SPACE_SPEC not in attrs or "data" not in attrs:
        raise WorkerError(
            f"study '{name}' holds no search settings to join (started by an older cropsearch "
            "or by another tool)"
        )
    if attrs.get("engine", "optuna") != "optuna":
        raise WorkerError(
            f"study '{name}' runs on the {attrs['engine']} engine; workers need optuna"
        )
    data = load_dataset(str(attrs["data"]))
    if data.fingerprint != attrs.get("data_fingerprint"):
        raise WorkerError(
            f"this machine's data for {attrs['data']} differs from the study's (fingerprint "
            f"{data.fingerprint}, the study's {attrs.get('data_fingerprint')}): copy the same files"
        )
    space = Space(SpaceFile.model_validate(attrs[SPACE_SPEC]), str(attrs.get("space", "<study>")))
    options = SearchOptions(
        trials=trials,
        epochs=int(attrs["epochs"]),
        seed=int(attrs["seed"]),
        study=name,
        storage=storage,
        tracking_uri=tracking_uri,
        screen=float(attrs["screen_fraction"]),
        confirm=False,
        model=None if attrs.get("model") in (None, "compact_cnn") else str(attrs["model"]),
        algorithm=str(attrs.get("algorithm", "tpe")),
        pruner=attrs.get("pruner", "median"),
    )
    search = OptunaSearch(data, space, options, echo=echo)
    me = owner()
    seed = derive_seed(sampler_seed(options.seed, len(search.study.trials)), f"worker/{me}")
    search.study.sampler = make_sampler(seed, options.algorithm or "tpe", space)
    search.tracker.set_tags(search.parent_id, {f"sampler_seed.{me}": str(seed)})
    echo(f"worker {me} joined study '{name}' (sampler seed {seed})")
    return search


def run_worker(search: OptunaSearch, total: int | None, close: bool) -> None:
    """Run trials until this worker's ``--trials`` or the study's ``total`` is reached; write
    the study views; with ``close``, end the parent run if this is the last live worker."""
    search.stop_at, search.shared = total, True
    presence = Presence(search.study)
    try:
        search._optimize(search.options.trials, None)
    finally:
        last = presence.leave()
        search.views(search.records.confirmation(), close=close and last)


def start_workers(
    search: OptunaSearch, workers: int, total: int, echo: Printer = print
) -> list[subprocess.Popen[bytes]]:
    """Start ``workers`` ``cropsearch worker`` processes on ``search``'s study (created, with
    its anchors queued); they stop together at ``total`` started trials."""
    search.enqueue_anchors()
    threads = threads_per_worker(workers)
    command = [
        sys.executable, "-m", "search.cli", "worker", "--study", search.name,
        "--total", str(total), "--threads", str(threads), "--keep-open",
    ]  # fmt: skip
    # The URLs go by environment, not argv: a password in them stays out of `ps`.
    env = {
        **os.environ,
        "CROPSEARCH_STORAGE": search.options.storage,
        "CROPSEARCH_TRACKING_URI": search.options.tracking_uri,
    }
    echo(f"starting {workers} workers ({threads} intra-op thread(s) each)")
    return [subprocess.Popen(command, env=env) for _ in range(workers)]


def wait_workers(processes: list[subprocess.Popen[bytes]]) -> int:
    """Wait for every worker; the worst exit code (0 when all succeeded)."""
    codes = [process.wait() for process in processes]
    return max(codes, key=abs, default=0)
