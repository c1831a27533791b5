"""The Optuna engine: asks the space for configurations, calls the trial function, reports to
its pruner, and keeps each trial's :class:`TrialRecord` in the Optuna storage."""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from search.data import Dataset
from search.data.boxes import StudyBoxes
from search.engines.base import SearchRun
from search.engines.common import SearchOptions, plan_budget, screen_index
from search.engines.optuna_pruning import epoch_pruning
from search.engines.optuna_records import OptunaRecords, param_importances, study_attrs
from search.engines.optuna_storage import (
    configuration_key,
    earlier_running_twin,
    fail_interrupted,
    owner,
    repair_stale_trials,
    wait_for_trial,
)
from search.engines.optuna_study import make_sampler, open_study, sampler_seed
from search.ops.presence import Presence
from search.ops.signals import stop_announced
from search.results.report import clock
from search.results.views import Printer
from search.settings import (
    StudyKey,
    TrainConfig,
    TrialKey,
)
from search.space import Space, split_values
from search.study.confirm.model import Confirmation
from search.study.confirm.stage import ConfirmPlan, confirm, early_setups, keep_confirm_run
from search.study.pool import TrainingPool
from search.study.record import OBJECTIVE, TrialRecord
from search.study.trial import TrialSetup, reuse_trial, run_trial

ENGINE = "optuna"
#: Seconds a search under ``--timeout`` keeps for its last views and the winner's model,
#: beyond 1.5 times what the views took before the confirmation.
FINISH_SECONDS = 5.0
#: Trials that count against a shared budget (a failed one is replaced).
STARTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


class TrialFailed(RuntimeError):
    """A trial's training raised; its record says why (Optuna marks the trial FAIL)."""


