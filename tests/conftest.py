"""Shared fixtures: every test that writes runs does so under a temporary folder."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"
TINY_DATA = "shapes:train=96,val=48,test=48"


def require_program(present: bool, what: str, install: str) -> None:
    """Skip the calling test (or module) when a system program is missing, with a one-line
    reason that names the install line; under ``CI=true`` a missing program fails instead, so
    CI never passes without the tests that need it."""
    if present:
        return
    message = f"needs {what} ({install})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


@dataclass(frozen=True)
class SearchRun:
    """A finished tiny search: where it wrote, what it printed."""

    folder: Path
    storage: str
    tracking_uri: str
    study: str
    exit_code: int
    output: str


def search_args(
    folder: Path, study: str, space: Path | None = None, trials: int = 2, confirm: bool = False
) -> list[str]:
    """`cropsearch search` arguments for a 1-epoch search on tiny data with stores in ``folder``;
    with ``confirm``, a 2-seed confirmation of the top policy and the baseline."""
    return [
        "search", "--data", TINY_DATA, "--space", str(space or REPO / "spaces" / "default.yaml"),
        "--trials", str(trials), "--epochs", "1", "--study", study,
        "--storage", f"sqlite:///{folder}/optuna.db", "--tracking-uri", f"sqlite:///{folder}/mlflow.db",
        *(["--top", "1", "--repeats", "2"] if confirm else ["--no-confirm"]),
    ]  # fmt: skip


@pytest.fixture(autouse=True)
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test decodes into its own cache folder, never the user's; and trains in one
    process (each training process would import TensorFlow again): the tests of the training
    processes ask for them (tests/e2e/test_pool.py)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CROPSEARCH_PROCESSES", "1")
    monkeypatch.setenv("CROPSEARCH_CACHE", str(folder))
    monkeypatch.delenv("CROPSEARCH_MAX_MEMORY", raising=False)
    return folder


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory: pytest.TempPathFactory) -> SearchRun:
    """One 2-trial, 1-epoch search on tiny data, shared by the tests that inspect its output."""
    from search.cli import main

    folder = tmp_path_factory.mktemp("search")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(search_args(folder, "tiny", confirm=True))
    return SearchRun(
        folder, f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db", "tiny", code,
        out.getvalue(),
    )  # fmt: skip
