"""Trials per hour of the default search: 1 worker (all cores) against 2 workers (one core
each, ``--workers 2``), on sqlite and on PostgreSQL with an MLflow server (issue 9.6).

Each configuration runs ``cropsearch search`` (no confirmation) in a subprocess on fresh
stores in a temporary folder (never ``./mlruns``): sqlite files, or a PostgreSQL cluster
started from Debian's binaries on a free loopback port (``tests/servers.py``) with an
``mlflow server`` on it. Throughput is the screening trials finished per hour between the
first trial's start and the last one's end (from the Optuna study); the command's wall time,
which adds the start-up of Python and TensorFlow, is reported beside it.

    .venv/bin/python benchmarks/workers.py                      # 8 trials x 4 epochs, shapes
    .venv/bin/python benchmarks/workers.py --trials 3 --epochs 1 \\
        --data shapes:train=200,val=48,test=48 --out /tmp/workers.json   # a smoke run

Writes ``benchmarks/workers.json`` (``--out``) and prints a markdown table. Run it on an idle
machine: the configurations run one after another and compare ratios within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from servers import mlflow_server, postgres  # noqa: E402 (the tests' server helpers)


@contextlib.contextmanager
def stores(kind: str, folder: Path) -> Iterator[tuple[str, str]]:
    """(Optuna storage, MLflow tracking URI) of a fresh ``kind`` store under ``folder``."""
    if kind == "sqlite":
        yield f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db"
        return
    cluster_folder = Path(tempfile.mkdtemp(prefix="cropsearch-bench-pg-"))
    try:
        with postgres(cluster_folder) as cluster:
            storage = cluster.create_database("optuna")
            cluster.create_database("mlflow")
            artifacts = folder / "artifacts"
            artifacts.mkdir()
            backend = cluster.url("mlflow", "postgresql+psycopg")
            with mlflow_server(backend, artifacts) as tracking:
                yield storage, tracking
    finally:
        subprocess.run(["rm", "-rf", str(cluster_folder)], check=False)


def run_search(
    storage: str, tracking: str, workers: int, args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    """One ``cropsearch search`` on the stores; its wall time and the study's trial times."""
    import optuna
    from optuna.trial import TrialState

    command = [
        sys.executable, "-m", "search.cli", "search", "--data", args.data,
        "--space", str(REPO / "spaces" / "default.yaml"), "--trials", str(args.trials),
        "--epochs", str(args.epochs), "--study", "bench", "--storage", storage,
        "--tracking-uri", tracking, "--no-confirm", "--workers", str(workers),
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"search failed ({done.returncode}): {done.stderr[-2000:]}")
    study = optuna.load_study(study_name="bench", storage=storage)
    finished = [
        t
        for t in study.trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.datetime_start is not None
    ]
    first = min(t.datetime_start for t in finished if t.datetime_start is not None)
    last = max(t.datetime_complete for t in finished if t.datetime_complete is not None)
    span = (last - first).total_seconds()
    states: dict[str, int] = {}
    for trial in study.trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    return {
        "trials_finished": len(finished),
        "span_seconds": round(span, 1),
        "trials_per_hour": round(len(finished) / span * 3600, 1) if span > 0 else None,
        "wall_seconds": round(wall, 1),
        "states": states,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "workers.json")
    args = parser.parse_args()
    optuna_quiet()
    cores = os.cpu_count() or 1
    rows = []
    for kind in args.stores.split(","):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory(prefix="cropsearch-bench-") as name:
                folder = Path(name)
                with stores(kind, folder) as (storage, tracking):
                    result = run_search(storage, tracking, workers, args, folder)
            row = {"store": kind, "workers": workers,
                   "threads_per_worker": max(1, cores // workers), **result}  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    report = {
        "command": " ".join(sys.argv),
        "machine": {"cores": cores, "python": platform.python_version()},
        "settings": {"trials": args.trials, "epochs": args.epochs, "data": args.data},
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(rows))


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a markdown table."""
    lines = [
        "| store | workers x threads | trials | trials/hour | trial span (s) | wall (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['workers']} x {r['threads_per_worker']} | "
            f"{r['trials_finished']} | {r['trials_per_hour']} | {r['span_seconds']} | "
            f"{r['wall_seconds']} |"
        )
    return "\n".join(lines)


def optuna_quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


if __name__ == "__main__":
    main()
