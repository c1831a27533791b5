"""``cropsearch status``: trials by state and engine; Optuna and MLflow in agreement or not."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.engines.keras_tuner_records import KerasTunerRecords
from search.engines.lookup import find_study
from search.results.tracking import Tracker
from search.settings import TrainConfig, TrialKey
from search.study.record import TrialRecord


def _cli(args: list[str]) -> tuple[int, str]:
    from search.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    return code, out.getvalue()


def _stores(folder: Path) -> tuple[optuna.Study, Tracker, str, list[str]]:
    """A study with a complete and a pruned trial, each with its run in MLflow."""
    storage = f"sqlite:///{folder}/optuna.db"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.set_user_attr("engine", "optuna")
    tracker = Tracker(f"sqlite:///{folder}/mlflow.db", "s")
    parent = tracker.start_parent("s", {})
    for state in ("complete", "pruned"):
        trial = study.ask()
        run = tracker.start_trial(parent, trial.number, "x", {}, {"stage": "search"})
        tracker.end_run(run, state)
        if state == "complete":
            study.tell(trial, 0.5)
        else:
            study.tell(trial, state=TrialState.PRUNED)
    args = ["status", "--study", "s", "--storage", storage,
            "--tracking-uri", f"sqlite:///{folder}/mlflow.db"]  # fmt: skip
    return study, tracker, parent, args


def test_status_lists_states_and_agreement(tmp_path: Path) -> None:
    _, _, _, args = _stores(tmp_path)
    code, output = _cli(args)
    assert code == 0, output
    assert "complete     1  (optuna)" in output and "pruned       1  (optuna)" in output
    assert output.strip().endswith("Optuna and MLflow agree")


def test_status_finds_a_run_left_running_and_a_trial_without_run(tmp_path: Path) -> None:
    study, tracker, parent, args = _stores(tmp_path)
    dead = study.ask()  # a worker died: Optuna failed the trial, its run stayed RUNNING
    tracker.start_trial(parent, dead.number, "x", {}, {"stage": "search"})
    study.tell(dead, state=TrialState.FAIL)
    orphan = study.ask()  # finished in Optuna, never logged in MLflow
    study.tell(orphan, 0.1)
    code, output = _cli(args)
    assert code == 1
    assert f"trial {dead.number} is fail in Optuna but its run" in output
    assert f"(trial {dead.number}) is RUNNING in MLflow, but the trial is fail in Optuna" in output
    assert f"trial {orphan.number} (complete) has 0 MLflow runs, not 1" in output
    assert "disagree (3)" in output


def test_a_trial_that_failed_before_its_run_started_is_listed_not_a_disagreement(
    tmp_path: Path,
) -> None:
    study, _, _, args = _stores(tmp_path)
    killed = study.ask()  # killed between its creation and its run's: no run, no run id noted
    study.tell(killed, state=TrialState.FAIL)
    code, output = _cli(args)
    assert code == 0, output
    assert f"failed before their MLflow run started (no run): trial(s) {killed.number}" in output
    lost = study.ask()  # its run was noted, then the run disappeared from MLflow
    lost.set_user_attr(TrialKey.RUN_ID, "0123456789abcdef")
    study.tell(lost, state=TrialState.FAIL)
    code, output = _cli(args)
    assert code == 1
    assert f"trial {lost.number} (fail) has 0 MLflow runs, not 1" in output
    assert f"trial(s) {killed.number}\n" in output


def test_status_of_an_unknown_study_is_one_line(tmp_path: Path) -> None:
    _, _, _, args = _stores(tmp_path)
    args[args.index("--study") + 1] = "nope"
    code, output = _cli(args)
    assert code == 2 and len(output.strip().splitlines()) == 1
    assert "no study 'nope'" in output


def test_status_reads_the_stores_from_the_environment_and_names_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stores(tmp_path)
    monkeypatch.chdir(tmp_path)  # no ./mlruns here
    code, output = _cli(["status", "--study", "s"])
    assert code == 2 and "no study storage at mlruns/optuna.db" in output
    assert "Traceback" not in output
    monkeypatch.setenv("CROPSEARCH_STORAGE", f"sqlite:///{tmp_path}/optuna.db")
    code, output = _cli(["status", "--study", "s"])
    assert code == 2 and "no MLflow store at mlruns/mlflow.db" in output
    monkeypatch.setenv("CROPSEARCH_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    code, output = _cli(["status", "--study", "s"])
    assert code == 0 and "agree" in output, output


def _later_study(folder: Path, name: str) -> None:
    """A second Optuna study in the same storage, created after the first, with no trials."""
    optuna.create_study(study_name=name, storage=f"sqlite:///{folder}/optuna.db")


def _keras_tuner_study(folder: Path, name: str, states: list[str]) -> None:
    """A keras-tuner study beside the storage, with one search record per state."""
    store = KerasTunerRecords(folder / "keras-tuner", name)
    store.set_attrs({"engine": "keras-tuner"})
    for number, state in enumerate(states):
        store.save_search(
            TrialRecord(study=name, number=number, engine="keras-tuner", state=state,  # type: ignore[arg-type]
                        policy={}, train=TrainConfig())
        )  # fmt: skip


def _without(args: list[str], flag: str) -> list[str]:
    at = args.index(flag)
    return args[:at] + args[at + 2 :]


def test_status_without_study_reports_the_latest_like_export(tmp_path: Path) -> None:
    _, _, _, args = _stores(tmp_path)
    code, output = _cli(_without(args, "--study"))
    assert code == 0, output
    assert output.startswith("study 's'") and "complete     1  (optuna)" in output
    _later_study(tmp_path, "later")
    code, output = _cli(_without(args, "--study"))
    assert code == 0, output
    assert output.startswith("study 'later'") and "agree" in output
    assert find_study(None, f"sqlite:///{tmp_path}/optuna.db").name == "later"


def test_status_all_lists_every_study_with_its_trial_counts(tmp_path: Path) -> None:
    _, _, _, args = _stores(tmp_path)
    _later_study(tmp_path, "later")
    time.sleep(0.05)  # the keras-tuner study is written after the sqlite storage: the latest
    _keras_tuner_study(tmp_path, "kt", ["complete", "complete", "failed"])
    code, output = _cli([*_without(args, "--study"), "--all"])
    assert code == 0, output
    lines = output.strip().splitlines()
    assert lines[0] == f"studies in sqlite:///{tmp_path}/optuna.db (the latest last):"
    assert [line.split() for line in lines[1:]] == [
        ["s", "optuna", "2", "trials:", "1", "complete,", "1", "pruned"],
        ["later", "optuna", "0", "trials"],
        ["kt", "keras-tuner", "3", "trials:", "2", "complete,", "1", "fail"],
    ]
    code, output = _cli(_without(args, "--study"))  # the latest, a keras-tuner study
    assert code == 2 and "study 'kt' ran with keras-tuner" in output
    assert find_study(None, f"sqlite:///{tmp_path}/optuna.db").name == "kt"
    code, output = _cli([*args, "--all"])
    assert code == 2 and "give --study or --all, not both" in output


def test_status_without_any_study_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--all"]):
        code, output = _cli(["status", *extra])
        assert code == 2 and output.strip() == (
            "error: no study storage at mlruns/optuna.db (run 'cropsearch search' first or "
            "pass --storage)"
        ), output
