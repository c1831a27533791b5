"""Faults survived, through the real CLI in subprocesses: Ctrl-C of a search on PostgreSQL, two
searches started in the same second on a fresh store, PostgreSQL restarted during a search.
Each ends with ``cropsearch status`` reporting that Optuna and MLflow agree."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from conftest import REPO
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from servers import Postgres, cluster_fixture, tracking_fixture  # noqa: F401 (fixtures)

from search.engines.optuna_storage import open_storage
from search.ops.stores import created_once

pytestmark = pytest.mark.slow  # PostgreSQL, an MLflow server, and searches in subprocesses

DATA = "shapes:train=200,val=48,test=48"


def _search(study: str, storage: str, tracking: str, trials: int, epochs: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "search.cli", "search", "--data", DATA,
        "--space", str(REPO / "spaces" / "default.yaml"), "--trials", str(trials),
        "--epochs", str(epochs), "--study", study, "--storage", storage,
        "--tracking-uri", tracking, "--no-confirm",
    ]  # fmt: skip


def _start(command: list[str], cwd: Path) -> subprocess.Popen[str]:
    """The command in ``cwd``: MLflow puts the artifacts of a database store in ./mlruns."""
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
    )


def _status(study: str, storage: str, tracking: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "search.cli", "status", "--study", study,
         "--storage", storage, "--tracking-uri", tracking],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def _training(storage: str, study: str, process: subprocess.Popen[str], least: int = 0) -> int:
    """Wait until ``process`` trains a trial numbered ``least`` or more (its run noted)."""
    deadline = time.monotonic() + 240
    loaded: optuna.Study | None = None  # one storage (and connection pool) for the polling
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            loaded = loaded or optuna.load_study(study_name=study, storage=storage)
            trials = loaded.get_trials()
        except KeyError:  # not created yet
            trials = []
        for trial in trials:
            if (
                trial.state == TrialState.RUNNING
                and trial.number >= least
                and "mlflow_run_id" in trial.user_attrs
            ):
                return trial.number
        time.sleep(0.1)
    pytest.fail("no trial started training")


def _runs(tracking: str, study: str) -> list[object]:
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(study)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], max_results=1000))


def test_ctrl_c_of_a_search_on_postgresql(cluster: Postgres, tracking: str, tmp_path: Path) -> None:
    storage = cluster.create_database("interrupted")
    search = _start(_search("interrupted", storage, tracking, trials=4, epochs=2), tmp_path)
    _training(storage, "interrupted", search)
    search.send_signal(signal.SIGINT)
    _, err = search.communicate(timeout=120)
    assert search.returncode == 130, err
    tensorflow = ("absl::InitializeLog", "oneDNN")  # its start-up lines, written below Python
    ours = [s for s in err.splitlines() if s.strip() and not any(t in s for t in tensorflow)]
    assert ours == ["interrupted (SIGINT): the running trial is marked failed"], err
    study = optuna.load_study(study_name="interrupted", storage=storage)
    assert TrialState.RUNNING not in [t.state for t in study.trials]
    assert TrialState.FAIL in [t.state for t in study.trials]
    runs = _runs(tracking, "interrupted")
    assert "RUNNING" not in [r.info.status for r in runs]  # type: ignore[attr-defined]
    code, output = _status("interrupted", storage, tracking)
    assert code == 0 and output.strip().endswith("Optuna and MLflow agree"), output


@pytest.mark.parametrize("store", ["sqlite", "postgresql", "server"])
def test_two_searches_started_together_on_a_fresh_store(
    cluster: Postgres, tracking: str, store: str, tmp_path: Path
) -> None:
    """Both processes create the study, its experiment and its parent run at once: on a
    tracking server (no lock to share) one gets RESOURCE_ALREADY_EXISTS for the experiment
    and the duplicate parent run is removed."""
    served = tracking
    if store == "sqlite":
        storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    elif store == "postgresql":  # fresh databases: both processes create Optuna's and MLflow's
        storage = cluster.create_database("together_optuna")
        tracking = cluster.create_database("together_mlflow")
    else:  # an MLflow server: its experiment and parent runs are created over HTTP
        storage, tracking = cluster.create_database("together_served"), served
    command = _search("together", storage, tracking, trials=2)
    first, second = _start(command, tmp_path), _start(command, tmp_path)
    for process in (first, second):
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    if store == "postgresql":  # MLflow's default artifact folder, here not in the checkout
        assert (tmp_path / "mlruns").is_dir()
    study = optuna.load_study(study_name="together", storage=storage)
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.trials) == 1
    queued = [repr(t.system_attrs["fixed_params"]) for t in study.trials
              if "fixed_params" in t.system_attrs]  # fmt: skip
    assert len(queued) == len(set(queued)) == 6  # the baseline and 5 anchors, once each
    started = [t for t in study.trials if t.state != TrialState.WAITING]
    assert len(started) == 4 and {t.state for t in started} <= {
        TrialState.COMPLETE,
        TrialState.PRUNED,
    }
    runs = _runs(tracking, "together")
    parents = [r for r in runs if r.data.tags.get("cropsearch.role") == "study"]  # type: ignore[attr-defined]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"  # type: ignore[attr-defined]
    assert study.user_attrs["mlflow_parent_run_id"] == parents[0].info.run_id  # type: ignore[attr-defined]
    code, output = _status("together", storage, tracking)
    assert code == 0 and output.strip().endswith("Optuna and MLflow agree"), output


def test_a_postgresql_restart_during_a_search_loses_nothing(
    cluster: Postgres, tracking: str, tmp_path: Path
) -> None:
    """Last in this module: it restarts the shared cluster (the MLflow server's too)."""
    storage = cluster.create_database("restarted_search")
    search = _start(_search("restarted_search", storage, tracking, trials=4, epochs=2), tmp_path)
    _training(storage, "restarted_search", search, least=1)
    cluster.stop()
    time.sleep(5)
    cluster.start()
    _, err = search.communicate(timeout=600)
    assert search.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="restarted_search", storage=storage)
    started = [t for t in study.trials if t.state != TrialState.WAITING]
    assert len(started) == 4
    assert {t.state for t in started} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert all("record" in t.user_attrs for t in started)  # every finished trial kept
    runs = _runs(tracking, "restarted_search")
    assert "RUNNING" not in [r.info.status for r in runs]  # type: ignore[attr-defined]
    code, output = _status("restarted_search", storage, tracking)
    assert code == 0 and output.strip().endswith("Optuna and MLflow agree"), output


