"""A tracking server that stops mid-search: the search waits our one retry minute (MLflow's
own HTTP retries are off, and the minute is one budget for the store, not one per call), then
ends in one line; its trial is failed in Optuna, and once the server is back the next worker
closes the runs, so nothing stays RUNNING."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import REPO
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from servers import MlflowServer, Postgres, cluster_fixture, served_mlflow  # noqa: F401

from search.ops.retry import RETRY_SECONDS

pytestmark = pytest.mark.slow  # PostgreSQL, an MLflow server stopped for a minute

#: Seconds allowed beyond the retry minute, from the server's stop to the search's exit: the
#: server shutting down, the calls queued behind the lost one each failing once, the failed
#: trial told to Optuna and the process exiting (measured here: 0-5 s on a busy 2-core machine).
MARGIN = 15.0


@pytest.fixture(name="server")
def server_fixture(cluster: Postgres, tmp_path: Path) -> Iterator[MlflowServer]:
    cluster.create_database("outage_mlflow")
    (tmp_path / "artifacts").mkdir()
    with served_mlflow(
        cluster.url("outage_mlflow", "postgresql+psycopg"), tmp_path / "artifacts"
    ) as server:
        yield server


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "search.cli", *args]


def test_a_stopped_tracking_server_ends_the_search_within_the_retry_minute(
    cluster: Postgres, server: MlflowServer, tmp_path: Path
) -> None:
    storage = cluster.create_database("outage")
    search = subprocess.Popen(
        _cli("search", "--data", "shapes:train=400,val=48,test=48", "--space",
             str(REPO / "spaces" / "default.yaml"), "--trials", "20", "--epochs", "2",
             "--study", "outage", "--storage", storage, "--tracking-uri", server.uri,
             "--no-confirm"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    polled: optuna.Study | None = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # until a trial after the baseline trains
        assert search.poll() is None, search.communicate()
        try:
            polled = polled or optuna.load_study(study_name="outage", storage=storage)
            running = [
                t
                for t in polled.get_trials(states=(TrialState.RUNNING,))
                if t.number >= 1 and "mlflow_run_id" in t.user_attrs
            ]
        except KeyError:
            running = []
        if running:
            break
        time.sleep(0.2)
    assert running, "no trial started"
    stopped = time.monotonic()  # the outage cannot begin before the server starts stopping
    server.stop()
    try:
        _out, err = search.communicate(timeout=RETRY_SECONDS + MARGIN + 60)
    except subprocess.TimeoutExpired:
        search.kill()
        pytest.fail("the search still waited long after the retry minute")
    took = time.monotonic() - stopped
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert search.returncode == 2, err
    assert "Traceback" not in err and len(errors) == 1, err
    assert "the MLflow tracking store" in errors[0] and "did not answer for 60s" in errors[0]
    assert RETRY_SECONDS <= took <= RETRY_SECONDS + MARGIN, f"{took:.1f}s: {errors[0]}"
    limit = f"{RETRY_SECONDS:.0f} + {MARGIN:.0f}s"
    print(f"stopped server -> exit in {took:.1f}s (limit {limit}): {errors[0]}")

    trials = optuna.load_study(study_name="outage", storage=storage).trials
    assert trials[running[0].number].state == TrialState.FAIL
    assert TrialState.RUNNING not in [t.state for t in trials]

    server.start()  # back: the next worker repairs the study and closes what was left open
    done = subprocess.run(
        _cli("worker", "--study", "outage", "--trials", "1", "--storage", storage,
             "--tracking-uri", server.uri),
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("outage")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert "RUNNING" not in [r.info.status for r in runs]
    trials = optuna.load_study(study_name="outage", storage=storage).trials
    assert TrialState.RUNNING not in [t.state for t in trials]
    status = subprocess.run(
        _cli("status", "--study", "outage", "--storage", storage, "--tracking-uri", server.uri),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert status.returncode == 0, status.stdout + status.stderr
