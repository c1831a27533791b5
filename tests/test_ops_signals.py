"""Inside ``signals.shielded()`` a signal is held until the block ends, so steps that belong
together (a run created and noted on its trial, a database commit) are not split by an
interrupt. A signal while a trial's run is being opened ends the run as failed."""

from __future__ import annotations

import inspect
import os
import random
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from search.crop.policy import CropPolicy
from search.data import load_dataset
from search.engines.optuna_storage import open_storage
from search.ops.retry import retried
from search.ops.signals import Interrupted, handled, shielded, stop_announced
from search.results.tracking import Tracker
from search.settings import TrainConfig
from search.study.record import TrialRecord
from search.study.trial import TrialSetup, reuse_trial, run_trial


def test_a_signal_in_a_shielded_block_is_raised_when_the_block_ends() -> None:
    steps = []
    with handled(), pytest.raises(Interrupted) as caught:
        with shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            with shielded():  # nested: the outermost block raises
                steps.append("after the signal")
            steps.append("after the inner block")
        steps.append("after the block")
    assert steps == ["after the signal", "after the inner block"]
    assert caught.value.exit_code == 143


def test_outside_a_shielded_block_a_signal_raises_at_once() -> None:
    steps = []
    with handled(), pytest.raises(Interrupted):
        with shielded():
            steps.append("shielded")
        os.kill(os.getpid(), signal.SIGINT)
        steps.append("after the signal")
    assert steps == ["shielded"]


def _setup(tmp_path: Path) -> tuple[TrialSetup, Tracker, str, MlflowClient]:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "opened")
    parent = tracker.start_parent("opened", {})
    setup = TrialSetup(
        "opened", 1, CropPolicy(kind="center", size=(16, 16)), TrainConfig(epochs=1, width=4)
    )
    return setup, tracker, parent, MlflowClient(uri)