def test_the_creation_lock_waits_for_a_restarting_postgresql(cluster: Postgres) -> None:
    """A worker that opens the study while PostgreSQL restarts waits for it (the soak found
    one that ended in a psycopg traceback), and a restart while the lock is held does not
    break its release (the lost session has released it)."""
    url = cluster.create_database("lock")
    cluster.stop()
    restart = threading.Timer(3.0, cluster.start)
    restart.start()
    started = time.monotonic()
    try:
        with created_once(url, timeout=30):
            pass
    finally:
        restart.join()
    assert 2.5 < time.monotonic() - started < 60
    with created_once(url, timeout=30):
        cluster.stop()
        cluster.start()
    taken = time.monotonic()
    with created_once(url, timeout=30):  # free again, at once
        assert time.monotonic() - taken < 5


def test_a_worker_opening_the_study_waits_for_a_restarting_postgresql(cluster: Postgres) -> None:
    """Opening the storage (connect, schema check) and loading the study are retried: the soak
    found a worker started during a restart that ended in a traceback."""
    url = cluster.create_database("joining")
    optuna.create_study(study_name="joining", storage=url)
    cluster.stop()
    restart = threading.Timer(3.0, cluster.start)
    restart.start()
    try:
        study = optuna.load_study(study_name="joining", storage=open_storage(url))
    finally:
        restart.join()
    assert study.study_name == "joining" and study.trials == []
