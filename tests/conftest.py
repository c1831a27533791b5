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


@dataclass(frozen=True)
class SearchRun:
    """A finished tiny search: where it wrote, what it printed."""

    folder: Path
    storage: str
    tracking_uri: str
    study: str
    exit_code: int
    output: str


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory: pytest.TempPathFactory) -> SearchRun:
    """One 2-trial, 1-epoch search on tiny data, shared by the tests that inspect its output."""
    from search.cli import main

    folder = tmp_path_factory.mktemp("search")
    storage = f"sqlite:///{folder}/optuna.db"
    tracking = f"sqlite:///{folder}/mlflow.db"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "search",
                "--data",
                TINY_DATA,
                "--space",
                str(REPO / "spaces" / "default.yaml"),
                "--trials",
                "2",
                "--epochs",
                "1",
                "--study",
                "tiny",
                "--storage",
                storage,
                "--tracking-uri",
                tracking,
            ]
        )
    return SearchRun(folder, storage, tracking, "tiny", code, out.getvalue())
