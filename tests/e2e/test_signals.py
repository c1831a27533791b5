"""Signals and dead processes, through the real CLI in a subprocess: SIGTERM and SIGINT end the
running trial as failed in Optuna and MLflow, close the parent run, print one line and exit
143/130; after ``kill -9``, the next run on the study marks the dead trial failed first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from conftest import REPO
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

pytestmark = pytest.mark.slow

#: With 12 epochs, a trial lasts several seconds, so a signal lands inside one.
DATA = "shapes:train=800,val=48,test=48"


def start_search(folder: Path, study: str, trials: int = 3) -> subprocess.Popen[str]:
    args = [
        sys.executable, "-m", "search.cli", "search", "--data", DATA, "--trials", str(trials),
        "--epochs", "12", "--study", study, "--no-confirm",
        "--storage", f"sqlite:///{folder}/optuna.db", "--tracking-uri", f"sqlite:///{folder}/mlflow.db",
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def wait_for_trial(
    folder: Path, study: str, number: int, ready: Callable[[FrozenTrial], bool]
) -> None:
    """Poll the study until trial ``number`` exists and is ``ready`` (2 minutes at most)."""
    deadline = time.monotonic() + 120
    storage = f"sqlite:///{folder}/optuna.db"
    while time.monotonic() < deadline:
        try:
            trials = optuna.load_study(study_name=study, storage=storage).trials
        except Exception:  # the study is not created yet
            trials = []
        if len(trials) > number and ready(trials[number]):
            return
        time.sleep(0.05)
    raise AssertionError(f"trial {number} never got ready")


def training(trial: FrozenTrial) -> bool:
    """Running, with its MLflow run noted and its first epoch reported: the signal then lands
    with most of its epochs still to go, however fast one epoch is."""
    return (
        trial.state == TrialState.RUNNING
        and "mlflow_run_id" in trial.user_attrs
        and bool(trial.intermediate_values)
    )


def wait_for_running_trial(folder: Path, study: str, number: int) -> None:
    """Until trial ``number`` is inside its epochs."""
    wait_for_trial(folder, study, number, training)


def runs(folder: Path, study: str) -> list[Run]:
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    experiment = client.get_experiment_by_name(study)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id]))


def wait_for_finished_trial(folder: Path, study: str, number: int) -> None:
    """Until trial ``number`` has finished: the signal then lands at the trial boundary."""
    wait_for_trial(folder, study, number, lambda trial: trial.state.is_finished())


@pytest.mark.parametrize("when", ["mid-epoch", "boundary"])
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_fails_the_running_trial_and_exits(
    tmp_path: Path, signum: signal.Signals, code: int, when: str
) -> None:
    process = start_search(tmp_path, "signalled")
    if when == "mid-epoch":
        wait_for_running_trial(tmp_path, "signalled", 1)
    else:
        wait_for_finished_trial(tmp_path, "signalled", 0)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1, stderr
    stopping = [line for line in stdout.splitlines() if line.startswith("stopping:")]
    assert len(stopping) == 1, stdout  # said at once, before the views are written
    study = optuna.load_study(study_name="signalled", storage=f"sqlite:///{tmp_path}/optuna.db")
    states = [t.state for t in study.trials]
    assert states[0] == optuna.trial.TrialState.COMPLETE
    assert optuna.trial.TrialState.RUNNING not in states
    all_runs = runs(tmp_path, "signalled")
    statuses = {r.data.tags.get("trial", "parent"): r.info.status for r in all_runs}
    assert statuses["0"] == "FINISHED"
    assert "RUNNING" not in statuses.values()  # the parent run too
    if when == "mid-epoch":
        assert states[1] == optuna.trial.TrialState.FAIL and statuses["1"] == "FAILED"


def test_after_kill_9_the_next_run_fails_the_dead_trial_first(tmp_path: Path) -> None:
    process = start_search(tmp_path, "killed")
    wait_for_running_trial(tmp_path, "killed", 1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    dead = optuna.load_study(study_name="killed", storage=storage).trials[1]
    assert dead.state == optuna.trial.TrialState.RUNNING  # as kill -9 left it
    resumed = start_search(tmp_path, "killed", trials=1)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "marked failed: trial(s) 1" in stdout
    trials = optuna.load_study(study_name="killed", storage=storage).trials
    assert trials[1].state == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.RUNNING not in [t.state for t in trials]
    dead_run = [r for r in runs(tmp_path, "killed") if r.data.tags.get("trial") == "1"]
    assert [r.info.status for r in dead_run] == ["FAILED"]
    assert "trials: " in stdout and "1 failed" not in stdout.split("trials: ")[1].split("\n")[0]
