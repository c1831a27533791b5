"""Credentials only in the environment, against servers that check them: PostgreSQL with
``scram-sha-256`` passwords and ``mlflow server --app-name basic-auth``, both on loopback.
A wrong password is one line and exit 2; no password reaches output, stores or files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from conftest import REPO, TINY_DATA
from mlflow.tracking import MlflowClient
from servers import MlflowServer, Postgres, postgres, served_mlflow

pytestmark = pytest.mark.slow  # two authenticating servers, searches in subprocesses

PG_SECRET = "pg-Secr3t-9f1c"
ML_USER, ML_SECRET = "admin", "ml-Secr3t-77ab"


@pytest.fixture(scope="module")
def secured() -> Iterator[Postgres]:
    """PostgreSQL whose TCP connections need the password ``PG_SECRET`` (its folder under
    /tmp: the postgres user must reach it)."""
    folder = Path(tempfile.mkdtemp(prefix="cropsearch-pg-"))
    try:
        with postgres(folder, password=PG_SECRET) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def guarded(secured: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A basic-auth MLflow server on ``secured``, which it reaches with ``PGPASSWORD``."""
    secured.create_database("mlflow")
    artifacts = tmp_path_factory.mktemp("artifacts")
    with served_mlflow(
        secured.url("mlflow", "postgresql+psycopg"),
        artifacts,
        admin=(ML_USER, ML_SECRET),
        env={"PGPASSWORD": PG_SECRET},
    ) as server:
        yield server


def _env(**credentials: str) -> dict[str, str]:
    """This environment without any credentials of its own, plus ``credentials``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PG", "MLFLOW_", "CROPSEARCH_S"))
    }
    return {**env, **credentials}


GOOD = {
    "PGPASSWORD": PG_SECRET,
    "MLFLOW_TRACKING_USERNAME": ML_USER,
    "MLFLOW_TRACKING_PASSWORD": ML_SECRET,
}


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "search.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def _search(study: str, storage: str, tracking: str, trials: int = 2) -> list[str]:
    return [
        "search", "--data", TINY_DATA, "--space", str(REPO / "spaces" / "default.yaml"),
        "--trials", str(trials), "--epochs", "1", "--study", study, "--storage", storage,
        "--tracking-uri", tracking, "--no-confirm",
    ]  # fmt: skip


def _grep(folder: Path, secrets: tuple[str, ...]) -> list[str]:
    """Files under ``folder`` whose bytes contain one of ``secrets``."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith("basic-auth-"):
            data = path.read_bytes()
            found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


def test_search_worker_status_confirm_export_with_credentials_only_in_the_environment(
    secured: Postgres, guarded: MlflowServer, tmp_path: Path
) -> None:
    storage = secured.create_database("team")
    assert ":" not in storage.split("//")[1].split("@")[0], "no password in the URL"
    outputs = []
    # The password file way for the worker, apart from every folder searched for secrets.
    pgpass = Path(tempfile.mkdtemp(prefix="cropsearch-libpq-")) / "pgpass"
    pgpass.write_text(f"127.0.0.1:{secured.port}:*:postgres:{PG_SECRET}\n")
    pgpass.chmod(0o600)
    file_env = {k: v for k, v in GOOD.items() if k != "PGPASSWORD"} | {"PGPASSFILE": str(pgpass)}
    for args, env in (
        (_search("team", storage, guarded.uri), _env(**GOOD)),
        (["worker", "--study", "team", "--trials", "1", "--storage", storage,
          "--tracking-uri", guarded.uri], _env(**file_env)),
        (["status", "--study", "team", "--storage", storage, "--tracking-uri", guarded.uri],
         _env(**GOOD)),
        (["confirm", "--study", "team", "--top", "1", "--repeats", "2", "--storage", storage,
          "--tracking-uri", guarded.uri], _env(**GOOD)),
        (["export", "--study", "team", "--storage", storage, "--tracking-uri", guarded.uri,
          "--output", str(tmp_path / "policy.yaml")], _env(**GOOD)),
    ):  # fmt: skip
        code, output = _cli(args, env, tmp_path)
        assert code == 0, f"{args[0]}: {output}"
        assert "warning" not in output.lower() or "carries a password" not in output
        outputs.append(output)
    assert "Optuna and MLflow agree" in outputs[2]
    assert (tmp_path / "policy.yaml").is_file()

    secrets = (PG_SECRET, ML_SECRET)
    for output in outputs:
        assert not [s for s in secrets if s in output]
    study = optuna.load_study(study_name="team", storage=f"{storage}?password={PG_SECRET}")
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) >= 3  # two by the search, one by the worker
    stored = repr(study.user_attrs) + repr(study._storage.get_study_system_attrs(study._study_id))
    stored += "".join(repr(t.user_attrs) + repr(t.system_attrs) for t in study.trials)
    assert not [s for s in secrets if s in stored]
    os.environ.update(MLFLOW_TRACKING_USERNAME=ML_USER, MLFLOW_TRACKING_PASSWORD=ML_SECRET)
    try:
        client = MlflowClient(guarded.uri)
        experiment = client.get_experiment_by_name("team")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id])
    finally:
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(name)
    assert len(runs) >= 4
    for run in runs:
        assert not [s for s in secrets if s in repr(run.data.params) + repr(run.data.tags)]
    # every file written: the server's artifacts and log, and anything in the working folder
    assert _grep(guarded.artifacts.parent, secrets) == []
    assert _grep(tmp_path, secrets) == []


@pytest.mark.parametrize("wrong", ["PGPASSWORD", "MLFLOW_TRACKING_PASSWORD"])
def test_a_wrong_password_is_one_line_exit_2_and_not_shown(
    wrong: str, secured: Postgres, guarded: MlflowServer, tmp_path: Path
) -> None:
    storage = secured.create_database(f"wrong_{wrong.lower()}")
    bad = "not-the-Pa55word"
    for command in (
        _search("wrong", storage, guarded.uri),
        ["worker", "--study", "wrong", "--storage", storage, "--tracking-uri", guarded.uri],
    ):
        code, output = _cli(command, _env(**{**GOOD, wrong: bad}), tmp_path)
        lines = [line for line in output.splitlines() if line.startswith("error:")]
        assert code == 2, output
        assert "Traceback" not in output and len(lines) == 1, output
        assert bad not in output and PG_SECRET not in output and ML_SECRET not in output
        assert ("PGPASSWORD" if wrong == "PGPASSWORD" else "MLFLOW_TRACKING_PASSWORD") in lines[0]


def test_a_password_in_the_urls_works_and_warns_once_naming_the_variables(
    secured: Postgres, guarded: MlflowServer, tmp_path: Path
) -> None:
    storage = secured.create_database("inline").replace("postgres@", f"postgres:{PG_SECRET}@")
    tracking = guarded.uri.replace("http://", f"http://{ML_USER}:{ML_SECRET}@")
    optuna.create_study(study_name="inline", storage=storage)
    code, output = _cli(["status", "--storage", storage, "--tracking-uri", tracking,
                         "--all"], _env(), tmp_path)  # fmt: skip
    assert code == 0, output
    warnings = [line for line in output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, output
    assert "PGPASSWORD" in warnings[0] and "--storage" in warnings[0]
    assert "MLFLOW_TRACKING_PASSWORD" in warnings[1] and "--tracking-uri" in warnings[1]
    assert PG_SECRET not in output and ML_SECRET not in output
