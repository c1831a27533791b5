"""A configuration another process is training is not trained twice: the later trial waits
for its running twin and reuses its result."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import TINY_DATA
from optuna.trial import TrialState

import search.engines.optuna as engine
import search.engines.optuna_storage as optuna_storage
from search.data import load_dataset
from search.engines.common import SearchOptions
from search.engines.optuna import OptunaSearch
from search.engines.optuna_storage import (
    earlier_running_twin,
    owner,
    wait_for_trial,
)
from search.settings import TrialKey
from search.space import Space
from search.study.trial import TrialSetup


@pytest.fixture
def search(tmp_path: Path) -> OptunaSearch:
    options = SearchOptions(
        trials=2,
        epochs=1,
        study="twins",
        storage=f"sqlite:///{tmp_path}/optuna.db",
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        confirm=False,
    )
    path = tmp_path / "space.yaml"  # no kind besides the full image: the baseline is the anchor
    path.write_text("params:\n  kind: {type: categorical, choices: [full]}\n")
    space = Space.load(path)
    return OptunaSearch(load_dataset(TINY_DATA), space, options, echo=lambda line: None)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """Another live process of this machine (the twin's owner)."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_a_trial_waits_for_its_running_twin_and_reuses_its_result(
    search: OptunaSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[int] = []
    release = threading.Event()

    def fake_run_trial(setup: TrialSetup, data: Any, tracker: Any, parent: str, *a: Any,
                       **k: Any) -> Any:  # fmt: skip
        trained.append(setup.number)
        run_id = tracker.start_trial(parent, setup.number, "x", {}, {"stage": "search"})
        assert release.wait(30)
        tracker.end_run(run_id, "complete")
        n = len(data.train)
        return setup.record(n, state="complete", val_accuracy=0.75, seconds=1.0, run_id=run_id)

    monkeypatch.setattr(engine, "run_trial", fake_run_trial)
    monkeypatch.setattr(optuna_storage, "TWIN_POLL_SECONDS", 0.05)
    lines: list[str] = []
    search.echo = lines.append
    assert [t.state for t in search.study.trials] == [TrialState.WAITING]  # queued at creation
    search.study.enqueue_trial({}, user_attrs={"baseline": True})  # the same again, as a retry
    first = threading.Thread(target=search.study.optimize, args=(search.objective,),
                             kwargs={"n_trials": 1})  # fmt: skip
    first.start()
    deadline = time.monotonic() + 30
    while not trained and time.monotonic() < deadline:  # trial 0 is training
        time.sleep(0.02)
    second = threading.Thread(target=search.study.optimize, args=(search.objective,),
                              kwargs={"n_trials": 1})  # fmt: skip
    second.start()
    while not lines and time.monotonic() < deadline:  # trial 1 found its twin
        time.sleep(0.02)
    time.sleep(0.3)
    assert search.study.trials[1].state == TrialState.RUNNING  # waiting, not training
    release.set()
    first.join(30)
    second.join(30)

    assert trained == [0]  # trained once
    assert lines == ["trial 1: trial 0 is training the same configuration; waiting for its result"]
    zero, one = search.study.trials
    assert [zero.state, one.state] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert one.value == zero.value == 0.75
    record = one.user_attrs["record"]
    assert record["duplicate_of"] == 0 and record["run_id"] != zero.user_attrs["record"]["run_id"]
    assert one.user_attrs[TrialKey.CONFIGURATION] == zero.user_attrs[TrialKey.CONFIGURATION]


def test_only_an_earlier_live_twin_is_waited_for(tmp_path: Path, live_pid: int) -> None:
    study = optuna.create_study(study_name="t", storage=f"sqlite:///{tmp_path}/o.db")
    host = owner().rpartition(":")[0]
    dead = subprocess.Popen(["true"])
    dead.wait()
    trials = [study.ask() for _ in range(3)]
    for trial, pid in zip(trials, (dead.pid, live_pid, live_pid), strict=True):
        trial.set_user_attr(TrialKey.OWNER, f"{host}:{pid}")
        trial.set_user_attr(TrialKey.CONFIGURATION, "same")
    assert earlier_running_twin(study, 2, "same").number == 1  # type: ignore[union-attr]
    assert earlier_running_twin(study, 1, "same") is None  # trial 0's process is dead
    assert earlier_running_twin(study, 2, "other") is None
    assert earlier_running_twin(study, 0, "same") is None

    frozen = study.trials[1]
    threading.Timer(0.3, study.tell, args=(trials[1], 0.5)).start()
    started = time.monotonic()
    done = wait_for_trial(study, frozen, poll=0.05, limit=30)
    assert done.state == TrialState.COMPLETE and 0.2 < time.monotonic() - started < 10
    still = wait_for_trial(study, study.trials[2], poll=0.05, limit=0.2)  # bounded
    assert still.state == TrialState.RUNNING


def test_another_host_s_silent_trial_is_failed_by_the_heartbeat_and_retried_once(
    tmp_path: Path,
) -> None:
    """A trial whose owner is another machine (no process to look up) is failed only through
    the heartbeat: once it has been silent past the grace, the next process to repair the
    study fails it, closes its MLflow run as failed and queues its configuration once."""
    from search.results.tracking import Tracker

    storage = optuna_storage.open_storage(f"sqlite:///{tmp_path}/o.db")
    assert isinstance(storage, optuna.storages.RDBStorage)
    storage.grace_period = 1  # seconds of silence before a trial counts as dead
    study = optuna.create_study(study_name="away", storage=storage, direction="maximize")
    trial = study.ask({"context": optuna.distributions.FloatDistribution(0.0, 1.0)})
    trial.set_user_attr(TrialKey.OWNER, "a-machine-elsewhere:4242")
    tracker = Tracker(f"sqlite:///{tmp_path}/m.db", "away")
    parent = tracker.start_parent("away", {})
    run_id = tracker.start_trial(parent, 0, "full", {}, {})
    trial.set_user_attr(TrialKey.RUN_ID, run_id)
    storage.record_heartbeat(trial._trial_id)

    assert optuna_storage.repair_stale_trials(study, tracker) == [], "alive within the grace"
    assert study.trials[0].state == TrialState.RUNNING
    time.sleep(2.5)
    assert optuna_storage.repair_stale_trials(study, tracker) == [0]
    first, retry = study.get_trials(deepcopy=False)
    assert first.state == TrialState.FAIL and tracker.run_status(run_id) == "FAILED"
    assert retry.state == TrialState.WAITING and retry.params == first.params
    assert retry.system_attrs["failed_trial"] == 0 and TrialKey.OWNER not in retry.user_attrs
    assert optuna_storage.repair_stale_trials(study, tracker) == [], "repaired once"


def test_a_tell_whose_answer_was_lost_is_a_success_and_a_trial_finished_otherwise_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarted after committing a tell but before answering it: the retry finds
    the trial finished as told and succeeds (a worker of the soak ended with "Trial#6 has
    already finished"). A trial another process finished meanwhile still refuses the tell."""
    from sqlalchemy.exc import OperationalError

    storage = optuna_storage.open_storage(f"sqlite:///{tmp_path}/o.db")
    assert isinstance(storage, optuna.storages.RDBStorage)
    study = optuna.create_study(study_name="lost", storage=storage, direction="maximize")
    commit = optuna.storages.RDBStorage.set_trial_state_values
    before_losing: list[Any] = []  # what the call commits before its connection drops

    def lose_the_answer(self: Any, trial_id: int, state: TrialState, values: Any = None) -> bool:
        if before_losing:
            before_losing.pop()(self, trial_id)
            raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
        return commit(self, trial_id, state, values)

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", lose_the_answer)
    told = study.ask()
    before_losing.append(lambda self, trial_id: commit(self, trial_id, TrialState.COMPLETE, [0.75]))
    study.tell(told, 0.75)
    assert not before_losing, "the lost answer was retried"
    assert study.trials[0].state == TrialState.COMPLETE and study.trials[0].value == 0.75

    failed = study.ask()
    before_losing.append(lambda self, trial_id: commit(self, trial_id, TrialState.FAIL))
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(failed._trial_id, TrialState.COMPLETE, [0.5])
    assert study.trials[1].state == TrialState.FAIL


def test_a_new_trial_whose_answer_was_lost_is_created_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insert of ``study.ask`` committed, then the connection dropped before the answer:
    Optuna's own retry and ours find the trial the lost attempt made instead of leaving a
    second, ownerless RUNNING one that nothing would ever repair."""
    import contextlib

    from optuna.storages._rdb import storage as rdb
    from sqlalchemy.exc import OperationalError

    storage = optuna_storage.open_storage(f"sqlite:///{tmp_path}/o.db")
    study = optuna.create_study(study_name="lost", storage=storage, direction="maximize")
    session_of = rdb._create_scoped_session
    losing: list[bool] = []

    @contextlib.contextmanager
    def commit_then_lose(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with session_of(*args, **kwargs) as session:
            yield session
        if losing:  # committed; the answer is lost
            losing.pop()
            lost = OperationalError("COMMIT", {}, Exception("server closed the connection"))
            raise optuna.exceptions.StorageInternalError("lost") from lost

    monkeypatch.setattr(rdb, "_create_scoped_session", commit_then_lose)
    losing.append(True)
    first = study.ask()
    assert not losing, "the lost answer was retried"
    study.enqueue_trial({"x": 1.0})  # a template (Optuna's add_trial) after a lost answer too
    losing.append(True)
    study.add_trial(optuna.create_trial(state=TrialState.WAITING, params={}, distributions={}))
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.WAITING, TrialState.WAITING]
    assert first.number == 0 and len({t.system_attrs[optuna_storage.CREATED] for t in trials}) == 3
