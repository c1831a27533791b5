"""A search against real servers: Optuna in PostgreSQL, MLflow through ``mlflow server``
(its backend in the same PostgreSQL), all on loopback."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import search_args
from servers import Postgres, cluster_fixture, tracking_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow  # starts PostgreSQL and an MLflow server, trains 2 tiny trials


def _cli(args: list[str]) -> tuple[int, str]:
    from search.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    return code, out.getvalue()


def _served_args(folder: Path, study: str, trials: int, storage: str, tracking: str) -> list[str]:
    """`search_args` with the study's stores on the servers."""
    args = search_args(folder, study, trials=trials)
    args[args.index("--storage") + 1] = storage
    args[args.index("--tracking-uri") + 1] = tracking
    return args


def test_search_on_postgresql_and_an_mlflow_server(
    cluster: Postgres, tracking: str, tmp_path: Path
) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    storage = cluster.create_database("optuna")
    args = _served_args(tmp_path, "served", 2, storage, tracking)
    code, output = _cli(args)
    assert code == 0, output
    assert "postgresql://postgres@127.0.0.1" in output and tracking in output

    study = optuna.load_study(study_name="served", storage=storage)
    done = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]  # anchors
    assert [t.state for t in done] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all("record" in t.user_attrs for t in done)

    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("served")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    roles = sorted(r.data.tags.get("cropsearch.role", "") for r in runs)
    assert roles == ["study", "trial", "trial"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    trial_runs = [r for r in runs if r.data.tags.get("cropsearch.role") == "trial"]
    for run in trial_runs:  # artifacts went through the server's proxy
        assert "crop_samples.png" in [a.path for a in client.list_artifacts(run.info.run_id)]
    assert not list(tmp_path.glob("*.db")), "nothing written to local stores"
    code, output = _cli(
        ["status", "--study", "served", "--storage", storage, "--tracking-uri", tracking]
    )
    assert code == 0 and output.strip().endswith("Optuna and MLflow agree"), output


def test_passwords_in_server_urls_reach_no_output_param_tag_or_attribute(
    cluster: Postgres, tracking: str, tmp_path: Path
) -> None:
    """A ``user:password@`` PostgreSQL URL and tracking URI (the test server trusts loopback,
    so the password is carried but not checked): the password appears nowhere a search
    writes — terminal, Optuna attributes, MLflow params, tags and text artifacts."""
    import optuna
    from mlflow.tracking import MlflowClient

    secret = "s3cr3t-pw"
    storage = cluster.create_database("secrets").replace("postgres@", f"postgres:{secret}@")
    with_password = tracking.replace("http://", f"http://someone:{secret}@")
    args = _served_args(tmp_path, "secret", 2, storage, with_password)
    code, output = _cli(args)
    assert code == 0, output
    assert secret not in output and "postgres:***@127.0.0.1" in output

    study = optuna.load_study(study_name="secret", storage=storage)
    stored = repr(study.user_attrs) + repr(study._storage.get_study_system_attrs(study._study_id))
    stored += "".join(repr(t.user_attrs) + repr(t.system_attrs) for t in study.trials)
    assert secret not in stored
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("secret")
    assert experiment is not None
    for run in client.search_runs([experiment.experiment_id]):
        assert secret not in repr(run.data.params) + repr(run.data.tags)
        folder = tmp_path / run.info.run_id
        folder.mkdir()
        for artifact in client.list_artifacts(run.info.run_id):
            if artifact.path.endswith((".txt", ".csv", ".yaml", ".json")):
                local = client.download_artifacts(run.info.run_id, artifact.path, str(folder))
                assert secret not in Path(local).read_text(), artifact.path


def test_two_workers_on_postgresql_and_an_mlflow_server_agree(
    cluster: Postgres, tracking: str, tmp_path: Path
) -> None:
    storage = cluster.create_database("pair")
    args = _served_args(tmp_path, "pair", 3, storage, tracking)
    code, output = _cli([*args, "--workers", "2"])
    assert code == 0, output
    code, output = _cli(
        ["status", "--study", "pair", "--storage", storage, "--tracking-uri", tracking]
    )
    assert code == 0, output
    assert output.strip().endswith("Optuna and MLflow agree")


def _worker(study: str, storage: str, tracking: str, trials: int) -> subprocess.Popen[str]:
    env = {**os.environ, "CROPSEARCH_STORAGE": storage, "CROPSEARCH_TRACKING_URI": tracking}
    return subprocess.Popen(
        [sys.executable, "-m", "search.cli", "worker", "--study", study, "--trials", str(trials)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_kill_9_of_one_worker_on_postgresql_the_study_completes_and_agrees(
    cluster: Postgres, tracking: str, tmp_path: Path
) -> None:
    import optuna

    storage = cluster.create_database("killed")
    args = _served_args(tmp_path, "killed", 1, storage, tracking)
    code, output = _cli(args)  # creates the study, runs the baseline
    assert code == 0, output
    victim = _worker("killed", storage, tracking, 3)
    survivor = _worker("killed", storage, tracking, 3)
    deadline = time.monotonic() + 240
    owner = f":{victim.pid}"
    polled = optuna.load_study(study_name="killed", storage=storage)  # one connection pool
    while time.monotonic() < deadline:  # until the victim trains a trial
        trials = polled.get_trials()
        if any(
            t.state == optuna.trial.TrialState.RUNNING
            and str(t.user_attrs.get("owner", "")).endswith(owner)
            and "mlflow_run_id" in t.user_attrs
            for t in trials
        ):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the victim never started a trial")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    out, err = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, err
    late = _worker("killed", storage, tracking, 1)  # the next worker to start
    out2, err2 = late.communicate(timeout=600)
    assert late.returncode == 0, err2
    study = optuna.load_study(study_name="killed", storage=storage)
    dead = [t for t in study.trials if str(t.user_attrs.get("owner", "")).endswith(owner)]
    assert len(dead) == 1  # its retry does not carry the dead process as owner
    assert dead and dead[-1].state == optuna.trial.TrialState.FAIL
    assert "marked failed: trial(s)" in out + out2
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead[-1].number]
    assert len(retried) == 1  # queued again once
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 1 + 3 + 1  # the baseline, the survivor's, the late worker's
    assert optuna.trial.TrialState.RUNNING not in [t.state for t in study.trials]
    assert all("record" in t.user_attrs for t in complete)  # every completed trial kept
    code, output = _cli(
        ["status", "--study", "killed", "--storage", storage, "--tracking-uri", tracking]
    )
    assert code == 0, output


def test_the_storage_survives_a_postgresql_restart(cluster: Postgres) -> None:
    """Last in this module: it restarts the shared cluster."""
    import optuna

    from search.engines.optuna_storage import open_storage

    url = cluster.create_database("restarted")
    study = optuna.create_study(study_name="r", storage=open_storage(url))
    study.enqueue_trial({"x": 0.5})
    cluster.stop()
    cluster.start()
    study.enqueue_trial({"x": 0.25})  # the pooled connection died with the server
    fixed = [t.system_attrs["fixed_params"] for t in study.get_trials()]
    assert fixed == [{"x": 0.5}, {"x": 0.25}]
