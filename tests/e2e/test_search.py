"""A real 2-trial search into a temporary folder: Optuna storage, MLflow runs, export."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from conftest import SearchRun, search_args
from mlflow.tracking import MlflowClient

import search
from search.cli import main
from search.results.export import FORMAT
from search.study.record import TrialRecord

pytestmark = pytest.mark.slow  # trains real models / starts a server


def record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    return TrialRecord.from_json(trial.user_attrs["record"])


def test_search_exits_zero_and_prints_leaderboard(tiny_search: SearchRun) -> None:
    assert tiny_search.exit_code == 0, tiny_search.output
    assert "trial 0 (baseline) full" in tiny_search.output
    assert "leaderboard" in tiny_search.output
    assert "best - baseline" in tiny_search.output
    assert "time per trial:" in tiny_search.output
    assert "confirmation:" in tiny_search.output
    assert "robustness" in tiny_search.output
    assert "verdict:" in tiny_search.output


def test_study_holds_baseline_then_each_kinds_convention(tiny_search: SearchRun) -> None:
    study = optuna.load_study(study_name="tiny", storage=tiny_search.storage)
    finished = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    assert len(finished) == 2
    first, second = (record(t) for t in finished)
    assert first.baseline and first.policy["kind"] == "full"
    assert first.state == "complete" and 0.0 <= (first.val_accuracy or -1) <= 1.0
    assert finished[0].value == first.val_accuracy
    # the first anchor after the baseline: the space's first other kind at timm's crop_pct
    assert second.policy["kind"] == "center" and second.policy["fraction"] == 0.875
    assert second.policy["size"] == [48, 48]
    assert first.train.seed == second.train.seed != study.user_attrs["seed"]


def test_mlflow_has_parent_and_one_child_per_trial(tiny_search: SearchRun) -> None:
    client = MlflowClient(tiny_search.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("cropsearch.role") == "study"]
    children = [
        r
        for r in runs
        if r.data.tags.get("cropsearch.role") == "trial" and r.data.tags["stage"] == "search"
    ]
    assert len(parents) == 1 and len(children) == 2
    parent_id = parents[0].info.run_id
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent_id
        assert child.data.tags["state"] == "complete"
        assert child.info.status == "FINISHED"
        assert child.data.params["kind"] in search.crop.kinds.KINDS
        assert child.data.params["size"] == "48x48"
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            history = client.get_metric_history(child.info.run_id, key)
            assert [m.step for m in history] == [0], key  # one value per epoch (1 epoch)
        artifacts = [a.path for a in client.list_artifacts(child.info.run_id)]
        assert "crop_samples.png" in artifacts
        png = Path(client.download_artifacts(child.info.run_id, "crop_samples.png"))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    parent_artifacts = {a.path for a in client.list_artifacts(parent_id)}
    assert {
        "leaderboard.csv",
        "best_policy.yaml",
        "data_report.txt",
        "optimization_history.png",
        "best_vs_baseline.png",
        "confirmation.csv",
        "confirmation.png",
        "robustness.csv",
    } <= parent_artifacts
    assert parents[0].info.status == "FINISHED"
    board = Path(client.download_artifacts(parent_id, "leaderboard.csv")).read_text()
    rows = list(csv.DictReader(line for line in board.splitlines() if not line.startswith("#")))
    assert len(rows) == 2
    assert "# confirmed: " in board
    assert [r["trial"] for r in rows if r["baseline"] == "True"] == ["0"]
    assert parents[0].data.params["storage"].startswith("sqlite:///")


def test_artifacts_stay_in_the_run_folder(tiny_search: SearchRun) -> None:
    assert (tiny_search.folder / "artifacts" / "tiny").is_dir()
    assert not Path("mlruns/artifacts/tiny").exists()


def test_export_round_trip(tiny_search: SearchRun, tmp_path: Path) -> None:
    out = tmp_path / "best.yaml"
    code = main(["export", "--study", "tiny", "--storage", tiny_search.storage, "-o", str(out)])
    assert code == 0
    document = yaml.safe_load(out.read_text())
    assert document["format"] == FORMAT
    study = optuna.load_study(study_name="tiny", storage=tiny_search.storage)
    confirmation = study.user_attrs["confirmation"]
    winner = record(study.trials[confirmation["winner"]])  # the confirmed winner is exported
    assert document["provenance"]["trial"] == winner.number
    assert document["provenance"]["value"] == winner.val_accuracy
    assert document["provenance"]["mlflow_run_id"] == winner.run_id
    assert document["provenance"]["dataset_fingerprint"] == study.user_attrs["data_fingerprint"]
    assert "optuna" in document["provenance"]["versions"]
    assert document["confirmation"]["verdict"] == confirmation["verdict"]
    assert set(document["confirmation"]["robustness"]) == {
        "exact", "iou0.9", "iou0.75", "iou0.5", "none"
    }  # fmt: skip
    loaded = search.load_policy(out)
    assert loaded == winner.crop_policy


def test_resume_adds_trials_to_the_same_study(tiny_search: SearchRun, tmp_path: Path) -> None:
    # Copy the stores so the shared fixture stays as it was.
    import shutil

    for name in ("optuna.db", "mlflow.db"):
        shutil.copy(tiny_search.folder / name, tmp_path / name)
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    code = main(search_args(tmp_path, "tiny", trials=1))
    assert code == 0
    study = optuna.load_study(study_name="tiny", storage=storage)
    finished = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    assert len(finished) == 3
    assert sum(record(t).baseline for t in finished) == 1
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sum(r.data.tags.get("cropsearch.role") == "study" for r in runs) == 1


def test_failed_trial_is_recorded_and_search_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import search.training.fit

    real_train = search.training.fit.train_policy

    def train_or_fail(policy: search.CropPolicy, *args: Any, **kwargs: Any) -> Any:
        if policy.kind != "full":
            raise RuntimeError("simulated out-of-memory")
        return real_train(policy, *args, **kwargs)

    monkeypatch.setattr(search.training.fit, "train_policy", train_or_fail)
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    space = tmp_path / "objects.yaml"
    space.write_text("params:\n  kind: {type: categorical, choices: [object]}\n")
    code = main(search_args(tmp_path, "failing", space))
    assert code == 0  # the baseline completed, so there is a result
    study = optuna.load_study(study_name="failing", storage=storage)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
    assert record(study.trials[1]).state == "failed"
    assert "simulated out-of-memory" in (record(study.trials[1]).error or "")
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("failing")
    assert experiment is not None
    failed = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("state") == "failed"
    ]
    assert len(failed) == 1
    assert failed[0].info.status == "FAILED"
    assert "simulated out-of-memory" in failed[0].data.tags["error"]


def test_a_repeated_policy_is_not_trained_again(tmp_path: Path) -> None:
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    space = tmp_path / "full_only.yaml"
    space.write_text("params:\n  kind: {type: categorical, choices: [full]}\n")
    code = main(search_args(tmp_path, "twins", space))
    assert code == 0
    baseline, repeat = optuna.load_study(study_name="twins", storage=storage).trials
    assert record(repeat).duplicate_of == baseline.number
    assert repeat.value == baseline.value
    assert record(repeat).test_accuracy == record(baseline).test_accuracy
    client = MlflowClient(tracking)
    run = client.get_run(record(repeat).run_id or "")
    assert run.data.tags["duplicate_of"] == str(baseline.number)
    assert run.data.metrics["val_accuracy"] == pytest.approx(baseline.value)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0]
    assert "crop_samples.png" in [a.path for a in client.list_artifacts(run.info.run_id)]


def test_confirmation_runs_are_tagged_and_resumable(tiny_search: SearchRun, tmp_path: Path) -> None:
    client = MlflowClient(tiny_search.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'confirm'")
    assert len(runs) == 4  # the baseline and the top policy, 2 seeds each
    study = optuna.load_study(study_name="tiny", storage=tiny_search.storage)
    seeds = study.user_attrs["confirmation"]["seeds"]
    assert sorted({r.data.tags["seed"] for r in runs}) == sorted(str(s) for s in seeds)
    assert study.user_attrs["train_seed"] not in seeds
    for run in runs:
        assert run.info.status == "FINISHED"
        assert "test_accuracy.iou0.75" in run.data.metrics

    import shutil

    for name in ("optuna.db", "mlflow.db"):
        shutil.copy(tiny_search.folder / name, tmp_path / name)
    out = io.StringIO()
    args = ["confirm", "--study", "tiny", "--top", "1", "--repeats", "2"]
    stores = ["--storage", f"sqlite:///{tmp_path}/optuna.db"]
    stores += ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    with contextlib.redirect_stdout(out):
        assert main(args + stores) == 0
    assert "0 runs to train, 4 already done" in out.getvalue()
    again = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert again.user_attrs["confirmation"] == study.user_attrs["confirmation"]
    with contextlib.redirect_stdout(io.StringIO()):  # a third seed: only 2 new runs
        assert main(["confirm", "--study", "tiny", "--top", "1", "--repeats", "3", *stores]) == 0
    third = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert len(third.user_attrs["confirmation"]["seeds"]) == 3
    assert sum(k.startswith("confirm:") for k in third.user_attrs) == 6


def test_screening_trains_half_the_epochs_and_the_confirmation_all(tmp_path: Path) -> None:
    from search.engines.lookup import find_study

    args = search_args(tmp_path, "halves", trials=2, confirm=True)
    args[args.index("--epochs") + 1] = "2"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    assert "2 trials x 1 epochs (confirmation: 2)" in out.getvalue()
    study = find_study("halves", f"sqlite:///{tmp_path}/optuna.db")
    assert [r.train.epochs for r in study.records.search_records()] == [1, 1]
    confirm = study.records.confirm_records()
    assert len(confirm) == 4 and {r.train.epochs for r in confirm} == {2}
    attrs = optuna.load_study(study_name="halves", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert attrs.user_attrs["screen_epochs"] == 1 and attrs.user_attrs["epochs"] == 2
    # resumed, the study keeps screening at its own epochs; another --screen-epochs is refused
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*search_args(tmp_path, "halves", trials=1), "--epochs", "2"]) == 0
    assert [r.train.epochs for r in study.records.search_records()] == [1, 1, 1]
    refused = io.StringIO()
    with contextlib.redirect_stderr(refused), contextlib.redirect_stdout(io.StringIO()):
        code = main([*search_args(tmp_path, "halves", trials=1), "--screen-epochs", "2"])
    assert code == 2
    assert "study 'halves' screens at 1 epochs" in refused.getvalue()
