"""Trainings that do not depend on each other (the anchors, a confirmation round's runs, the
baseline's confirmation runs beside the screening), in parallel processes with one TensorFlow
thread each.

On a 2-core machine, 2 processes x 1 thread train 1.31x the runs per hour of 1 process x 2
threads (``benchmarks/workers.py``). Each process holds the study's data and its own MLflow
client, trains a :class:`~search.study.trial.TrialSetup` through
:func:`~search.study.trial.run_trial` and sends back its record. A run's numbers depend only
on its setup (seeds included) and the thread count, so the same command gives the same tables
whichever process finishes first.

A terminal's Ctrl-C reaches the whole process group: the processes ignore SIGINT and the
command stops them with SIGTERM, which ends their runs as failed (as in the command itself)
and the process with exit code 143, quietly: the command prints the one line.
A process that dies (out of memory, kill -9) fails its run's record.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn

from search.study.record import TrialRecord
from search.study.trial import TrialSetup

if TYPE_CHECKING:
    from search.data import Dataset

#: Seconds a stopped process gets to end its run before it is killed.
STOP_SECONDS = 20.0
#: Where a run is noted as it starts: an Optuna storage URL and the trial's id in it (a dead
#: command's trial then has its run closed by the next command on the study).
Note = tuple[str, int]
#: One training for a process: its job number, the setup, whether to log crop samples, and
#: where to note its run.
Task = tuple[int, TrialSetup, bool, Note | None]
#: The environment variable that sets ``--processes`` for every command.
PROCESSES_VARIABLE = "CROPSEARCH_PROCESSES"
#: Most processes chosen on their own: each holds the data and a TensorFlow runtime.
MAX_PROCESSES = 4


@dataclass(frozen=True)
class Split:
    """How a machine's cores are shared: ``processes`` trainings at a time, each with
    ``threads`` TensorFlow intra-op threads."""

    processes: int
    threads: int

    def __str__(self) -> str:
        plural = "es" if self.processes != 1 else ""
        return f"{self.processes} process{plural} x {self.threads} thread(s)"


def core_split(processes: int | None = None, cores: int | None = None) -> Split:
    """The split for this machine (``cores``: ``os.cpu_count()``): one process per core, at
    most :data:`MAX_PROCESSES`, unless ``processes`` (else ``$CROPSEARCH_PROCESSES``) says;
    the threads share the cores."""
    cores = max(cores or os.cpu_count() or 1, 1)
    if processes is None and os.environ.get(PROCESSES_VARIABLE, "").strip().isdigit():
        processes = int(os.environ[PROCESSES_VARIABLE])
    count = processes if processes is not None else min(cores, MAX_PROCESSES)
    count = max(count, 1)
    return Split(count, max(cores // count, 1))


@dataclass
class _Started:
    """Training processes started ahead of their pool, importing TensorFlow while the
    command loads its data; they wait for their :class:`PoolContext`."""

    split: Split
    results: multiprocessing.Queue[tuple[int, int, TrialRecord]]
    slots: list[tuple[BaseProcess, multiprocessing.Queue[PoolContext | Task | None]]]


_STARTED: list[_Started] = []


def start_early(processes: int | None) -> None:
    """Start the training processes of :func:`core_split` now (nothing when it is one
    process, or when they are started already), so that their start-up overlaps the
    command's; the next :class:`TrainingPool` of the same split takes them."""
    split = core_split(processes)
    if split.processes == 1 or _STARTED:
        return
    spawn = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[int, int, TrialRecord]] = spawn.Queue()
    slots = [_spawn(slot, split.threads, results) for slot in range(split.processes)]
    _STARTED.append(_Started(split, results, slots))


