"""The Optuna storage a study's processes share, and the faults it survives: the heartbeat
and its one retry of a dead process's trial, calls retried over a lost connection, repairing
trials whose process died or was interrupted, and waiting for a twin another process trains."""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import json
import os
import socket
import time
import uuid
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
import sqlalchemy.orm
from optuna.storages._rdb import models
from optuna.trial import TrialState

from search.ops.processes import alive, local_pid
from search.ops.retry import retried
from search.ops.signals import raise_if_received, shielded
from search.results.tracking import Tracker
from search.settings import TrialKey
from search.study.record import TrialRecord

#: Optuna heartbeat: a trial whose process has not beaten for GRACE seconds is failed by the
#: next process that opens the study (a dead process on this machine is found at once).
HEARTBEAT_SECONDS, GRACE_SECONDS = 10, 30
#: A trial whose configuration another process is training checks on it this often, and
#: waits for it at most this long (a dead twin is failed within the heartbeat's grace).
TWIN_POLL_SECONDS, TWIN_WAIT_SECONDS = 2.0, 6 * 3600.0
#: The system attribute of a trial that names the call which created it (see
#: :meth:`RetryingRDBStorage._create_new_trial`).
CREATED = "cropsearch:created"
#: Storage calls retried while the database connection is lost (idempotent ones, and those
#: a trial cannot go without).
_RETRIED = (
    "set_trial_param",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_user_attrs", "get_study_system_attrs", "get_trial", "get_all_trials",
    "get_trial_id_from_study_id_trial_number", "get_best_trial", "record_heartbeat",
    "_get_stale_trial_ids",
    # Optuna's _CachedStorage, which wraps every RDB storage a study opens, calls these
    # private methods instead of the public ones: unwrapped, an interrupt inside one left its
    # sqlite transaction open (the database locked) and a lost connection was not retried.
    "_set_trial_param", "_get_trials", "_get_best_trial_id",
)  # fmt: skip


