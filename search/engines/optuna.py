"""The Optuna engine: asks the space for configurations, calls the trial function, reports to
its pruner, and keeps each trial's :class:`TrialRecord` in the Optuna storage."""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from search.config import TrainConfig, derive_seed
from search.confirm import Confirmation, ConfirmPlan, confirm
from search.data import Dataset
from search.engines.common import (
    Pruner,
    SearchOptions,
    StudyError,
    data_report,
    default_study_name,
    plan_budget,
    screen_fraction,
    screen_index,
    study_params,
)
from search.names import check_study_name
from search.record import OBJECTIVE, TrialRecord
from search.report import clock, progress_line
from search.retry import retried
from search.signals import raise_if_received
from search.space import Space, split_values
from search.stores import created_once
from search.tracking import Tracker
from search.trial import TrialSetup, reuse_trial, run_trial
from search.views import Printer, ViewRefresh, log_study_views

ENGINE = "optuna"
#: Record key in a trial's ``user_attrs``.
RECORD = "record"
#: Keys of what a running trial notes before it trains: its MLflow run, its process.
RUN_ID, OWNER = "mlflow_run_id", "owner"
#: Optuna heartbeat: a trial whose process has not beaten for GRACE seconds is failed by the
#: next process that opens the study (a dead process on this machine is found at once).
HEARTBEAT_SECONDS, GRACE_SECONDS = 10, 30
#: Study attribute holding the space (a worker joins without the space file).
SPACE_SPEC = "space_spec"
#: Trials that count against a shared budget (a failed one is replaced).
STARTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
#: Key of what a trial trains (policy, training settings, seed, share), noted before it trains.
CONFIGURATION = "configuration"
#: A trial whose configuration another process is training checks on it this often, and
#: waits for it at most this long (a dead twin is failed within the heartbeat's grace).
TWIN_POLL_SECONDS, TWIN_WAIT_SECONDS = 2.0, 6 * 3600.0
#: Storage calls retried while the database connection is lost (idempotent ones, and those
#: a trial cannot go without).
_RETRIED = (
    "create_new_trial", "set_trial_param", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_user_attrs", "get_study_system_attrs", "get_trial", "get_all_trials",
    "get_trial_id_from_study_id_trial_number", "get_best_trial", "record_heartbeat",
    "_get_stale_trial_ids",
)  # fmt: skip


class TrialFailed(RuntimeError):
    """A trial's training raised; its record says why (Optuna marks the trial FAIL)."""


def _sampler(
    seed: int, algorithm: str = "tpe", space: Space | None = None
) -> optuna.samplers.BaseSampler:
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if algorithm == "grid":
        if space is None:
            raise ValueError("grid search needs the space")
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=5, multivariate=True, group=True
        )


