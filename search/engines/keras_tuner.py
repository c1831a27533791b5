"""The keras-tuner engine: the same space, trial function, MLflow layout and confirmation as
the Optuna engine, with keras-tuner's oracles (Hyperband, Bayesian optimisation, random)
choosing the configurations.

keras-tuner's state lives in ``<mlruns>/keras-tuner/<study>/`` (resume by ``--study``);
cropsearch's records beside it (:mod:`search.engines.keras_tuner_records`). Trial 0 is the
full-image baseline. A failed trial is recorded like an Optuna failure (state, reason, MLflow
status) and raised to keras-tuner as ``FailedTrialError``; after the search, trials that
keras-tuner marked failed or invalid without a record are reported (keras-tuner itself
carries on quietly).

Hyperband trains a trial for ``tuner/epochs`` epochs; a promoted trial continues its
predecessor's checkpoint from ``tuner/initial_epoch``, with the cosine decay spanning the
search's ``--epochs`` (:mod:`search.training.continuation`), so it continues, not restarts.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras_tuner

from search.engines.base import SearchRun
from search.engines.common import CONFIRM_SHARE, StudyError
from search.engines.keras_tuner_records import KerasTunerRecords, keras_tuner_root
from search.engines.keras_tuner_space import hyperparameters
from search.ops.signals import stop_announced
from search.settings import (
    SEARCHABLE_TRAIN_FIELDS,
    StudyKey,
    TrainConfig,
    derive_seed,
    study_settings,
)
from search.space import Space, split_values
from search.study.confirm.model import Confirmation
from search.study.confirm.stage import ConfirmPlan, confirm
from search.study.record import OBJECTIVE, TrialRecord
from search.study.trial import TrialSetup, run_trial
from search.training.continuation import Continuation, load_history
from search.training.model import build_network

ENGINE = "keras-tuner"
#: Hyperband's reduction factor (keras-tuner's default).
FACTOR = 3


def make_oracle(
    algorithm: str, space: Space, epochs: int, seed: int, max_failures: int
) -> keras_tuner.Oracle:
    """keras-tuner's oracle for ``algorithm`` over ``space`` (``max_trials`` set by the run)."""
    hp = hyperparameters(space)
    common: dict[str, Any] = {
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "hyperparameters": hp,
        "seed": seed,
        "max_consecutive_failed_trials": max_failures,
    }
    if algorithm == "hyperband":
        # No iteration limit: the trial budget stops it.
        return keras_tuner.oracles.HyperbandOracle(
            max_epochs=epochs, factor=FACTOR, hyperband_iterations=None, **common
        )
    if algorithm == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=None, **common)
    if algorithm == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=None, **common)
    raise ValueError(f"unknown keras-tuner algorithm {algorithm!r}")


class _Tuner(keras_tuner.engine.base_tuner.BaseTuner):
    """keras-tuner's loop; each trial is cropsearch's trial function."""

    def __init__(self, run: KerasTunerSearch, oracle: keras_tuner.Oracle, root: Path) -> None:
        self.run = run
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
            super().__init__(oracle=oracle, directory=str(root), project_name=run.name)

    def run_trial(self, trial: keras_tuner.engine.trial.Trial, *args: Any, **kwargs: Any) -> Any:
        record = self.run.train(trial)
        if record.state == "failed":
            raise keras_tuner.errors.FailedTrialError(record.error)
        return {OBJECTIVE: float(record.val_accuracy or 0.0)}

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_end(trial)
        self.run.progress(trial)


