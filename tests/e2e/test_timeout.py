"""``--timeout`` end to end, with a stand-in trainer of known cost (0.4 s a training): the
search stops starting screening trials at its deadline, still runs every anchor, and
confirms on a smaller share of the training data when the budget is tight."""

from __future__ import annotations

import contextlib
import io
import re
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from test_pruning import fake_train

from search.cli import main

pytestmark = pytest.mark.slow  # whole searches through the CLI (a stand-in trainer)

SECONDS_PER_TRAINING = 0.4


def slow_fake_train(*args: Any, **kwargs: Any) -> Any:
    time.sleep(SECONDS_PER_TRAINING)
    result = fake_train(*args, **kwargs)
    result.seconds = SECONDS_PER_TRAINING
    return result


def test_a_timeout_stops_screening_and_shrinks_the_confirmation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import search.training.fit

    monkeypatch.setattr(search.training.fit, "train_policy", slow_fake_train)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    args = [
        "search", "--data", "shapes:train=200,val=24,test=24,canvas=48", "--epochs", "1",
        "--trials", "200", "--timeout", "12", "--screen", "0.25", "--top", "1",
        "--repeats", "3", "--study", "budget", "--storage", storage,
        "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
    ]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    output = out.getvalue()
    study = optuna.load_study(study_name="budget", storage=storage)
    started = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    assert 6 <= len(started) < 200, "every anchor ran, and the deadline stopped screening"
    assert "left of the budget allow" in output
    share = re.search(
        r"confirming \d+ policies x 3 seeds \(1 epochs, (\d+)% of the training", output
    )
    assert share is not None, output
    assert 25 <= int(share.group(1)) < 100, output


def test_the_whole_command_keeps_to_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A confirmation too long for the budget (3 policies x 30 seeds) stops between rounds:
    the command, confirmation and views included, ends within the timeout + 5%, and says how
    much of it it used."""
    import search.training.fit

    monkeypatch.setattr(search.training.fit, "train_policy", slow_fake_train)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    args = [
        "search", "--data", "shapes:train=200,val=24,test=24,canvas=48", "--epochs", "1",
        "--trials", "200", "--timeout", "40", "--top", "2", "--repeats", "20",
        "--study", "promise", "--storage", storage,
        "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
    ]  # fmt: skip
    out = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    used = time.monotonic() - started
    output = out.getvalue()
    assert used <= 40 * 1.05, output
    assert "the time budget ends the confirmation before seed" in output, output
    assert re.search(r"done in \d+s of the 40s budget", output), output
    confirmation = re.search(r"confirming 3 policies x 20 seeds", output)
    assert confirmation is not None, output