def _pruner(pruner: Pruner, n_anchors: int, epochs: int) -> optuna.pruners.BasePruner:
    """Anchor trials (baseline and one per kind) are never pruned by the median rule;
    cosine-decay runs are noisy early, so a trial is compared only from the second half of
    its epochs. Hyperband's rungs are epochs of validation accuracy."""
    if pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.MedianPruner(
        n_startup_trials=n_anchors, n_warmup_steps=max(1, epochs // 2)
    )


def open_study(
    name: str,
    storage: str,
    seed: int,
    n_anchors: int,
    epochs: int,
    pruner: Pruner = "median",
    algorithm: str = "tpe",
    space: Space | None = None,
    anchors: Sequence[Mapping[str, Any]] = (),
) -> optuna.Study:
    """Create the study, or load it (resume by name). The sampler's seed is derived from
    ``seed`` and the number of trials already run, so a resumed study samples new points.
    A new study gets ``anchors`` queued (the first one as the baseline), once: the creation
    lock is held, so processes started together on a fresh store do not queue them twice."""
    check_study_name(name)
    # Optuna logs each failed trial with its traceback; the search prints its own line.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with created_once(storage):  # created (and its anchors queued) by one process only
        study = optuna.create_study(
            study_name=name,
            storage=_with_heartbeat(storage),
            direction="maximize",
            sampler=_sampler(derive_seed(seed, "sampler"), algorithm, space),
            pruner=_pruner(pruner, n_anchors, epochs),
            load_if_exists=True,
        )
        if anchors and not study.get_trials(deepcopy=False):
            study.enqueue_trial({}, user_attrs={"baseline": True})
            for values in anchors[1:]:
                study.enqueue_trial(dict(values), skip_if_exists=True)
    study.sampler = _sampler(sampler_seed(seed, len(study.trials)), algorithm, space)
    return study


def _with_heartbeat(storage: str) -> str | optuna.storages.BaseStorage:
    """An RDB storage with Optuna's heartbeat, so a dead worker's trial gets failed."""
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
        return RetryingRDBStorage(
            storage,
            engine_kwargs=connect or None,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=retry_dead_trial,
        )


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage whose calls around a trial (ask, report, attributes, tell, the
    heartbeat) survive a lost connection: retried for up to a minute (:mod:`search.retry`)."""


def _retrying(name: str) -> Any:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: optuna.storages.RDBStorage, *args: Any, **kwargs: Any) -> Any:
        return retried(method, self, *args, what=f"the study storage {self.url}", **kwargs)

    return call


for _name in _RETRIED:
    setattr(RetryingRDBStorage, _name, _retrying(_name))


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
            user_attrs={k: v for k, v in trial.user_attrs.items() if k not in (OWNER, RUN_ID)},
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
    host, _, pid = str(trial.user_attrs.get(OWNER, "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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
        elif trial.state != TrialState.FAIL or RECORD in trial.user_attrs:
            continue
        changed = changed or trial.number in running  # the heartbeat failed it just now
        run_id = trial.user_attrs.get(RUN_ID)
        if run_id and tracker.run_status(run_id) == "RUNNING":
            tracker.end_run(run_id, "failed", {"error": "its process died during the trial"})
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
        who = trial.user_attrs.get(OWNER)
        if who != me and (who is not None or shared):
            continue
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        run_id = trial.user_attrs.get(RUN_ID)
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
            and trial.user_attrs.get(CONFIGURATION) == key
            and not _dead_here(trial)
        ):
            return trial
    return None


def wait_for_trial(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    poll: float = TWIN_POLL_SECONDS,
    limit: float = TWIN_WAIT_SECONDS,
) -> optuna.trial.FrozenTrial:
    """``trial`` once it is no longer running, its process died, or ``limit`` seconds passed.
    A twin on another machine whose heartbeat stops is failed after the grace period."""
    deadline = time.monotonic() + limit
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


def sampler_seed(seed: int, n_done: int) -> int:
    """The sampler's seed for a run that starts after ``n_done`` trials."""
    return derive_seed(seed, "sampler", n_done)


class OptunaRecords:
    """A study's records in its Optuna storage (implements ``confirm.RecordStore``)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study

    def search_records(self) -> list[TrialRecord]:
        """Records of every finished trial (a trial killed before it finished has none)."""
        return [
            TrialRecord.from_json(t.user_attrs[RECORD])
            for t in self.study.get_trials(deepcopy=False)
            if RECORD in t.user_attrs and t.state != TrialState.RUNNING
        ]

    def confirm_records(self) -> list[TrialRecord]:
        """Every finished confirmation run."""
        return [
            TrialRecord.from_json(value)
            for key, value in self.study.user_attrs.items()
            if key.startswith("confirm:")
        ]

    def save_confirm(self, key: str, record: TrialRecord) -> None:
        """Keep a confirmation run (resumable: a later ``confirm`` skips it)."""
        self.study.set_user_attr(key, record.to_json())

    def save_confirmation(self, confirmation: Confirmation) -> None:
        """Keep the confirmation outcome with the study."""
        self.study.set_user_attr("confirmation", confirmation.to_json())

    def confirmation(self) -> Confirmation | None:
        """The latest confirmation outcome, if any."""
        data = self.study.user_attrs.get("confirmation")
        return Confirmation.from_json(data) if data else None


class OptunaSearch:
    """One search run: screening trials over ``space`` on ``data``, then confirmation."""

    def __init__(
        self, data: Dataset, space: Space, options: SearchOptions, echo: Printer = print
    ) -> None:
        self.data, self.space, self.options, self.echo = data, space, options, echo
        self.name = options.study or default_study_name(data, space)
        self.anchors = [space.baseline(), *space.conventions()]
        self.study = open_study(
            self.name,
            options.storage,
            options.seed,
            len(self.anchors),
            options.epochs,
            options.pruner,
            options.algorithm or "tpe",
            space,
            anchors=self.anchors,
        )
        self.records = OptunaRecords(self.study)
        self._check_resume()
        self.fraction = screen_fraction(len(data.train), options.screen)
        self.train_index = screen_index(len(data.train), self.fraction, options.seed)
        self.train_seed = derive_seed(options.seed, "train")
        self.tracker = Tracker(options.tracking_uri, self.name)
        params = {
            **study_params(
                data, space, options, self.train_seed, self.fraction, options.storage, ENGINE
            ),
            "algorithm": options.algorithm or "tpe",
            "pruner": options.pruner,
            "sampler_seed": sampler_seed(options.seed, len(self.study.trials)),
        }
        self.parent_id = self.tracker.start_parent(
            self.name, params, self.study.user_attrs.get("mlflow_parent_run_id")
        )
        stale = repair_stale_trials(self.study, self.tracker)
        if stale:
            echo(f"marked failed: trial(s) {', '.join(map(str, stale))} (their process died)")
        for key, value in {**params, "mlflow_parent_run_id": self.parent_id}.items():
            if key != "sampler_seed":
                self.study.set_user_attr(key, value)
        # The space itself, so a worker on another machine needs no copy of the file.
        self.study.set_user_attr(SPACE_SPEC, space.spec.model_dump(mode="json"))
        #: Stop once the study holds this many started trials (workers share a budget).
        self.stop_at: int | None = None
        self._repaired: set[int] = set(stale)
        #: Other processes run trials of this study too (``cropsearch worker``).
        self.shared = False
        self._started = time.monotonic()
        self._finished = 0
        self.refresh = ViewRefresh()
        self._deadline: float | None = None

    def _check_resume(self) -> None:
        known = self.study.user_attrs.get("data_fingerprint")
        if known is not None and known != self.data.fingerprint:
            raise StudyError(
                f"study '{self.name}' was run on other data ({self.study.user_attrs.get('data')}, "
                f"fingerprint {known}); resume it with the same --data or start a new --study"
            )

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> Confirmation | None:
        """Anchor trials first (the baseline, then each kind's conventional setting), then the
        sampler; then confirm the top policies. Study views are written whatever happens; the
        parent run is closed unless another worker is still live on the study (the last one
        to finish closes it)."""
        from search.workers import Presence

        self.enqueue_anchors()
        self.tracker.log_text(self.parent_id, data_report(self.data), "data_report.txt")
        presence = Presence(self.study)
        confirmation = None
        try:
            total = self.options.trials
            self._optimize(1 if total is None else min(1, total), None)
            plan = self._plan()
            left = None if total is None else total - 1
            if left is None or left > 0:
                timeout = None if self._deadline is None else self._deadline - self._elapsed()
                if timeout is None or timeout > 0:
                    self._optimize(left, timeout)
            if self.options.confirm:
                self.views(None)  # the screening results are safe before confirmation
                confirmation = confirm(
                    self.records,
                    self.data,
                    self.tracker,
                    self.parent_id,
                    plan,
                    self._confirm_index(plan.train_fraction),
                    self.echo,
                )
        except KeyboardInterrupt:
            fail_interrupted(self.study, self.tracker, self.shared)
            raise
        finally:
            last = presence.leave()
            if not last:
                self.echo("other workers are still running this study: the last one to finish "
                          "closes its parent run")  # fmt: skip
            self.views(confirmation or self.records.confirmation(), close=last)
        return confirmation

    def enqueue_anchors(self) -> None:
        """Queue the anchor trials on a study that has none yet (before workers start)."""
        if not self.study.trials:
            self.study.enqueue_trial({}, user_attrs={"baseline": True})
            for values in self.anchors[1:]:
                self.study.enqueue_trial(values, skip_if_exists=True)

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _optimize(self, n_trials: int | None, timeout: float | None) -> None:
        import search.train  # noqa: F401  TensorFlow loads (~6 s) before a trial's clock starts

        self.study.optimize(
            self.objective,
            n_trials=n_trials,
            timeout=timeout,
            callbacks=[self._progress],
            catch=(TrialFailed,),
        )

    def _confirm_index(self, fraction: float) -> np.ndarray | None:
        return screen_index(len(self.data.train), fraction, self.options.seed)

    def _plan(self) -> ConfirmPlan:
        """After the first trial: measured time per trial, what the trials and the timeout
        allow, and the share of the training data the confirmation can afford."""
        o = self.options
        done = [r for r in self.records.search_records() if r.seconds > 0]
        per_trial = max((r.seconds for r in done), default=0.0) or 1.0
        n_confirm = (o.top + 1) * o.repeats if o.confirm else 0
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        anchors_left = min(len(waiting), (o.trials or len(waiting) + 1) - 1)
        budget = plan_budget(
            o.timeout, self._elapsed(), per_trial, anchors_left, n_confirm, self.fraction
        )
        self._deadline = budget.deadline
        n_screen = len(self.data.train) if self.train_index is None else len(self.train_index)
        lines = [
            f"time per trial: {per_trial:.0f}s ({o.epochs} epochs on {n_screen:,} of "
            f"{len(self.data.train):,} training samples)"
        ]
        if o.trials:
            lines.append(f"{o.trials} trials need ~{clock(o.trials * per_trial)}")
        if budget.deadline is not None:
            fits = max(int((budget.deadline - self._elapsed()) // per_trial), 0)
            lines.append(f"the {o.timeout:.0f}s budget allows ~{fits} more screening trials")
        if n_confirm:
            n_confirm_train = round(budget.confirm_fraction * len(self.data.train))
            lines.append(
                f"then confirmation: {n_confirm} trainings on {n_confirm_train:,} samples "
                f"(~{clock(budget.confirm_seconds)})"
            )
        self.echo("; ".join(lines))
        if budget.overrun:
            self.echo(
                f"note: every kind once and a confirmation at the screening size need "
                f"~{clock(budget.overrun)} more than the {o.timeout:.0f}s budget; they run anyway"
            )
        return ConfirmPlan(o.top, o.repeats, o.seed, o.epochs, budget.confirm_fraction)

    def objective(self, trial: optuna.Trial) -> float:
        """Train one configuration; report each epoch to the pruner; keep its record."""
        trial.set_user_attr(OWNER, owner())
        baseline = bool(trial.user_attrs.get("baseline"))
        values = self.space.baseline() if baseline else self.space.sample(trial)
        base = TrainConfig(
            epochs=self.options.epochs, seed=self.train_seed, model=self.options.model
        )
        policy, config = split_values(values, base)
        setup = TrialSetup(
            study=self.name,
            number=trial.number,
            policy=policy,
            train=config,
            engine=ENGINE,
            baseline=baseline,
            train_index=self.train_index,
        )
        twin = self._completed_twin(setup)
        if twin is None:
            twin = self._running_twin(trial, setup)
        if twin is not None:
            record = reuse_trial(setup, twin, self.data, self.tracker, self.parent_id)
        else:

            def prune(epoch: int, metrics: dict[str, float]) -> bool:
                trial.report(metrics[OBJECTIVE], epoch)
                last = epoch + 1 >= config.epochs  # stopping after the last epoch saves nothing
                return not baseline and not last and trial.should_prune()

            record = run_trial(
                setup,
                self.data,
                self.tracker,
                self.parent_id,
                prune,
                on_start=lambda run_id: trial.set_user_attr(RUN_ID, run_id),
            )
        trial.set_user_attr(RECORD, record.to_json())
        if record.state == "pruned":
            raise optuna.TrialPruned(f"pruned after epoch {len(record.history)}")
        if record.state == "failed":
            raise TrialFailed(record.error)
        return float(record.val_accuracy or 0.0)

    def _completed_twin(self, setup: TrialSetup) -> TrialRecord | None:
        """A complete trial that trained the same policy with the same settings and seed."""
        probe = setup.record(len(self.data.train))
        for record in self.records.search_records():
            if (
                record.state == "complete"
                and record.configuration() == probe.configuration()
                and record.train.seed == probe.train.seed
                and abs(record.train_fraction - probe.train_fraction) < 1e-9
            ):
                return record
        return None

    def _running_twin(self, trial: optuna.Trial, setup: TrialSetup) -> TrialRecord | None:
        """Note what ``trial`` trains; when an earlier trial still running elsewhere trains the
        same, wait for it and return its record if it completes (None: this trial trains)."""
        key = configuration_key(setup.record(len(self.data.train)))
        trial.set_user_attr(CONFIGURATION, key)
        twin = earlier_running_twin(self.study, trial.number, key)
        if twin is None:
            return None
        self.echo(f"trial {trial.number}: trial {twin.number} is training the same "
                  "configuration; waiting for its result")  # fmt: skip
        done = wait_for_trial(self.study, twin)
        if done.state == TrialState.COMPLETE and RECORD in done.user_attrs:
            return TrialRecord.from_json(done.user_attrs[RECORD])
        return None

    # -- reporting -------------------------------------------------------------------------
    def _progress(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.shared:  # a worker: another worker's dead trial is found here too
            repaired = set(repair_stale_trials(study, self.tracker)) - self._repaired
            if repaired:
                self._repaired |= repaired
                self.echo(f"marked failed: trial(s) {', '.join(map(str, sorted(repaired)))} "
                          "(their process died)")  # fmt: skip
        if (
            self.stop_at is not None
            and len(study.get_trials(False, states=STARTED)) >= self.stop_at
        ):
            study.stop()
        if RECORD not in trial.user_attrs:
            return
        record = TrialRecord.from_json(trial.user_attrs[RECORD])
        self._finished += 1
        done = self._finished
        elapsed = self._elapsed()
        estimates = []
        if self.options.trials and done:
            estimates.append(elapsed / done * (self.options.trials - done))
        if self._deadline is not None:
            estimates.append(max(self._deadline - elapsed, 0.0))
        left = min(estimates) if estimates else None
        records = self.records.search_records()
        self.echo(progress_line(record, records, done, self.options.trials, elapsed, left))
        self.refresh.maybe(lambda: self.views(None, live=True))

    def views(
        self, confirmation: Confirmation | None, close: bool = False, live: bool = False
    ) -> None:
        """Write the study-level views to the parent run (and mark it finished); ``live``:
        a refresh during the search (:class:`~search.views.ViewRefresh`)."""
        if close:
            self.refresh.join()
        records = self.records.search_records()
        log_study_views(
            self.tracker,
            self.parent_id,
            records,
            self.data,
            {} if live else param_importances(self.study),
            confirmation,
            study_attrs(self.study),
            final=self.records.confirm_records() if close else None,
            gallery=not live or self.refresh.new_best(records),
        )
        if close:
            self.tracker.end_run(
                self.parent_id, "complete", {"n_trials": str(len(self.study.trials))}
            )


def study_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's name and settings, for provenance."""
    return {
        "study": study.study_name,
        **{k: v for k, v in study.user_attrs.items() if not k.startswith("confirm")},
    }


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's default parameter importances over the sampled trials; empty when too few."""
    searched = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.params
    ]
    if len(searched) < 4:
        return {}
    searched_only = optuna.create_study(direction="maximize")
    searched_only.add_trials(searched)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "few trials in some regimes": expected here
            return dict(optuna.importance.get_param_importances(searched_only))
    except (RuntimeError, ValueError):
        return {}
