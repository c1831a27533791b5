"""Several worker processes on one study: ``search --workers`` and ``cropsearch worker``."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import REPO, TINY_DATA, search_args

if TYPE_CHECKING:
    from search.engines.optuna import OptunaSearch


def _cli(args: list[str]) -> tuple[int, str]:
    from search.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    return code, out.getvalue()


@pytest.mark.slow  # two worker processes import TensorFlow and train 1-epoch trials
def test_two_workers_share_one_study_on_sqlite(tmp_path: Path) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    args = search_args(tmp_path, "pair", trials=3)
    code, output = _cli([*args, "--workers", "2"])
    assert code == 0, output
    assert "starting 2 workers" in output

    study = optuna.load_study(study_name="pair", storage=f"sqlite:///{tmp_path}/optuna.db")
    started = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    assert 3 <= len(started) <= 4  # a shared budget: at most one trial over, per extra worker
    assert {t.state for t in started} <= {
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
    }
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.trials) == 1
    # Every trial ran in one of the two spawned workers (noted in the study, each left), never
    # in the parent (this process, which queued the anchors and notes itself too); which
    # worker took how many is up to timing.
    from search.engines.optuna_storage import owner

    notes = study._storage.get_study_system_attrs(study._study_id)
    noted = {key.removeprefix("worker:") for key in notes if key.startswith("worker:")}
    workers = noted - {owner()}
    assert len(workers) == 2 and all(notes[f"worker:{w}"]["left"] for w in workers)
    assert {t.user_attrs["owner"] for t in started} <= workers

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("pair")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("cropsearch.role") == "study"]
    children = [r for r in runs if r.data.tags.get("cropsearch.role") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == len(started)
    assert all(r.info.status in ("FINISHED", "KILLED") for r in children)
    seeds = {k: v for k, v in parents[0].data.tags.items() if k.startswith("sampler_seed.")}
    assert len(seeds) == 2 and len(set(seeds.values())) == 2  # each worker its own, logged


def test_a_worker_refuses_an_unknown_study_in_one_line(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    import optuna

    optuna.create_study(study_name="other", storage=storage)
    code, output = _cli(
        ["worker", "--study", "missing", "--storage", storage,
         "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    )  # fmt: skip
    assert code == 2
    assert (
        output.strip()
        .splitlines()[-1]
        .endswith("no study 'missing' in this storage; start it with cropsearch search")
    )
    assert "Traceback" not in output


def test_a_worker_on_other_data_refuses_in_one_line(tmp_path: Path) -> None:
    import optuna
    import yaml

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="moved", storage=storage)
    space = yaml.safe_load((REPO / "spaces" / "default.yaml").read_text())
    attrs = {"space_spec": space, "data": TINY_DATA, "data_fingerprint": "0" * 16}
    attrs.update({"engine": "optuna", "epochs": 1, "seed": 0, "screen_fraction": 1.0})
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    code, output = _cli(
        ["worker", "--study", "moved", "--storage", storage,
         "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    )  # fmt: skip
    assert code == 2, output
    last = output.strip().splitlines()[-1]
    assert f"this machine's data for {TINY_DATA} differs from the study's" in last
    assert "Traceback" not in output and not (tmp_path / "mlflow.db").exists()


def _untrained_search(
    folder: Path, study: str, monkeypatch: pytest.MonkeyPatch, echo: Callable[[str], None]
) -> OptunaSearch:
    """A 1-trial Optuna search whose trials log a complete run without training."""
    import search.engines.optuna as engine
    from search.data import load_dataset
    from search.engines.common import SearchOptions
    from search.engines.optuna import OptunaSearch
    from search.space import Space

    def fake_run_trial(setup, data, tracker, parent, *a, **k):  # type: ignore[no-untyped-def]
        run_id = tracker.start_trial(parent, setup.number, "x", {}, {"stage": "search"})
        tracker.end_run(run_id, "complete")
        return setup.record(len(data.train), state="complete", val_accuracy=0.5, run_id=run_id)

    monkeypatch.setattr(engine, "run_trial", fake_run_trial)
    options = SearchOptions(
        trials=1, epochs=1, study=study, storage=f"sqlite:///{folder}/optuna.db",
        tracking_uri=f"sqlite:///{folder}/mlflow.db", confirm=False,
    )  # fmt: skip
    space = Space.load(REPO / "spaces" / "default.yaml")
    return OptunaSearch(load_dataset(TINY_DATA), space, options, echo=echo)


def test_only_the_last_live_worker_closes_the_parent_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import subprocess
    import time

    from mlflow.tracking import MlflowClient
    from optuna.trial import TrialState

    from search.ops.presence import live_workers, note_worker
    from search.ops.workers import run_worker

    search = _untrained_search(tmp_path, "last", monkeypatch, lambda line: None)
    client = MlflowClient(search.options.tracking_uri)
    peer = subprocess.Popen(["sleep", "60"])  # another worker of this machine, between trials
    here = f"{socket.gethostname()}:{peer.pid}"
    now = time.time()
    notes = {
        here: {"beat": now - 3600, "left": False},  # alive: its process answers
        "elsewhere:1": {"beat": now - 120, "left": False},  # silent past the grace: dead
        "elsewhere:2": {"beat": now, "left": True},  # left
    }
    for who, note in notes.items():
        note_worker(search.study, who, note)
    try:
        run_worker(search, None, close=True)
        assert len(search.study.get_trials(states=(TrialState.COMPLETE,))) == 1
        assert client.get_run(search.parent_id).info.status == "RUNNING"  # the peer is live
        assert live_workers(search.study) == [here]
        note_worker(search.study, "elsewhere:3", {"beat": time.time(), "left": False})
        assert sorted(live_workers(search.study)) == sorted([here, "elsewhere:3"])
        note_worker(search.study, "elsewhere:3", {"beat": time.time(), "left": True})
    finally:
        peer.kill()
        peer.wait()
    assert live_workers(search.study) == []  # killed without leaving: gone at once here
    assert not any(k.startswith("worker:") for k in search.study.user_attrs)  # not a setting
    search.parent_id = search.tracker.start_parent("last", {}, search.parent_id)  # as a join
    run_worker(search, None, close=True)
    assert len(search.study.get_trials(states=(TrialState.COMPLETE,))) == 2
    assert client.get_run(search.parent_id).info.status == "FINISHED"  # the last one closed


def test_a_search_leaves_the_parent_run_open_while_another_worker_is_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from mlflow.tracking import MlflowClient

    from search.ops.presence import note_worker

    lines: list[str] = []
    search = _untrained_search(tmp_path, "open", monkeypatch, lines.append)
    client = MlflowClient(search.options.tracking_uri)
    note_worker(search.study, "elsewhere:9", {"beat": time.time(), "left": False})
    search.run()
    assert client.get_run(search.parent_id).info.status == "RUNNING"
    assert any("the last one to finish closes its parent run" in line for line in lines)
    note_worker(search.study, "elsewhere:9", {"beat": time.time(), "left": True})
    search = _untrained_search(tmp_path, "open", monkeypatch, lines.append)
    search.run()
    assert client.get_run(search.parent_id).info.status == "FINISHED"