def _spawn(
    slot: int, threads: int, results: multiprocessing.Queue[tuple[int, int, TrialRecord]]
) -> tuple[BaseProcess, multiprocessing.Queue[PoolContext | Task | None]]:
    spawn = multiprocessing.get_context("spawn")  # no fork of a threaded process
    inbox: multiprocessing.Queue[PoolContext | Task | None] = spawn.Queue()
    # A process that died before reading its context leaves the feeder thread blocked on a
    # full pipe; the command must still exit (it would wait for that thread at exit).
    inbox.cancel_join_thread()
    process = spawn.Process(
        target=_serve,
        args=(slot, threads, inbox, results),
        name=f"cropsearch-trainer-{slot}",
        daemon=True,
    )
    process.start()
    return process, inbox


@dataclass(frozen=True)
class PoolContext:
    """What every process needs: the data (scored with the study's boxes), the MLflow store,
    the study's name and parent run, and its thread count."""

    data: Dataset
    tracking_uri: str
    study: str
    parent_id: str
    threads: int


class TrainingPool:
    """``processes`` training processes. :meth:`train` runs setups on them and waits;
    :meth:`submit` queues setups to train in the background while the command does other
    work (:meth:`poll` keeps the processes fed), and :meth:`results` collects them."""

    def __init__(self, context: PoolContext, processes: int) -> None:
        self._context = context
        started = _STARTED.pop() if _STARTED else None
        if started is not None and started.split == Split(processes, context.threads):
            self._results = started.results
            self._slots = started.slots
            for _, inbox in self._slots:
                inbox.put(context)
        else:
            if started is not None:  # another split: they end as a closed pool's do
                for _, inbox in started.slots:
                    inbox.put(None)
            self._results = multiprocessing.get_context("spawn").Queue()
            self._slots = [self._start(slot) for slot in range(processes)]
        self._tasks: dict[int, Task] = {}  # job -> its task
        self._waiting: deque[int] = deque()
        self._busy: dict[int, int] = {}  # slot -> the job it trains
        self._finished: dict[int, TrialRecord] = {}
        #: How many setups train at a time.
        self.processes = processes

    def _start(
        self, slot: int
    ) -> tuple[BaseProcess, multiprocessing.Queue[PoolContext | Task | None]]:
        process, inbox = _spawn(slot, self._context.threads, self._results)
        inbox.put(self._context)
        return process, inbox

    def __enter__(self) -> TrainingPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is None:
            self.close()
        else:
            self.stop()

    def submit(
        self,
        setups: Sequence[TrialSetup],
        crop_samples: bool = False,
        notes: Sequence[Note] | None = None,
    ) -> list[int]:
        """Queue ``setups`` (first in, first out) and start what free processes can take;
        returns their jobs. ``notes``: where to note each setup's run as it starts."""
        jobs = []
        for index, setup in enumerate(setups):
            job = len(self._tasks)
            self._tasks[job] = (job, setup, crop_samples, None if notes is None else notes[index])
            self._waiting.append(job)
            jobs.append(job)
        self._assign()
        return jobs

    def poll(self) -> None:
        """Take the results that are in and give free processes their next setup; never
        waits."""
        self._receive(block=False)

    def results(self, jobs: Sequence[int]) -> Iterator[tuple[int, TrialRecord]]:
        """Wait for ``jobs``; yield ``(position in jobs, record)`` as each finishes (any
        order). A job whose process dies gets a failed record, and a new process takes the
        slot."""
        position = {job: i for i, job in enumerate(jobs)}
        left = set(jobs)
        while left:
            for job in [j for j in left if j in self._finished]:
                left.discard(job)
                yield position[job], self._finished.pop(job)
            if left:
                self._receive(block=True)

    def train(
        self,
        setups: Sequence[TrialSetup],
        crop_samples: bool = False,
        notes: Sequence[Note] | None = None,
    ) -> Iterator[tuple[int, TrialRecord]]:
        """Train ``setups`` (after any queued before); yield ``(index, record)`` as each
        finishes (any order), as :meth:`results`."""
        yield from self.results(self.submit(setups, crop_samples, notes))

    def _assign(self) -> None:
        for slot, (_, inbox) in enumerate(self._slots):
            if slot not in self._busy and self._waiting:
                job = self._busy[slot] = self._waiting.popleft()
                inbox.put(self._tasks[job])

    def _receive(self, block: bool) -> None:
        """Keep the records that came back (waiting up to a second for one when ``block``);
        fail the job of a process that died; then hand out waiting jobs."""
        try:
            while True:
                slot, job, record = self._results.get(timeout=1.0 if block else 0.0)
                self._busy.pop(slot, None)
                self._finished[job] = record
                block = False
        except queue.Empty:
            for slot in [s for s in self._busy if not self._slots[s][0].is_alive()]:
                job = self._busy.pop(slot)
                code = self._slots[slot][0].exitcode
                self._slots[slot] = self._start(slot)
                error = f"the training process died (exit code {code})"
                self._finished[job] = self._tasks[job][1].record(1, state="failed", error=error)
        self._assign()

    def close(self) -> None:
        """Let the processes finish and exit."""
        for _, inbox in self._slots:
            inbox.put(None)
        self._join()

    def stop(self) -> None:
        """Stop the processes now: SIGTERM ends their runs as failed; kill after a grace."""
        for process, _ in self._slots:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        self._join()

    def _join(self) -> None:
        for process, _ in self._slots:
            process.join(STOP_SECONDS)
            if process.is_alive():
                process.kill()


