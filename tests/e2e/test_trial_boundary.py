""" "A completed trial is in the Optuna storage and in MLflow before the next one starts",
checked at the moment each next trial starts training, through fresh connections to both
stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import search_args
from mlflow.tracking import MlflowClient

import search
from search.cli import main

pytestmark = pytest.mark.slow  # trains real models

ARTIFACTS = {"weights.npz", "confusion_matrix.json", "crop_samples.png"}


def test_each_trial_is_kept_in_both_stores_before_the_next_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import search.training.fit

    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    real_train = search.training.fit.train_policy
    seen: list[int] = []
    problems: list[str] = []

    def check_then_train(policy: search.CropPolicy, *args: Any, **kwargs: Any) -> Any:
        try:
            check()
        except AssertionError as error:  # the trial fails; the test reports why below
            problems.append(str(error))
            raise
        return real_train(policy, *args, **kwargs)

    def check() -> None:
        study = optuna.load_study(study_name="boundary", storage=storage)
        trials = study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(running) == 1, "only the trial that starts now is running"
        assert all(t.number < running[0].number for t in done)
        assert len(done) == len(seen), "every earlier trial completed"
        client = MlflowClient(tracking)
        experiment = client.get_experiment_by_name("boundary")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id], "tags.`cropsearch.role` = 'trial'")
        by_id = {run.info.run_id: run for run in runs}
        for trial in done:
            assert "record" in trial.user_attrs, f"trial {trial.number} has its record"
            run = by_id[trial.user_attrs["mlflow_run_id"]]
            assert run.info.status == "FINISHED", f"trial {trial.number}'s run is finished"
            assert "val_accuracy" in run.data.metrics
            logged = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert logged >= ARTIFACTS, f"trial {trial.number} lacks {ARTIFACTS - logged}"
        seen.append(running[0].number)

    monkeypatch.setattr(search.training.fit, "train_policy", check_then_train)
    assert main(search_args(tmp_path, "boundary", trials=3)) == 0
    assert not problems, problems
    assert seen == [0, 1, 2], "each of the 3 distinct anchors trained once, in order"
