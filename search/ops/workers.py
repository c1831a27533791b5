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
:data:`~search.engines.optuna_storage.HEARTBEAT_SECONDS`) when it joins, and notes that it left when
it stops. A worker that stops closes the parent run only when no other worker is live: not
left, and its process alive (same machine) or its heartbeat younger than
:data:`~search.engines.optuna_storage.GRACE_SECONDS` (another machine; clocks in sync). A worker
killed with ``kill -9`` counts as gone at once on its machine, after the grace elsewhere.
Two workers leaving in the same instant may both close the run, which is idempotent.
(``search --workers N`` itself closes the run after its confirmation, as a single search does.)

With GPUs, each worker started by ``search --workers N`` sees one of them alone
(:func:`~search.ops.devices.worker_environments`).
"""

from __future__ import annotations

import os
import subprocess
import sys

import optuna

from search.data import load_dataset
from search.data.boxes import parse_sources, study_inference
from search.engines.common import SearchOptions, StudyError
from search.engines.lookup import recorded_boxes
from search.engines.optuna import ENGINE, OptunaSearch
from search.engines.optuna_storage import open_storage, owner
from search.engines.optuna_study import DEFAULT_ALGORITHM, sampler_seed
from search.ops.devices import VISIBLE, describe_device, visible_gpus, worker_environments
from search.ops.presence import Presence
from search.ops.uris import WARNED
from search.results.views import Printer
from search.settings import BUILT_IN_MODEL, DEFAULT_BOXES, DEFAULT_PRUNER, StudyKey, derive_seed
from search.space import Space, SpaceFile


class WorkerError(StudyError):
    """A worker cannot join the study as asked (a user mistake: one line)."""


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
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        # Through the retrying storage: a worker started while the database restarts waits.
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:
        raise WorkerError(
            f"no study '{name}' in this storage; start it with cropsearch search"
        ) from None
    attrs = study.user_attrs
    if StudyKey.SPACE_SPEC not in attrs or StudyKey.DATA not in attrs:
        raise WorkerError(
            f"study '{name}' holds no search settings to join (started by an older cropsearch "
            "or by another tool)"
        )
    engine = attrs.get(StudyKey.ENGINE, ENGINE)
    if engine != ENGINE:
        raise WorkerError(f"study '{name}' runs on the {engine} engine; workers need optuna")
    data = load_dataset(str(attrs[StudyKey.DATA]))
    if data.fingerprint != attrs.get(StudyKey.DATA_FINGERPRINT):
        raise WorkerError(
            f"this machine's data for {attrs[StudyKey.DATA]} differs from the study's "
            f"(fingerprint {data.fingerprint}, the study's "
            f"{attrs.get(StudyKey.DATA_FINGERPRINT)}): copy the same files"
        )
    space = Space(
        SpaceFile.model_validate(attrs[StudyKey.SPACE_SPEC]),
        str(attrs.get(StudyKey.SPACE, "<study>")),
    )
    model = attrs.get(StudyKey.MODEL)
    sources = recorded_boxes(attrs) or [DEFAULT_BOXES]
    options = SearchOptions(
        trials=trials,
        epochs=int(attrs[StudyKey.EPOCHS]),
        seed=int(attrs[StudyKey.SEED]),
        study=name,
        storage=storage,
        tracking_uri=tracking_uri,
        screen=float(attrs[StudyKey.SCREEN_FRACTION]),
        screen_epochs=int(attrs.get(StudyKey.SCREEN_EPOCHS, attrs[StudyKey.EPOCHS])),
        confirm=False,
        model=None if model in (None, BUILT_IN_MODEL) else str(model),
        algorithm=str(attrs.get(StudyKey.ALGORITHM, DEFAULT_ALGORITHM)),
        pruner=attrs.get(StudyKey.PRUNER, DEFAULT_PRUNER),
        boxes=sources[0],
        objectives=tuple(sources) if len(sources) > 1 else (),
    )
    # Validation and test are scored with the boxes the study chose for, as in its search.
    scored, boxes = study_inference(parse_sources(sources), data, options.seed)
    search = OptunaSearch(scored, space, options, echo=echo, boxes=boxes)
    me = owner()
    seed = derive_seed(sampler_seed(options.seed, len(search.study.trials)), f"worker/{me}")
    search.use_sampler(seed)
    search.tracker.set_tags(search.parent_id, {f"sampler_seed.{me}": str(seed)})
    echo(f"worker {me} joined study '{name}' on {describe_device()} (sampler seed {seed})")
    return search


def run_worker(search: OptunaSearch, total: int | None, close: bool) -> None:
    """Run trials until this worker's ``--trials`` or the study's ``total`` is reached; write
    the study views; with ``close``, end the parent run if this is the last live worker."""
    search.stop_at, search.shared = total, True
    presence = Presence(search.study)
    try:
        search.optimize(search.options.trials, None)
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
        WARNED: "1",  # the search warned about a password in a URL
    }
    places = worker_environments(workers, len(visible_gpus()))
    gpus = ", ".join(place[VISIBLE] for place in places if place)
    echo(
        f"starting {workers} workers ({threads} intra-op thread(s) each"
        + (f"; GPU {gpus}" if gpus else "")
        + ")"
    )
    return [subprocess.Popen(command, env={**env, **place}) for place in places]


def wait_workers(processes: list[subprocess.Popen[bytes]]) -> int:
    """Wait for every worker; the worst exit code (0 when all succeeded)."""
    codes = [process.wait() for process in processes]
    return max(codes, key=abs, default=0)