def test_a_signal_while_a_trial_run_opens_ends_the_run_as_failed(tmp_path: Path) -> None:
    data = load_dataset("shapes:train=32,val=16,test=16")
    setup, tracker, parent, client = _setup(tmp_path)
    noted: list[str] = []

    def note_and_signal(run_id: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the run is being noted
        noted.append(run_id)

    with handled(), pytest.raises(Interrupted):
        run_trial(setup, data, tracker, parent, on_start=note_and_signal)
    assert len(noted) == 1  # the run was noted on its trial before the interrupt was raised
    run = client.get_run(noted[0])
    assert run.info.status == "FAILED"
    assert run.data.tags["state"] == "failed"
    assert "Interrupted" in run.data.tags["error"]


def test_a_signal_while_a_reused_trial_run_opens_ends_the_run_as_failed(tmp_path: Path) -> None:
    data = load_dataset("shapes:train=32,val=16,test=16")
    setup, tracker, parent, client = _setup(tmp_path)
    twin = setup.record(len(data.train), state="complete", val_accuracy=0.5, number=0)
    assert isinstance(twin, TrialRecord)
    noted: list[str] = []

    def note_and_signal(run_id: str) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        noted.append(run_id)

    with handled(), pytest.raises(Interrupted):
        reuse_trial(setup, twin, data, tracker, parent, note_and_signal)
    assert client.get_run(noted[0]).info.status == "FAILED"


def test_a_shielded_call_finishes_before_the_signal_is_raised() -> None:
    steps: list[str] = []

    def commit() -> str:
        os.kill(os.getpid(), signal.SIGINT)  # arrives half-way
        steps.append("committed")
        return "done"

    with handled(), pytest.raises(Interrupted):
        retried(commit)
    assert steps == ["committed"]
    with handled():  # a signal received before the call does not stop a later one
        with pytest.raises(Interrupted), shielded():
            os.kill(os.getpid(), signal.SIGTERM)
        assert retried(lambda: "clean-up") == "clean-up"


def test_an_interrupted_study_storage_still_works_for_the_clean_up(tmp_path: Path) -> None:
    """SIGINT at random moments of ask/attribute/tell on sqlite: each time the interrupt comes
    out as itself, and the same storage then fails the trial and takes new ones."""
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    for attempt in range(12):
        study = optuna.create_study(study_name=f"s{attempt}", storage=storage)
        timer = threading.Timer(
            random.Random(attempt).uniform(0.01, 0.2),
            lambda: os.kill(os.getpid(), signal.SIGINT),
        )
        with handled(), pytest.raises(Interrupted):
            timer.start()
            for number in range(100_000):
                trial = study.ask()
                trial.set_user_attr("number", number)
                study.tell(trial, 1.0)
        timer.join()
        for frozen in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            study._storage.set_trial_state_values(
                frozen._trial_id, state=optuna.trial.TrialState.FAIL
            )
        trial = study.ask()
        study.tell(trial, 2.0)
        assert optuna.trial.TrialState.RUNNING not in [t.state for t in study.trials]


def test_a_signal_during_a_study_s_commit_waits_for_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna's cached storage creates trials and reads them through private storage methods:
    those are shielded too, so a signal inside their commit is raised once it is done."""
    from sqlalchemy.orm import Session

    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path}/optuna.db"))
    commit = Session.commit

    def signalled_commit(self: Session) -> None:
        if any(frame.function == "_create_new_trial" for frame in inspect.stack()):
            os.kill(os.getpid(), signal.SIGINT)
        commit(self)

    monkeypatch.setattr(Session, "commit", signalled_commit)
    with handled(), pytest.raises(Interrupted):
        study.ask()
    monkeypatch.setattr(Session, "commit", commit)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING]


def test_an_interrupt_python_cannot_raise_prints_no_traceback_and_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A signal handled inside a weakref callback: Python reports the exception as
    unraisable; the handler's hook drops it and the signal stays received, while any other
    unraisable error still reaches the hook that was there before."""
    import sys
    import weakref

    from search.ops import signals

    class Owner:
        pass

    reported: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: reported.append(args.exc_value))

    def unraisable(callback: Callable[[], None]) -> None:
        owner = Owner()
        weakref.finalize(owner, callback)
        del owner  # the callback runs where its exception cannot propagate

    def fails() -> None:
        raise ValueError("other")

    with signals.handled():
        unraisable(lambda: signals._handle(signal.SIGINT, None))
        assert isinstance(signals.received(), signals.Interrupted)
        unraisable(fails)
        with pytest.raises(signals.Interrupted):
            signals.raise_unraised()
        signals.raise_unraised()  # once
    assert [type(error) for error in reported] == [ValueError]
    signals.forget()


def test_a_training_stops_at_its_next_batch_on_an_interrupt_python_could_not_raise() -> None:
    """An interrupt dropped in a weakref callback after the first epoch stops the training
    in the second (it would otherwise train on and finish)."""
    import weakref

    from search.ops import signals
    from search.training.fit import train_policy

    class Owner:
        pass

    epochs: list[int] = []

    def drop_an_interrupt(epoch: int, metrics: dict[str, float]) -> bool:
        epochs.append(epoch)
        owner = Owner()
        weakref.finalize(owner, signals._handle, signal.SIGTERM, None)
        del owner
        return False

    data = load_dataset("shapes:train=64,val=16,test=16")
    config = TrainConfig(epochs=3, batch_size=32, width=8, depth=2, seed=1)
    with signals.handled(), pytest.raises(signals.Interrupted, match="SIGTERM"):
        train_policy(CropPolicy(kind="full", size=(24, 24)), data, config, drop_an_interrupt)
    assert epochs == [0]
    signals.forget()


def test_an_interrupt_is_announced_at_once_and_goes_on() -> None:
    said: list[str] = []
    with pytest.raises(Interrupted), stop_announced(said.append):
        raise Interrupted(signal.SIGTERM)
    assert len(said) == 1 and said[0].startswith("stopping:")
    with pytest.raises(ValueError), stop_announced(said.append):
        raise ValueError("not an interrupt")
    assert len(said) == 1
