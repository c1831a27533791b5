"""A resumed study samples anew: its sampler is reseeded from the trials already run, so the
trials it adds are not the ones its first run sampled (a stand-in trainer keeps it quick)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import optuna
import pytest
from conftest import TINY_DATA
from test_pruning import fake_train

from search.cli import main

pytestmark = pytest.mark.slow  # whole searches through the CLI (a stand-in trainer)


def test_a_resumed_study_s_new_trials_are_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import search.training.fit

    monkeypatch.setattr(search.training.fit, "train_policy", fake_train)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    args = [
        "search", "--data", TINY_DATA, "--epochs", "1", "--study", "again", "--no-confirm",
        "--storage", storage, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
        "--algorithm", "random",
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*args, "--trials", "9"]) == 0  # 6 anchors, then 3 sampled
        first = optuna.load_study(study_name="again", storage=storage).trials
        assert main([*args, "--trials", "3"]) == 0
    trials = optuna.load_study(study_name="again", storage=storage).trials
    assert len(trials) == 12
    sampled_first = [t.params for t in first if t.number >= 6]
    added = [t.params for t in trials[9:]]
    assert len(sampled_first) == 3 and len(added) == 3
    assert all(params not in sampled_first for params in added), (sampled_first, added)
