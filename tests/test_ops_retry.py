"""A trial whose worker died is failed, its run closed as FAILED with a reason, and it is queued
again once with the same parameters."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from search.engines.optuna_storage import (
    fail_interrupted,
    open_storage,
    owner,
    repair_stale_trials,
)
from search.results.tracking import Tracker
from search.settings import TrialKey


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _die(study: optuna.Study, tracker: Tracker, parent: str) -> tuple[int, str]:
    """Start the next trial as a worker would, then leave it as kill -9 does."""
    trial = study.ask()
    trial.suggest_float("context", 0.0, 1.0)
    run = tracker.start_trial(parent, trial.number, "x", {}, {"stage": "search"})
    trial.set_user_attr(TrialKey.OWNER, f"{socket.gethostname()}:{_dead_pid()}")
    trial.set_user_attr(TrialKey.RUN_ID, run)
    return trial.number, run


def test_a_dead_workers_trial_is_retried_once(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(study_name="r", storage=storage, direction="maximize")
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "r")
    parent = tracker.start_parent("r", {})
    number, run = _die(study, tracker, parent)

    assert repair_stale_trials(study, tracker) == [number]
    assert repair_stale_trials(study, tracker) == []  # reported once: nothing left to repair
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert trials[1].state == TrialState.WAITING and trials[1].params == trials[0].params
    assert trials[1].system_attrs["failed_trial"] == 0
    closed = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run)
    assert closed.info.status == "FAILED"
    assert closed.data.tags["error"] == "its process died during the trial"

    retry, _ = _die(study, tracker, parent)  # the retry takes the queued trial, and dies too
    assert retry == 1
    repair_stale_trials(study, tracker)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.FAIL]  # one retry only


def test_a_trial_killed_after_its_run_ended_is_failed_in_both_stores(tmp_path: Path) -> None:
    """Killed between ending its MLflow run and Optuna's tell (the soak met it): the trial is
    failed and retried, and its FINISHED run is failed too, so the stores agree."""
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(study_name="r", storage=storage, direction="maximize")
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "r")
    parent = tracker.start_parent("r", {})
    number, run = _die(study, tracker, parent)
    tracker.end_run(run, "complete")

    assert repair_stale_trials(study, tracker) == [number]
    closed = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run)
    assert closed.info.status == "FAILED", "Optuna fails the trial: its run must say so too"
    assert closed.data.tags["error"] == "its process died during the trial"
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.WAITING]


def test_an_interrupt_fails_only_this_process_s_unfinished_trials(tmp_path: Path) -> None:
    study = optuna.create_study(
        study_name="i", storage=f"sqlite:///{tmp_path}/optuna.db", direction="maximize"
    )
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "i")
    parent = tracker.start_parent("i", {})
    ours = study.ask()  # the signal came before the objective noted an owner
    noted = study.ask()
    run = tracker.start_trial(parent, noted.number, "x", {}, {"stage": "search"})
    noted.set_user_attr(TrialKey.OWNER, owner())
    noted.set_user_attr(TrialKey.RUN_ID, run)
    other = study.ask()
    other.set_user_attr(TrialKey.OWNER, "elsewhere:1")

    assert fail_interrupted(study, tracker, shared=True) == [noted.number]
    assert fail_interrupted(study, tracker, shared=False) == [ours.number]
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.RUNNING]
    closed = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run)
    assert closed.info.status == "FAILED" and closed.data.tags["error"] == "interrupted"


def test_a_run_whose_id_the_dead_trial_never_noted_is_closed_too(tmp_path: Path) -> None:
    """Killed between creating its MLflow run and noting the run's id on the trial (the soak
    found such a run left RUNNING): the repair finds the run by its tags."""
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(study_name="n", storage=storage, direction="maximize")
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "n")
    parent = tracker.start_parent("n", {})
    trial = study.ask()
    trial.suggest_float("context", 0.0, 1.0)
    run = tracker.start_trial(parent, trial.number, "x", {}, {"stage": "search"})
    confirm = tracker.start_trial(parent, trial.number, "x", {}, {"stage": "confirm"})
    trial.set_user_attr(TrialKey.OWNER, f"{socket.gethostname()}:{_dead_pid()}")

    assert repair_stale_trials(study, tracker) == [trial.number]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    closed = client.get_run(run)
    assert closed.info.status == "FAILED"
    assert closed.data.tags["error"] == "its process died during the trial"
    assert client.get_run(confirm).info.status == "RUNNING"  # not a search run of that trial
