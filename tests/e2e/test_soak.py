"""The soak of ``benchmarks/soak.py`` at a smaller size: three workers on PostgreSQL and an
MLflow server, workers killed with SIGKILL and restarted, PostgreSQL restarted twice and the
MLflow server once; every finished trial ends in both stores, nothing is lost or left RUNNING."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # servers, workers killed and restarted for minutes


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", REPO / "benchmarks" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_soak_loses_no_trial_and_leaves_nothing_running(tmp_path: Path) -> None:
    counts = _soak_module().soak(8, (25.0, 40.0), tmp_path, seed=1)
    logs = sorted((tmp_path / "workers").glob("*.log"))
    log = "".join(p.read_text(errors="replace")[-1500:] for p in logs[-2:])
    assert counts["problems"] == [], f"{counts}\n{log}"
    assert counts["lost"] == 0 and counts["ghosts"] == 0 and counts["status_exit"] == 0
    assert counts["trials"].get("COMPLETE", 0) + counts["trials"].get("PRUNED", 0) >= 8
    assert counts["postgres_restarts"] == 2 and counts["mlflow_restarts"] == 1
    assert counts["kills"] >= 1, counts