class KerasTunerSearch(SearchRun):
    """One search run on keras-tuner: trials over ``space`` on ``data``, then confirmation."""

    engine = ENGINE
    records: KerasTunerRecords

    @property
    def location(self) -> str:
        """The folder of keras-tuner's state for this study."""
        return str(self.root / self.name)

    def open_study(self) -> dict[str, Any]:
        """The study's records beside keras-tuner's state."""
        self.root = keras_tuner_root(self.options.storage)
        self.records = KerasTunerRecords(self.root, self.name)
        return self.records.attrs()

    def check_resume(self, attrs: dict[str, Any]) -> None:
        """Refuse other data, or another algorithm, than the study ran with."""
        super().check_resume(attrs)
        if attrs.get(StudyKey.ALGORITHM) not in (None, self.algorithm):
            raise StudyError(
                f"study '{self.name}' runs keras-tuner {attrs[StudyKey.ALGORITHM]}; resume it "
                f"with --algorithm {attrs[StudyKey.ALGORITHM]} or start a new --study"
            )

    def prepare(self, params: dict[str, Any]) -> None:
        """Record the settings; build keras-tuner's oracle and tuner, seeded past the trials
        already run."""
        settings = {k: v for k, v in params.items() if k not in StudyKey.RUN_ONLY}
        self.records.set_attrs(
            {**settings, StudyKey.STUDY: self.name, StudyKey.PARENT_RUN: self.parent_id}
        )
        done = len(self.records.search_records())
        oracle = make_oracle(
            self.algorithm,
            self.space,
            self.options.trial_epochs,
            derive_seed(self.options.seed, "sampler", done),
            max_failures=max(self.options.trials or 0, 1) + done + 1,
        )
        self.tuner = _Tuner(self, oracle, self.root)
        self.model_hp = self._declare_model_hyperparameters()
        timeout = self.options.timeout
        #: With --timeout, trials start until this many seconds; the rest is confirmation's.
        self._deadline = None if timeout is None else timeout * (1 - CONFIRM_SHARE)

    def provenance(self) -> dict[str, Any]:
        """The study's name and settings."""
        return study_settings(self.records.attrs())

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> Confirmation | None:
        """``--trials`` more trials (trial 0 of a new study is the baseline), then confirm the
        top policies. Study views are written whatever happens."""
        self.log_data_report()
        oracle = self.tuner.oracle
        if self.options.trials is not None:
            oracle.max_trials = len(oracle.trials) + self.options.trials
        confirmation = None
        try:
            with stop_announced(self.echo):
                with _quiet_failures():
                    self.tuner.search(verbose=0)
                self.report_quiet_failures()
                if self.options.confirm:
                    self.views(None)
                    o = self.options
                    plan = ConfirmPlan(o.top, o.repeats, o.seed, o.epochs, boxes=o.boxes)
                    with self.training_pool() as pool:
                        confirmation = confirm(
                            self.records, self.data, self.tracker, self.parent_id, plan, None,
                            self.echo, pool=pool,
                        )  # fmt: skip
        finally:
            self.views(confirmation or self.records.confirmation(), close=True)
        return confirmation

    def _declare_model_hyperparameters(self) -> dict[str, Any]:
        """A user's ``--model`` declares its own hyperparameters when built (``hp.Int``, ...):
        build it once on the oracle's space, as keras-tuner's own tuners do, so the oracle
        searches them with the policy; returns their defaults by name."""
        if self.options.model is None:
            return {}
        space = self.tuner.oracle.get_space()
        known = {h.name for h in space.space}
        policy, _ = split_values(self.space.baseline(), TrainConfig())
        build_network(self.options.model, (*policy.size, 3), self.data.n_classes, space)
        self.tuner.oracle.update_space(space)
        return {h.name: h.default for h in space.space if h.name not in known}

    def _model_settings(self, values: dict[str, Any], config: TrainConfig) -> TrainConfig:
        """The model's own hyperparameter values of a trial: a training field
        (``learning_rate``, ...) sets it, the others are kept as ``model_hp``."""
        chosen = {k: v for k, v in values.items() if k in self.model_hp}
        fields = {k: v for k, v in chosen.items() if k in SEARCHABLE_TRAIN_FIELDS}
        extra = {k: v for k, v in chosen.items() if k not in SEARCHABLE_TRAIN_FIELDS}
        return config.model_copy(update={**fields, "model_hp": extra}) if chosen else config

    def checkpoint(self, trial_id: str) -> Path:
        """Where Hyperband keeps a trial's model for its continuation."""
        return self.root / self.name / "checkpoints" / trial_id

    def train(self, trial: keras_tuner.engine.trial.Trial) -> TrialRecord:
        """Train the configuration keras-tuner chose (trial 0: the baseline) and keep its
        record; Hyperband's continuations resume their predecessor's checkpoint."""
        hp = trial.hyperparameters
        number = int(trial.trial_id)
        parent = hp.values.get("tuner/trial_id")
        parent_record = self._record(int(parent)) if parent is not None else None
        baseline = number == 0 or bool(parent_record and parent_record.baseline)
        if baseline:  # the full image on the model's defaults; the oracle learns what ran
            hp.values.update(self.model_hp)
            if "kind" in self.space.spec.params:
                hp.values["kind"] = "full"
        values = self.space.baseline() if baseline else self.space.values_from(hp.values)
        epochs = int(hp.values.get("tuner/epochs", self.options.trial_epochs))
        base = TrainConfig(epochs=epochs, seed=self.train_seed, model=self.options.model)
        policy, config = split_values(values, base)
        config = self._model_settings(hp.values, config)
        resume = None
        full = self.options.trial_epochs
        if self.algorithm == "hyperband":
            load_from = self.checkpoint(parent) if parent is not None else None
            if load_from is not None and not load_from.exists():
                load_from = None
            resume = Continuation(
                schedule_epochs=full,
                initial_epoch=int(hp.values.get("tuner/initial_epoch", 0)) if load_from else 0,
                load_from=load_from,
                save_to=self.checkpoint(trial.trial_id) if epochs < full else None,
                history=load_history(load_from) if load_from is not None else [],
            )
        setup = TrialSetup(
            study=self.name,
            number=number,
            policy=policy,
            train=config,
            engine=ENGINE,
            baseline=baseline,
            train_index=self.train_index,
            tags={"keras_tuner.trial_id": trial.trial_id}
            | ({"keras_tuner.continues": str(parent)} if parent is not None else {}),
        )
        record = run_trial(setup, self.data, self.tracker, self.parent_id, resume=resume)
        self.records.save_search(record)
        if parent is not None and resume is not None and resume.load_from is not None:
            shutil.rmtree(resume.load_from, ignore_errors=True)  # continued: no longer needed
        return record

    def _record(self, number: int) -> TrialRecord | None:
        return next((r for r in self.records.search_records() if r.number == number), None)

    # -- reporting -------------------------------------------------------------------------
    def progress(self, trial: keras_tuner.engine.trial.Trial) -> None:
        """One line per finished trial, as the Optuna engine prints it."""
        record = self._record(int(trial.trial_id))
        if record is None:
            return
        elapsed = self.report_progress(record)
        if self._deadline is not None and elapsed >= self._deadline:
            self.tuner.oracle.max_trials = len(self.tuner.oracle.trials)  # no new trial

    def report_quiet_failures(self) -> list[str]:
        """keras-tuner marks a trial failed or invalid and carries on: name each such trial
        that has no record (it failed outside training), with the last line of its error."""
        numbers = {r.number for r in self.records.search_records()}
        found = []
        for trial_id, trial in sorted(self.tuner.oracle.trials.items()):
            if trial.status in ("FAILED", "INVALID") and int(trial_id) not in numbers:
                reason = (trial.message or "").strip().splitlines()[-1:] or ["no message"]
                found.append(f"trial {int(trial_id)} {trial.status.lower()}: {reason[0]}")
        for line in found:
            self.echo(line)
        return found


@contextlib.contextmanager
def _quiet_failures() -> Iterator[None]:
    """keras-tuner prints each failed trial's traceback to stderr when its DEBUG flag is on
    (the default); cropsearch prints its own line per failure."""
    from keras_tuner.src import config

    debug, config.DEBUG = config.DEBUG, False
    try:
        yield
    finally:
        config.DEBUG = debug