def open_storage(storage: str) -> str | optuna.storages.BaseStorage:
    """The study storage for ``storage``: an RDB URL becomes Optuna's RDB storage with the
    heartbeat (a dead worker's trial gets failed) and retried calls; others pass as they are."""
    if not storage.startswith(("sqlite:", "postgresql", "mysql")):
        return storage
    # A server that accepts the connection but never answers must not hang the command.
    # A connection the server dropped (a restart) is replaced before use (pool_pre_ping).
    connect: dict[str, Any] = (
        {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
        if storage.startswith("postgresql")
        else {}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Opening connects and reads the schema version: retried too (a worker started while
        # the database restarts waits for it, as its calls do).
        return retried(
            RetryingRDBStorage,
            storage,
            engine_kwargs=connect or None,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=retry_dead_trial,
            what=f"the study storage {storage}",
        )


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage whose calls around a trial (ask, report, attributes, tell, the
    heartbeat) survive a lost connection: retried for up to a minute (:mod:`search.ops.retry`)."""

    def _create_new_trial(
        self, study_id: int, template_trial: optuna.trial.FrozenTrial | None = None
    ) -> optuna.trial.FrozenTrial:
        """Optuna's call (what ``study.ask`` and ``add_trial`` reach), retried. Every attempt of
        one call carries one token, so an attempt whose insert committed before its connection
        dropped is found again instead of leaving a second, ownerless RUNNING trial."""
        token = uuid.uuid4().hex
        template = _carrying(template_trial, token)
        create = super()._create_new_trial
        return retried(create, study_id, template, what=f"the study storage {self.url}")

    def _get_prepared_new_trial(
        self,
        study_id: int,
        template_trial: optuna.trial.FrozenTrial | None,
        session: sqlalchemy.orm.Session,
    ) -> models.TrialModel:
        token = None if template_trial is None else template_trial.system_attrs.get(CREATED)
        if token is not None:
            created = (
                session.query(models.TrialModel)
                .join(models.TrialSystemAttributeModel)
                .filter(models.TrialModel.study_id == study_id)
                .filter(models.TrialSystemAttributeModel.key == CREATED)
                .filter(models.TrialSystemAttributeModel.value_json == json.dumps(token))
                .one_or_none()
            )
            if created is not None:
                return created
        return super()._get_prepared_new_trial(study_id, template_trial, session)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        """Optuna's call, retried; a retry that finds the trial already finished as asked is a
        success (the lost attempt committed before its connection dropped)."""
        attempts = 0

        def attempt() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return super(RetryingRDBStorage, self).set_trial_state_values(
                    trial_id, state, values
                )
            except optuna.exceptions.UpdateFinishedTrialError:
                if attempts > 1 and _finished_as(self.get_trial(trial_id), state, values):
                    return True
                raise

        return retried(attempt, what=f"the study storage {self.url}")


def _carrying(template: optuna.trial.FrozenTrial | None, token: str) -> optuna.trial.FrozenTrial:
    """``template`` (a new RUNNING trial when None, as Optuna would create) with ``token``."""
    if template is None:
        return optuna.trial.FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            values=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={CREATED: token},
            intermediate_values={},
            trial_id=-1,
        )
    carried = copy.deepcopy(template)
    carried.system_attrs = {**template.system_attrs, CREATED: token}
    return carried


def _finished_as(
    trial: optuna.trial.FrozenTrial, state: TrialState, values: Sequence[float] | None
) -> bool:
    """Whether ``trial`` holds exactly the ``state`` and ``values`` a tell asked for."""
    stored = list(trial.values or []) if values is not None else []
    return trial.state == state and stored == [float(v) for v in values or []]


def _retrying(name: str) -> Any:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: optuna.storages.RDBStorage, *args: Any, **kwargs: Any) -> Any:
        return retried(method, self, *args, what=f"the study storage {self.url}", **kwargs)

    return call


def _shielding(name: str) -> Any:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: optuna.storages.RDBStorage, *args: Any, **kwargs: Any) -> Any:
        with shielded():  # an interrupt inside a transaction would leave the database locked
            return method(self, *args, **kwargs)

    return call


_OWN = set(vars(RetryingRDBStorage))  # the calls the class defines itself
for _name in _RETRIED:
    setattr(RetryingRDBStorage, _name, _retrying(_name))
for _name in dir(optuna.storages.BaseStorage):
    if not _name.startswith("_") and _name not in _RETRIED and _name not in _OWN:
        setattr(RetryingRDBStorage, _name, _shielding(_name))


def retry_dead_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a trial whose process died again, once, with its parameters (Optuna's
    ``RetryHeartbeatStaleTrialCallback`` with ``max_retry=1``, minus the dead process's owner
    and run, which a live worker could otherwise take for a dead one before it notes its own)."""
    history = list(trial.system_attrs.get("retry_history", []))
    if history:  # already a retry
        return
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={
                k: v
                for k, v in trial.user_attrs.items()
                if k not in (TrialKey.OWNER, TrialKey.RUN_ID)
            },
            system_attrs={
                **trial.system_attrs,
                "failed_trial": trial.number,
                "retry_history": [trial.number],
            },
        )
    )


def owner() -> str:
    """This process, as noted on the trials it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(trial: optuna.trial.FrozenTrial) -> bool:
    """A running trial owned by a process of this machine that no longer exists."""
    pid = local_pid(str(trial.user_attrs.get(TrialKey.OWNER, "")))
    return pid is not None and not alive(pid)


def repair_stale_trials(study: optuna.Study, tracker: Tracker) -> list[int]:
    """Mark trials whose process died (here, or silent past the heartbeat's grace) failed,
    and close their MLflow runs as failed; returns the numbers of those this call repaired."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a no-op without a heartbeat
    repaired = []
    for trial in study.get_trials(deepcopy=False):
        changed = False
        if trial.state == TrialState.RUNNING and _dead_here(trial):
            # Optuna has no public call to fail another process's trial.
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            retry_dead_trial(
                study, study._storage.get_trial(trial._trial_id)
            )  # as the heartbeat would
            changed = True
        elif trial.state != TrialState.FAIL or TrialKey.RECORD in trial.user_attrs:
            continue
        changed = changed or trial.number in running  # the heartbeat failed it just now
        run_id = trial.user_attrs.get(TrialKey.RUN_ID)
        run_ids = [run_id] if run_id else []
        if changed and not run_id:  # killed between creating its run and noting the run's id
            run_ids = tracker.running_search_runs(trial.number)
        for run in run_ids:
            status = tracker.run_status(run)
            # FINISHED: killed after its run ended, before Optuna recorded the trial.
            if status == "RUNNING" or (changed and status == "FINISHED"):
                tracker.end_run(run, "failed", {"error": "its process died during the trial"})
                changed = True
        if changed:
            repaired.append(trial.number)
    return repaired


def fail_interrupted(study: optuna.Study, tracker: Tracker, shared: bool) -> list[int]:
    """After an interrupt, fail this process's trials that Optuna could not tell (the signal
    came between a trial's creation and its objective), with their runs; returns their numbers.
    Alone on the study, a trial not yet marked with an owner is ours too; a worker leaves such a
    trial to the heartbeat."""
    me = owner()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = trial.user_attrs.get(TrialKey.OWNER)
        if who != me and (who is not None or shared):
            continue
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        run_id = trial.user_attrs.get(TrialKey.RUN_ID)
        if run_id and tracker.run_status(run_id) == "RUNNING":
            tracker.end_run(run_id, "failed", {"error": "interrupted"})
        failed.append(trial.number)
    return failed


def configuration_key(record: TrialRecord) -> str:
    """What makes two screening trials the same training: policy, settings, seed and share."""
    policy, train = record.configuration()
    text = repr((policy, train, record.train.seed, round(record.train_fraction, 9)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def earlier_running_twin(
    study: optuna.Study, number: int, key: str
) -> optuna.trial.FrozenTrial | None:
    """The earliest running trial before ``number`` noted with configuration ``key``, whose
    process is alive. Only earlier trials count: of two twins started together, the later one
    waits and the earlier one trains."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if (
            trial.number < number
            and trial.user_attrs.get(TrialKey.CONFIGURATION) == key
            and not _dead_here(trial)
        ):
            return trial
    return None


def wait_for_trial(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    poll: float | None = None,
    limit: float | None = None,
) -> optuna.trial.FrozenTrial:
    """``trial`` once it is no longer running, its process died, or ``limit`` seconds passed
    (default TWIN_WAIT_SECONDS; checked every ``poll``, default TWIN_POLL_SECONDS). A twin on
    another machine whose heartbeat stops is failed after the grace period."""
    poll = TWIN_POLL_SECONDS if poll is None else poll
    deadline = time.monotonic() + (TWIN_WAIT_SECONDS if limit is None else limit)
    while True:
        current = study._storage.get_trial(trial._trial_id)
        if current.state != TrialState.RUNNING or _dead_here(current):
            return current
        if time.monotonic() > deadline:
            return current
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        raise_if_received()
        time.sleep(poll)