class OptunaSearch(SearchRun):
    """One search run: screening trials over ``space`` on ``data``, then confirmation."""

    engine = ENGINE
    records: OptunaRecords

    def __init__(
        self,
        data: Dataset,
        space: Space,
        options: SearchOptions,
        echo: Printer = print,
        boxes: StudyBoxes | None = None,
    ) -> None:
        #: The boxes the study chooses for: several make it multi-objective.
        self.boxes = boxes
        #: Stop once the study holds this many started trials (workers share a budget).
        self.stop_at: int | None = None
        #: Other processes run trials of this study too (``cropsearch worker``).
        self.shared = False
        self._deadline: float | None = None
        #: When a ``--timeout`` ends (``time.monotonic()``).
        self._end: float | None = None
        #: The pool training the baseline's confirmation runs during the screening.
        self._pool: TrainingPool | None = None
        super().__init__(data, space, options, echo)

    @property
    def location(self) -> str:
        """The Optuna storage URL."""
        return self.options.storage

    def anchor_values(self) -> list[dict[str, Any]]:
        """The baseline, then each kind's conventional setting."""
        return [self.space.baseline(), *self.space.conventions()]

    def open_study(self) -> dict[str, Any]:
        """Create or load the Optuna study (its anchors queued once)."""
        o = self.options
        self.study = open_study(
            self.name,
            o.storage,
            o.seed,
            len(self.anchors),
            o.trial_epochs,
            o.pruner,
            self.algorithm,
            self.space,
            anchors=self.anchors,
            objectives=max(len(self.options.objectives), 1),
        )
        self.records = OptunaRecords(self.study)
        return dict(self.study.user_attrs)

    def engine_params(self) -> dict[str, Any]:
        """The pruner and this run's sampler seed."""
        return {
            StudyKey.PRUNER: self.options.pruner,
            StudyKey.SAMPLER_SEED: sampler_seed(self.options.seed, len(self.study.trials)),
        }

    def prepare(self, params: dict[str, Any]) -> None:
        """Fail the trials of dead processes; record the settings and the space."""
        stale = repair_stale_trials(self.study, self.tracker)
        if stale:
            self.echo(f"marked failed: trial(s) {', '.join(map(str, stale))} (their process died)")
        for key, value in {**params, StudyKey.PARENT_RUN: self.parent_id}.items():
            if key not in StudyKey.RUN_ONLY:
                self.study.set_user_attr(key, value)
        self.study.set_user_attr(StudyKey.SPACE_SPEC, self.space.spec.model_dump(mode="json"))
        self._repaired: set[int] = set(stale)

    def importances(self) -> dict[str, float]:
        """Optuna's parameter importances."""
        return param_importances(self.study)

    def provenance(self) -> dict[str, Any]:
        """The study's name and settings."""
        return study_attrs(self.study)

    def trial_count(self) -> int:
        """Every trial of the study, finished or not."""
        return len(self.study.trials)

    def use_sampler(self, seed: int) -> None:
        """Sample from now on with the study's algorithm seeded with ``seed`` (a worker's own)."""
        self.study.sampler = make_sampler(seed, self.algorithm, self.space)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> Confirmation | None:
        """Anchor trials first (the baseline, then each kind's conventional setting), then the
        sampler; then confirm the top policies. Study views are written whatever happens; the
        parent run is closed unless another worker is still live on the study (the last one
        to finish closes it)."""
        self.enqueue_anchors()
        self.log_data_report()
        presence = Presence(self.study)
        confirmation = None
        try:
            with self.training_pool() as pool, stop_announced(self.echo):
                total = self.options.trials
                in_pool = pool is not None and self.options.pruner != "hyperband"
                # A budget is planned on the first trial's time; without one, nothing waits
                # for it and it trains beside the anchors.
                first_alone = not in_pool or self.options.timeout is not None
                left = total
                if first_alone:
                    self.optimize(1 if total is None else min(1, total), None)
                    plan = self._plan()
                    left = None if total is None else total - 1
                waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                anchors = len(waiting) if left is None else min(len(waiting), left)
                if anchors:  # every kind once, whatever the timeout
                    if pool is not None and in_pool:
                        self.anchors_in_pool(pool, anchors)
                    else:
                        self.optimize(anchors, None)
                    left = None if left is None else left - anchors
                if not first_alone:
                    plan = self._plan()
                early = self.early_in_background(pool, plan)
                if left is None or left > 0:
                    timeout = None if self._deadline is None else self._deadline - self.elapsed()
                    if timeout is None or timeout > 0:
                        self.optimize(left, timeout)
                if self.options.confirm:
                    self.keep_background(pool, plan, early)
                    writing = time.monotonic()
                    self.views(None)  # the screening results are safe before confirmation
                    if self._end is not None:  # the last views take about as long, and more
                        finish = 1.5 * (time.monotonic() - writing) + FINISH_SECONDS
                        plan = dataclasses.replace(plan, deadline=self._end - finish)
                    confirmation = confirm(
                        self.records,
                        self.data,
                        self.tracker,
                        self.parent_id,
                        plan,
                        self._confirm_index(plan.train_fraction),
                        self.echo,
                        self.boxes.sources[1:] if self.boxes is not None else (),
                        pool,
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
            self.study.enqueue_trial({}, user_attrs={TrialKey.BASELINE: True})
            for values in self.anchors[1:]:
                self.study.enqueue_trial(values, skip_if_exists=True)

    def optimize(self, n_trials: int | None, timeout: float | None) -> None:
        """Run up to ``n_trials`` trials (None: no limit) for up to ``timeout`` seconds."""
        import search.training.fit  # noqa: F401  TensorFlow loads (~6 s) before a trial's clock starts

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
        """After the first trial (without a budget, after the anchors): measured time per
        trial, what the trials and the timeout allow, and the share of the training data the
        confirmation can afford."""
        o = self.options
        done = [r for r in self.records.search_records() if r.seconds > 0]
        per_trial = max((r.seconds for r in done), default=0.0) or 1.0
        n_confirm = (o.top + 1) * o.repeats if o.confirm else 0
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        anchors_left = min(len(waiting), (o.trials or len(waiting) + 1) - 1)
        timeout = None if o.timeout is None else max(o.timeout - FINISH_SECONDS, 0.0)
        budget = plan_budget(
            timeout,
            self.elapsed(),
            per_trial,
            anchors_left,
            n_confirm,
            self.fraction,
            o.epochs / o.trial_epochs,
        )
        self._deadline = budget.deadline
        n_screen = len(self.data.train) if self.train_index is None else len(self.train_index)
        lines = [
            f"time per trial: {per_trial:.0f}s ({o.trial_epochs} epochs on {n_screen:,} of "
            f"{len(self.data.train):,} training samples)"
        ]
        if o.trials:
            lines.append(f"{o.trials} trials need ~{clock(o.trials * per_trial)}")
        if budget.deadline is not None:
            fits = max(int((budget.deadline - self.elapsed()) // per_trial), 0)
            lines.append(
                f"the {o.timeout:.0f}s left of the budget allow ~{fits} more screening trials"
            )
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
        self._end = None if o.timeout is None else self._started + o.timeout
        return ConfirmPlan(
            o.top, o.repeats, o.seed, o.epochs, budget.confirm_fraction, o.boxes, o.objectives,
            deadline=self._end,
        )  # fmt: skip

    def objective(self, trial: optuna.Trial) -> float | list[float]:
        """Train one configuration; report each epoch to the pruner; keep its record. A
        multi-objective study gets the validation accuracy with each of its boxes."""
        setup, twin = self._setup(trial)

        def note_run(run_id: str) -> None:
            trial.set_user_attr(TrialKey.RUN_ID, run_id)

        if twin is not None:
            record = reuse_trial(setup, twin, self.data, self.tracker, self.parent_id, note_run)
        else:
            prune = epoch_pruning(
                trial, setup.baseline, setup.train.epochs, len(self.study.directions)
            )
            record = run_trial(
                setup,
                self.data,
                self.tracker,
                self.parent_id,
                prune,
                on_start=note_run,
            )
        return self._outcome(trial, record)

    def _setup(self, trial: optuna.Trial) -> tuple[TrialSetup, TrialRecord | None]:
        """What ``trial`` trains (noted on it), and a twin whose result it can reuse."""
        trial.set_user_attr(TrialKey.OWNER, owner())
        baseline = bool(trial.user_attrs.get(TrialKey.BASELINE))
        values = self.space.baseline() if baseline else self.space.sample(trial)
        base = TrainConfig(
            epochs=self.options.trial_epochs, seed=self.train_seed, model=self.options.model
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
            val_boxes=self.boxes.val_boxes() if self.boxes is not None else None,
        )
        key = configuration_key(setup.record(len(self.data.train)))
        trial.set_user_attr(TrialKey.CONFIGURATION, key)
        return setup, self._completed_twin(key) or self._running_twin(trial, key)

    def _outcome(self, trial: optuna.Trial, record: TrialRecord) -> float | list[float]:
        """Keep ``record`` on its trial; the trial's value(s), or raise for a pruned or
        failed one (as Optuna's objective does)."""
        trial.set_user_attr(TrialKey.RECORD, record.to_json())
        if record.state == "pruned":
            raise optuna.TrialPruned(f"pruned after epoch {len(record.history)}")
        if record.state == "failed":
            raise TrialFailed(record.error)
        if len(self.study.directions) > 1:
            assert self.boxes is not None, "a multi-objective study is opened with its boxes"
            return [record.val_by_boxes[b.source.name] for b in self.boxes.sources]
        return float(record.val_accuracy or 0.0)

    def anchors_in_pool(self, pool: TrainingPool, limit: int | None) -> int:
        """Train the queued anchor trials (at most ``limit``) side by side in ``pool``, each
        told to Optuna as it finishes, with its epochs' scores reported after the fact (the
        median rule prunes no anchor: they are its start-up trials). Returns how many ran."""
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        count = len(waiting) if limit is None else min(len(waiting), limit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "heartbeat ... with optimize"
            asked = [self.study.ask() for _ in range(count)]
        jobs: list[tuple[optuna.Trial, TrialSetup]] = []
        for trial in asked:
            setup, twin = self._setup(trial)
            if twin is None:
                jobs.append((trial, setup))
            else:
                record = reuse_trial(setup, twin, self.data, self.tracker, self.parent_id)
                self._tell(trial, record)
        notes = [(self.options.storage, trial._trial_id) for trial, _ in jobs]
        for index, record in pool.train([s for _, s in jobs], crop_samples=True, notes=notes):
            self._tell(jobs[index][0], record)
        return count

    def early_in_background(
        self, pool: TrainingPool | None, plan: ConfirmPlan
    ) -> list[tuple[int, TrialSetup]]:
        """Queue in ``pool`` the confirmation runs that need no more screening
        (:func:`~search.study.confirm.stage.early_setups`): the baseline's, and without a time
        budget (which must stay free to stop between any two runs) or several objectives, the
        leader's. They train while the sampler's trials do. Returns the jobs with their
        setups."""
        if pool is None or not self.options.confirm:
            return []
        self._pool = pool
        others = self.boxes.sources[1:] if self.boxes is not None else ()
        setups = early_setups(
            self.records,
            self.data,
            plan,
            self._confirm_index(plan.train_fraction),
            others,
            leader=self._deadline is None and not plan.objectives,
        )
        return list(zip(pool.submit(setups), setups, strict=True))

    def keep_background(
        self, pool: TrainingPool | None, plan: ConfirmPlan, jobs: list[tuple[int, TrialSetup]]
    ) -> None:
        """Wait for the confirmation runs queued by :meth:`early_in_background` and keep them
        with the study, for the confirmation to find done."""
        self._pool = None
        if pool is None or not jobs:
            return
        for index, record in pool.results([job for job, _ in jobs]):
            if record.state == "complete":
                keep_confirm_run(self.records, plan, record)
            outcome = (
                f"val {record.val_accuracy:.4f}, test {record.test_accuracy:.4f}"
                if record.state == "complete"
                else f"FAILED: {record.error}"
            )
            self.echo(f"[confirm, during the screening] {jobs[index][1].run_name()}: {outcome} "
                      f"({record.seconds:.0f}s)")  # fmt: skip

    def _tell(self, trial: optuna.Trial, record: TrialRecord) -> None:
        """Tell Optuna how a trial trained elsewhere ended, and print its progress line."""
        if len(self.study.directions) == 1:
            for epoch, metrics in enumerate(record.history):
                trial.report(metrics[OBJECTIVE], epoch)
        try:
            values = self._outcome(trial, record)
        except optuna.TrialPruned:
            self.study.tell(trial, state=TrialState.PRUNED)
        except TrialFailed:
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, values)
        self.report_progress(record, self._deadline)

    def _completed_twin(self, key: str) -> TrialRecord | None:
        """A complete trial that trained the configuration ``key`` (:func:`configuration_key`)."""
        records = self.records.search_records()
        return next(
            (r for r in records if r.state == "complete" and configuration_key(r) == key), None
        )

    def _running_twin(self, trial: optuna.Trial, key: str) -> TrialRecord | None:
        """When an earlier trial still running elsewhere trains the configuration ``key``, wait
        for it and return its record if it completes (None: this trial trains)."""
        twin = earlier_running_twin(self.study, trial.number, key)
        if twin is None:
            return None
        self.echo(f"trial {trial.number}: trial {twin.number} is training the same "
                  "configuration; waiting for its result")  # fmt: skip
        done = wait_for_trial(self.study, twin)
        if done.state == TrialState.COMPLETE and TrialKey.RECORD in done.user_attrs:
            return TrialRecord.from_json(done.user_attrs[TrialKey.RECORD])
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
        if self._pool is not None:
            self._pool.poll()  # a background run that ended: the next one starts
        if TrialKey.RECORD not in trial.user_attrs:
            return
        record = TrialRecord.from_json(trial.user_attrs[TrialKey.RECORD])
        self.report_progress(record, self._deadline)
