"""One trial, no engine: a configuration -> train -> MLflow child run -> a :class:`TrialRecord`.

The Optuna engine and the confirmation stage both call :func:`run_trial`; an engine only
decides which configuration to try and whether to stop it early (``on_epoch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from search.crop.policy import CropPolicy
from search.data import Dataset
from search.ops.signals import raise_if_received, shielded
from search.results.confusion import ClassReport, confusion_picture
from search.results.tracking import Tracker, flat_params
from search.results.winner_model import log_weights
from search.settings import TrainConfig
from search.study.background import Writes
from search.study.record import Stage, TrialRecord

if TYPE_CHECKING:
    from search.training.continuation import Continuation
    from search.training.fit import TrainResult

#: Samples drawn in each trial's crop-sample grid.
GRID_SAMPLES = 8

#: Called after each epoch with (epoch, metrics); True stops the trial (pruned).
StopRule = Callable[[int, dict[str, float]], bool]


@dataclass(frozen=True)
class TrialSetup:
    """What to train and how to label it.

    Attributes:
        train_index: the screening subset of the training split (None: all of it).
        test_boxes: extra test-time boxes by level name (None for "no box").
        val_boxes: validation boxes by source name, one per objective of a multi-objective
            study (:attr:`TrialRecord.val_by_boxes`).
    """

    study: str
    number: int
    policy: CropPolicy
    train: TrainConfig
    stage: Stage = "search"
    engine: str = "optuna"
    baseline: bool = False
    train_index: np.ndarray | None = None
    test_boxes: Mapping[str, np.ndarray | None] | None = None
    val_boxes: Mapping[str, np.ndarray | None] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def record(self, n_train: int, **values: object) -> TrialRecord:
        """A record of this setup with ``values`` filled in."""
        fraction = 1.0 if self.train_index is None else len(self.train_index) / max(n_train, 1)
        return TrialRecord.model_validate(
            {
                "study": self.study,
                "number": self.number,
                "stage": self.stage,
                "engine": self.engine,
                "baseline": self.baseline,
                "policy": self.policy.to_dict(),
                "train": self.train,
                "train_fraction": min(1.0, fraction),
                **values,
            }
        )

    def run_name(self) -> str:
        """The MLflow run name: the trial, or the confirmed policy and seed."""
        label = ("baseline " if self.baseline else "") + self.policy.label()
        if self.stage == "confirm":
            return f"confirm #{self.number} seed {self.train.seed}: {label}"
        return f"trial {self.number}: {label}"


def _start_run(setup: TrialSetup, data: Dataset, tracker: Tracker, parent_id: str) -> str:
    params = {
        **flat_params("", setup.policy.to_dict()),
        **flat_params("train.", setup.train.model_dump()),
        "train_samples": len(data.train) if setup.train_index is None else len(setup.train_index),
    }
    tags = {
        "kind": setup.policy.kind,
        "baseline": str(setup.baseline).lower(),
        "data_fingerprint": data.fingerprint,
        "study": setup.study,
        "stage": setup.stage,
        "engine": setup.engine,
        "seed": str(setup.train.seed),
        **setup.tags,
    }
    return tracker.start_trial(
        parent_id, setup.number, setup.policy.label(), params, tags, run_name=setup.run_name()
    )


def _log_crop_grid(setup: TrialSetup, data: Dataset, tracker: Tracker, run_id: str) -> None:
    from search.results.crop_grid import crop_grid

    samples = data.val.take(slice(0, GRID_SAMPLES))
    grid = crop_grid(setup.policy, samples, data.class_names, seed=setup.train.seed)
    tracker.log_picture(run_id, grid, "crop_samples.png")


def _log_trained(tracker: Tracker, run_id: str, result: TrainResult, data: Dataset) -> None:
    """What a completed run leaves besides its scores: per-class test accuracy, the confusion
    matrix (JSON and PNG) and the trained weights (for the winner's model)."""
    report = ClassReport.of(result.test_predictions, data.test.labels, data.class_names)
    tracker.log_metrics(run_id, report.metrics(), max(len(result.history) - 1, 0))
    tracker.log_text(run_id, report.to_json(), "confusion_matrix.json")
    picture = confusion_picture(report.classes, report.matrix)
    tracker.log_picture(run_id, picture, "confusion_matrix.png")
    log_weights(tracker, run_id, result.weights)


def run_trial(
    setup: TrialSetup,
    data: Dataset,
    tracker: Tracker,
    parent_id: str,
    on_epoch: StopRule | None = None,
    crop_samples: bool = True,
    on_start: Callable[[str], None] | None = None,
    resume: Continuation | None = None,
) -> TrialRecord:
    """Train ``setup`` and log it as a child run of ``parent_id``; return its record.

    An exception inside training ends the run as failed and returns a failed record; an
    interrupt (``KeyboardInterrupt``, ``SystemExit``) ends it as failed and propagates.
    ``on_start(run_id)`` lets the engine note the run before training starts (a trial whose
    process dies can then have its run closed by the next process). ``resume`` continues a
    checkpoint (keras-tuner's Hyperband).
    """
    n_train = len(data.train)
    writes = Writes()  # figure and metrics off the training path; joined before the run ends
    run_id: str | None = None
    try:
        with shielded():  # a run that exists is noted on its trial; a signal ends it below
            run_id = _start_run(setup, data, tracker, parent_id)
            if on_start is not None:
                on_start(run_id)
        if crop_samples:
            writes.submit(_log_crop_grid, setup, data, tracker, run_id)

        def after_epoch(epoch: int, metrics: dict[str, float]) -> bool:
            writes.submit(tracker.log_metrics, run_id, metrics, epoch)
            return bool(on_epoch is not None and on_epoch(epoch, metrics))

        from search.training.fit import train_policy  # TensorFlow, only when a trial trains

        result = train_policy(
            setup.policy,
            data,
            setup.train,
            after_epoch,
            setup.train_index,
            setup.test_boxes,
            resume=resume,
            val_boxes=setup.val_boxes,
        )
        if not result.stopped:
            writes.submit(_log_trained, tracker, run_id, result, data)
        writes.join()
        return _end_trained_run(setup, tracker, run_id, result, n_train)
    except BaseException as error:  # an interrupt too: the run must not stay RUNNING
        if run_id is None:
            raise
        writes.join(raise_errors=False)
        message = f"{type(error).__name__}: {error}"
        tracker.end_run(run_id, "failed", {"error": message})
        if not isinstance(error, Exception):
            raise
        raise_if_received()  # an interrupt that TensorFlow turned into another exception
        return setup.record(n_train, state="failed", error=message, run_id=run_id)


def _end_trained_run(
    setup: TrialSetup, tracker: Tracker, run_id: str, result: TrainResult, n_train: int
) -> TrialRecord:
    """Log the final scores, end the run as complete or pruned, and return its record."""
    values = {
        "history": result.history,
        "val_accuracy": result.val_accuracy,
        "seconds": result.seconds,
        "run_id": run_id,
    }
    if result.stopped:
        tracker.end_run(run_id, "pruned")
        return setup.record(n_train, state="pruned", **values)
    final = {
        "final_val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "train_seconds": result.seconds,
        "n_params": result.n_params,
        **{f"test_accuracy.{name}": value for name, value in result.robustness.items()},
        **{f"val_accuracy.{name}": value for name, value in result.val_by_boxes.items()},
    }
    tracker.log_metrics(run_id, final, max(len(result.history) - 1, 0))
    tracker.end_run(run_id, "complete")
    return setup.record(
        n_train,
        state="complete",
        test_accuracy=result.test_accuracy,
        robustness=result.robustness,
        val_by_boxes=result.val_by_boxes,
        **values,
    )


def reuse_trial(
    setup: TrialSetup,
    twin: TrialRecord,
    data: Dataset,
    tracker: Tracker,
    parent_id: str,
    on_start: Callable[[str], None] | None = None,
) -> TrialRecord:
    """Record ``setup`` as a repeat of the completed ``twin`` (same policy, training and seed):
    its own child run gets the twin's metrics and artifacts, tagged ``duplicate_of``. An error
    or interrupt while copying ends the run as failed and propagates."""
    run_id: str | None = None
    try:
        with shielded():
            run_id = _start_run(setup, data, tracker, parent_id)
            if on_start is not None:
                on_start(run_id)
        if twin.run_id is not None:
            tracker.copy_results(twin.run_id, run_id)
    except BaseException as error:
        if run_id is not None:
            tracker.end_run(run_id, "failed", {"error": f"{type(error).__name__}: {error}"})
        raise
    tracker.end_run(run_id, "complete", {"duplicate_of": str(twin.number)})
    return twin.model_copy(
        update={
            "number": setup.number,
            "baseline": setup.baseline,
            "run_id": run_id,
            "duplicate_of": twin.number,
        }
    )
