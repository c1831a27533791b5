"""Writes off the training path: in order, joined, errors kept; a trial's run is whole when
``run_trial`` returns."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from search.crop.policy import CropPolicy
from search.data import load_dataset
from search.results.tracking import Tracker
from search.settings import TrainConfig
from search.study.background import Writes
from search.study.trial import TrialSetup, run_trial


def test_writes_run_in_order_off_the_calling_thread() -> None:
    seen: list[tuple[int, str]] = []
    writes = Writes()
    for number in range(5):
        writes.submit(
            lambda n: (time.sleep(0.01), seen.append((n, threading.current_thread().name))), number
        )
    writes.join()
    assert [n for n, _ in seen] == [0, 1, 2, 3, 4]
    assert all(name != threading.current_thread().name for _, name in seen)


def test_join_raises_the_first_error_after_waiting_for_all() -> None:
    seen: list[int] = []
    writes = Writes()
    writes.submit(lambda: 1 / 0)
    writes.submit(seen.append, 1)
    with pytest.raises(ZeroDivisionError):
        writes.join()
    assert seen == [1]
    quiet = Writes()
    quiet.submit(lambda: 1 / 0)
    quiet.join(raise_errors=False)


def test_a_trial_run_is_complete_in_mlflow_when_run_trial_returns(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    data = load_dataset("shapes:train=64,val=32,test=32")
    tracker = Tracker(uri, "writes")
    parent = tracker.start_parent("writes", {})
    setup = TrialSetup(
        "writes",
        0,
        CropPolicy(kind="center", size=(16, 16)),
        TrainConfig(epochs=2, width=4, depth=2),
    )
    record = run_trial(setup, data, tracker, parent)
    client = MlflowClient(uri)
    run = client.get_run(str(record.run_id))
    assert record.state == "complete" and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [0, 1]
    assert [m.value for m in history] == [h["val_accuracy"] for h in record.history]
    assert "crop_samples.png" in [a.path for a in client.list_artifacts(run.info.run_id)]