@contextmanager
def open_pool(
    processes: int | None,
    data: Dataset,
    tracking_uri: str,
    study: str,
    parent_id: str,
    echo: Callable[[str], None] = print,
) -> Iterator[TrainingPool | None]:
    """A :class:`TrainingPool` for this machine's :func:`core_split` (None when it is one
    process), announced through ``echo``; stopped on an error or interrupt, closed after."""
    split = core_split(processes)
    echo(
        f"anchors and confirmation rounds train in {split} ({os.cpu_count()} cores; "
        "--processes changes it)"
    )
    if split.processes == 1:
        yield None
        return
    context = PoolContext(data, tracking_uri, study, parent_id, split.threads)
    with TrainingPool(context, split.processes) as pool:
        yield pool


def _serve(
    slot: int,
    threads: int,
    inbox: multiprocessing.Queue[PoolContext | Task | None],
    results: multiprocessing.Queue[tuple[int, int, TrialRecord]],
) -> None:
    """One training process: set up TensorFlow's threads once, wait for the pool's context,
    then train what comes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command decides; SIGTERM stops us
    from search.ops.quiet import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from search.ops.signals import Interrupted, handled
    from search.results.tracking import Tracker
    from search.study.trial import run_trial

    context = inbox.get()
    if not isinstance(context, PoolContext):
        _leave(results)
    tracker = Tracker(context.tracking_uri, context.study)
    with handled():
        # Only the command's SIGTERM stops a run here: a terminal's SIGINT reaches us too,
        # and a second signal during a run's clean-up would leave it RUNNING.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            while isinstance(task := inbox.get(), tuple):
                index, setup, crop_samples, note = task
                record = run_trial(
                    setup,
                    context.data,
                    tracker,
                    context.parent_id,
                    crop_samples=crop_samples,
                    on_start=None if note is None else partial(_note_run, *note),
                )
                results.put((slot, index, record))
        except Interrupted as stopped:  # the run is failed; the command prints the one line
            _leave(results, stopped.exit_code)
    _leave(results)


def _leave(results: multiprocessing.Queue[tuple[int, int, TrialRecord]], code: int = 0) -> NoReturn:
    """End a training process whose runs are closed: its results sent (unless it was
    stopped: the command no longer reads them), it exits with ``code`` without the
    interpreter's tear-down of TensorFlow (1-3 s here, which the pool would wait for)."""
    if code:
        results.cancel_join_thread()
    results.close()
    results.join_thread()  # the last result is in the pipe
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _note_run(storage: str, trial_id: int, run_id: str) -> None:
    """Note a trial's MLflow run on it, in its Optuna storage."""
    import optuna

    from search.settings import TrialKey

    optuna.storages.get_storage(storage).set_trial_user_attr(trial_id, TrialKey.RUN_ID, run_id)
