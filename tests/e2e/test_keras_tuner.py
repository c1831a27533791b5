"""The keras-tuner engine end to end on tiny data (1-epoch trials, stores under tmp_path),
failing trials on both engines, a user HyperModel, and Hyperband's continuation."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from conftest import search_args
from mlflow.tracking import MlflowClient

from search.cli import main
from search.engines.keras_tuner_records import KerasTunerRecords, keras_tuner_root

pytestmark = pytest.mark.slow  # trains real models


def _run(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


def _kt_args(folder: Path, study: str, trials: int, *extra: str) -> list[str]:
    return [*search_args(folder, study, trials=trials), "--engine", "keras-tuner", *extra]


def _children(tracking_uri: str, study: str) -> list[Any]:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if r.data.tags.get("cropsearch.role") != "study"]


def test_keras_tuner_search_runs_exports_and_resumes(tmp_path: Path) -> None:
    code, output = _run(_kt_args(tmp_path, "kt", 3, "--algorithm", "random"))
    assert code == 0, output
    assert "trial 0 (baseline) full" in output and "leaderboard" in output
    # keras-tuner's state and cropsearch's records under <store folder>/keras-tuner/<study>/
    root = keras_tuner_root(f"sqlite:///{tmp_path}/optuna.db")
    assert root == tmp_path / "keras-tuner"
    assert (root / "kt" / "oracle.json").exists()
    records = KerasTunerRecords(root, "kt").search_records()
    assert [r.number for r in records] == [0, 1, 2]
    assert records[0].baseline and records[0].policy["kind"] == "full"
    assert {r.engine for r in records} == {"keras-tuner"}
    assert all(r.state == "complete" and len(r.history) == 1 for r in records)
    children = _children(f"sqlite:///{tmp_path}/mlflow.db", "kt")
    assert len(children) == 3
    assert {c.data.tags["engine"] for c in children} == {"keras-tuner"}
    assert {c.info.status for c in children} == {"FINISHED"}
    by_run = {c.info.run_id: c for c in children}
    for record in records:
        assert by_run[record.run_id].data.metrics["val_accuracy"] == record.val_accuracy

    out = tmp_path / "best.yaml"
    code, output = _run(
        ["export", "--study", "kt", "--storage", f"sqlite:///{tmp_path}/optuna.db", "-o", str(out)]
    )
    assert code == 0, output
    document = yaml.safe_load(out.read_text())
    best = max(records, key=lambda r: (r.val_accuracy or 0.0, -r.number))
    assert document["provenance"]["trial"] == best.number
    assert document["provenance"]["engine"] == "keras-tuner"

    # resume by --study: 2 more trials, numbered on, the same parent run
    code, output = _run(_kt_args(tmp_path, "kt", 2, "--algorithm", "random"))
    assert code == 0, output
    records = KerasTunerRecords(root, "kt").search_records()
    assert [r.number for r in records] == [0, 1, 2, 3, 4]
    assert sum(r.baseline for r in records) == 1
    assert len(_children(f"sqlite:///{tmp_path}/mlflow.db", "kt")) == 5
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("kt")
    assert experiment is not None
    parents = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("cropsearch.role") == "study"
    ]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"

    # confirmation reads and writes the same records
    stores = ["--storage", f"sqlite:///{tmp_path}/optuna.db"]
    stores += ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    code, output = _run(["confirm", "--study", "kt", *stores, "--top", "1", "--repeats", "2"])
    assert code == 0, output
    store = KerasTunerRecords(root, "kt")
    assert len(store.confirm_records()) == 4
    confirmation = store.confirmation()
    assert confirmation is not None and len(confirmation.seeds) == 2
    assert f"verdict: {confirmation.verdict}" in output


def _fail_second_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import search.training.fit

    real = search.training.fit.train_policy
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(search.training.fit, "train_policy", flaky)


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner"])
def test_a_failed_trial_is_reported_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    _fail_second_training(monkeypatch)
    args = [*search_args(tmp_path, "f", trials=3), "--engine", engine]
    if engine == "keras-tuner":
        args += ["--algorithm", "random"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code, output = _run(args)
    assert code == 0, output
    assert "trial 1" in output and "FAILED: RuntimeError: disk on fire" in output
    assert "Traceback" not in err.getvalue()
    if engine == "optuna":
        study = optuna.load_study(study_name="f", storage=f"sqlite:///{tmp_path}/optuna.db")
        assert study.trials[1].state == optuna.trial.TrialState.FAIL
        from search.engines.optuna import OptunaRecords

        records = OptunaRecords(study).search_records()
    else:
        root = tmp_path / "keras-tuner"
        trials = [json.loads(p.read_text()) for p in (root / "f").glob("trial_*/trial.json")]
        states = {int(t["trial_id"]): t["status"] for t in trials}
        assert states == {0: "COMPLETED", 1: "FAILED", 2: "COMPLETED"}
        records = KerasTunerRecords(root, "f").search_records()
    failed = [r for r in records if r.state == "failed"]
    assert [r.number for r in failed] == [1]
    assert failed[0].error == "RuntimeError: disk on fire"
    assert [r.state for r in records if r.number != 1] == ["complete", "complete"]
    runs = {c.info.run_id: c for c in _children(f"sqlite:///{tmp_path}/mlflow.db", "f")}
    assert runs[failed[0].run_id].info.status == "FAILED"
    assert runs[failed[0].run_id].data.tags["error"] == "RuntimeError: disk on fire"


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner"])
def test_a_user_hypermodel_is_trained(tmp_path: Path, engine: str) -> None:
    args = [*search_args(tmp_path, "u", trials=1), "--model", "user_models:TinyNet"]
    code, output = _run([*args, "--engine", engine])
    assert code == 0, output
    (child,) = _children(f"sqlite:///{tmp_path}/mlflow.db", "u")
    assert child.data.params["train.model"] == "user_models:TinyNet"
    # TinyNet at its default 8 units: conv 3*3*3*8+8, dense 8*6+6
    assert child.data.metrics["n_params"] == 3 * 3 * 3 * 8 + 8 + 8 * 6 + 6


def test_hyperband_continues_a_promoted_trial(tmp_path: Path) -> None:
    """max 3 epochs, factor 3: trials 0-2 train 1 epoch, trial 3 continues the best to 3."""
    args = [*_kt_args(tmp_path, "hb", 4), "--epochs", "3", "--screen-epochs", "3"]
    code, output = _run(args)
    assert code == 0, output
    records = KerasTunerRecords(tmp_path / "keras-tuner", "hb").search_records()
    assert [len(r.history) for r in records] == [1, 1, 1, 3]
    best = max(records[:3], key=lambda r: (r.val_accuracy or 0.0, -r.number))
    continued = records[3]
    assert continued.policy == best.policy and continued.baseline == best.baseline
    assert continued.history[0] == best.history[0]  # the earlier epoch is carried, not redone
    run = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(continued.run_id or "")
    assert run.data.tags["keras_tuner.continues"] == str(best.number)
    steps = [
        m.step
        for m in MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_metric_history(
            continued.run_id or "", "val_accuracy"
        )
    ]
    assert steps == [1, 2]  # its metrics continue at epoch 1


def test_a_trial_keras_tuner_fails_quietly_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial that fails outside training (no record) would pass unseen in keras-tuner: the
    search names it after the loop (STACK.md gotcha 1)."""
    from search.engines.keras_tuner import KerasTunerSearch

    real = KerasTunerSearch.train

    def train(self: KerasTunerSearch, trial: Any) -> Any:
        if int(trial.trial_id) == 1:
            raise ValueError("no such crop")
        return real(self, trial)

    monkeypatch.setattr(KerasTunerSearch, "train", train)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code, output = _run(_kt_args(tmp_path, "q", 2, "--algorithm", "random"))
    assert code == 0, output
    assert "trial 1 failed: ValueError: no such crop" in output
    assert "Traceback" not in err.getvalue()


def test_keras_tuner_searches_a_user_model_s_own_hyperparameters(tmp_path: Path) -> None:
    args = [*search_args(tmp_path, "h", trials=4), "--model", "user_models:TinyNet"]
    code, output = _run([*args, "--engine", "keras-tuner", "--algorithm", "random"])
    assert code == 0, output
    children = _children(f"sqlite:///{tmp_path}/mlflow.db", "h")
    units = [int(child.data.params["train.model_hp.units"]) for child in children]
    assert all(u in (4, 8, 12, 16) for u in units)
    assert len(set(units)) > 1  # searched, not left at the default 8
    for child, u in zip(children, units, strict=True):  # the network was built with them
        assert child.data.metrics["n_params"] == 3 * 3 * 3 * u + u + u * 6 + 6
