"""A running search is browsable: the parent run's views are rewritten after finished trials
(throttled, off the training path) before the search ends."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, TINY_DATA
from mlflow.tracking import MlflowClient

import search.results.views
from search.data import load_dataset
from search.engines.common import SearchOptions
from search.engines.optuna import OptunaSearch
from search.results.views import ViewRefresh
from search.space import Space


def test_a_refresh_is_throttled_and_joined() -> None:
    calls: list[float] = []
    gate = threading.Event()

    def write() -> None:
        gate.wait(5)
        calls.append(time.monotonic())

    refresh = ViewRefresh(interval=0.0)
    assert refresh.maybe(write)
    assert not refresh.maybe(write)  # one is still running
    gate.set()
    refresh.join()
    assert len(calls) == 1
    slow = ViewRefresh(interval=3600.0)
    assert not slow.maybe(write)  # within the interval of its start


@pytest.mark.slow
def test_the_parent_run_shows_the_leaderboard_while_the_search_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search.results.views, "REFRESH_SECONDS", 0.0)
    options = SearchOptions(
        trials=3, epochs=1, study="live", storage=f"sqlite:///{tmp_path}/optuna.db",
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", confirm=False,
    )  # fmt: skip
    client = MlflowClient(options.tracking_uri)
    seen: list[tuple[str, set[str]]] = []
    run: OptunaSearch | None = None

    def echo(line: str) -> None:
        if run is not None and "] trial " in line:
            run.refresh.join()  # the refresh the previous trial started
            parent = client.get_run(run.parent_id)
            names = {a.path for a in client.list_artifacts(run.parent_id)}
            seen.append((parent.info.status, names))

    space = Space.load(REPO / "spaces" / "default.yaml")
    run = OptunaSearch(load_dataset(TINY_DATA), space, options, echo=echo)
    run.run()
    assert len(seen) == 3
    status, names = seen[1]  # after trial 0's refresh, during the search
    assert status == "RUNNING"
    assert {"leaderboard.csv", "optimization_history.png", "best_policy.yaml"} <= names
    assert seen[0][1] <= {"data_report.txt"}  # nothing refreshed before the first trial ended
