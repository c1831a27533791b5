"""Soak: a study of many tiny trials under repeated faults ends with every finished trial in
both stores (issue 19.5).

Three ``cropsearch worker`` processes on one study in PostgreSQL, tracked by an ``mlflow
server`` (both on loopback, ``tests/servers.py``). Every 20-40 s a random worker is killed
with SIGKILL and another started in its place; PostgreSQL is restarted twice (at a third and
two thirds of the trials) and the MLflow server once (at half). When the study has
``--trials`` finished trials no more workers start, and the running ones finish. Then:

- every COMPLETE Optuna trial has exactly one FINISHED MLflow run, with its metrics and its
  crop PNG; no Optuna trial and no MLflow run is RUNNING;
- ``cropsearch status`` exits 0, and its counts are Optuna's and MLflow's;
- no configuration was trained twice (a reused twin is tagged ``duplicate_of``), except the
  retry of a trial whose worker died.

    .venv/bin/python benchmarks/soak.py                 # 30 trials, kills every 20-40 s
    .venv/bin/python benchmarks/soak.py --trials 8 --kill-every 8 15   # smaller

Prints the counts as JSON (``lost`` and ``ghosts`` must be 0) and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from servers import Postgres, postgres, served_mlflow  # noqa: E402 (the tests' server helpers)

DATA = "shapes:train=96,val=48,test=48"
WORKERS = 3
FINISHED = ("COMPLETE", "PRUNED")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "search.cli", *args]


def _finished(storage: str) -> int:
    import optuna

    try:
        study = optuna.load_study(study_name="soak", storage=storage)
    except KeyError:
        return 0
    return sum(t.state.name in FINISHED for t in study.get_trials(deepcopy=False))


def _restart_postgres(cluster: Postgres) -> None:
    cluster.stop()
    time.sleep(3)
    cluster.start()


def soak(
    trials: int, kill_every: tuple[float, float], folder: Path, seed: int = 0, quiet: bool = True
) -> dict[str, Any]:
    """Run the soak in ``folder``; the counts and the problems found (empty when none)."""
    rng = random.Random(seed)
    cluster_folder = Path(tempfile.mkdtemp(prefix="cropsearch-soak-pg-"))
    started = time.monotonic()
    counts: dict[str, Any] = {"kills": 0, "postgres_restarts": 0, "mlflow_restarts": 0}
    log = open(folder / "workers.log", "ab")  # noqa: SIM115
    out = subprocess.DEVNULL if quiet else None
    try:
        with postgres(cluster_folder) as cluster:
            storage = cluster.create_database("optuna")
            cluster.create_database("mlflow")
            (folder / "artifacts").mkdir(exist_ok=True)
            backend = cluster.url("mlflow", "postgresql+psycopg")
            with served_mlflow(backend, folder / "artifacts") as server:
                env = {
                    **os.environ,
                    "CROPSEARCH_STORAGE": storage,
                    "CROPSEARCH_TRACKING_URI": server.uri,
                    "CROPSEARCH_PROCESSES": "1",
                }
                subprocess.run(  # creates the study and runs the baseline
                    _cli("search", "--data", DATA, "--trials", "1", "--epochs", "1",
                         "--study", "soak", "--no-confirm"),
                    env=env, cwd=folder, check=True, stdout=out, timeout=900,
                )  # fmt: skip

                def start() -> subprocess.Popen[bytes]:
                    return subprocess.Popen(
                        _cli("worker", "--study", "soak", "--trials", "3"),
                        env=env, cwd=folder, stdout=log, stderr=log,
                    )  # fmt: skip

                workers = [start() for _ in range(WORKERS)]
                faults = [("postgres", trials / 3), ("mlflow", trials / 2),
                          ("postgres", 2 * trials / 3)]  # fmt: skip
                next_kill = time.monotonic() + rng.uniform(*kill_every)
                while True:
                    done = _finished(storage)
                    if faults and done >= faults[0][1]:
                        what, _ = faults.pop(0)
                        if what == "postgres":
                            _restart_postgres(cluster)
                        else:
                            server.stop()
                            time.sleep(3)
                            server.start()
                        counts[f"{what}_restarts"] += 1
                    enough = done >= trials and not faults
                    if not enough and time.monotonic() >= next_kill:
                        victim = rng.choice([w for w in workers if w.poll() is None] or workers)
                        with contextlib.suppress(ProcessLookupError):
                            victim.send_signal(signal.SIGKILL)
                        victim.wait()
                        counts["kills"] += 1
                        next_kill = time.monotonic() + rng.uniform(*kill_every)
                    for index, worker in enumerate(workers):
                        if worker.poll() is not None and not enough:
                            workers[index] = start()  # in place of a killed or finished one
                    if enough and all(w.poll() is not None for w in workers):
                        break
                    time.sleep(1)
                counts["worker_exit_codes"] = sorted(w.returncode for w in workers)
                counts.update(check(storage, server.uri, folder))
    finally:
        log.close()
        subprocess.run(["rm", "-rf", str(cluster_folder)], check=False)
    counts["seconds"] = round(time.monotonic() - started)
    return counts


def check(storage: str, tracking: str, folder: Path) -> dict[str, Any]:
    """The end-state checks: counts, and ``problems`` (each a line)."""
    import optuna
    from mlflow.tracking import MlflowClient

    problems: list[str] = []
    study = optuna.load_study(study_name="soak", storage=storage)
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("soak")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    trial_runs = [r for r in runs if r.data.tags.get("cropsearch.role") == "trial"]
    statuses = Counter(r.info.status for r in runs)
    by_number: dict[int, list[Any]] = {}
    for run in trial_runs:
        by_number.setdefault(int(run.data.tags["trial"]), []).append(run)
    lost, trained = 0, Counter[str]()
    for trial in trials:
        if trial.state.name != "COMPLETE":
            continue
        finished = [r for r in by_number.get(trial.number, []) if r.info.status == "FINISHED"]
        if len(finished) != 1:
            lost += 1
            problems.append(f"trial {trial.number}: {len(finished)} FINISHED runs")
            continue
        run = finished[0]
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
        if not run.data.metrics or not any(a.endswith(".png") for a in artifacts):
            lost += 1
            problems.append(f"trial {trial.number}: run without metrics or crop PNG")
        if "duplicate_of" not in run.data.tags:
            trained[str(trial.user_attrs.get("configuration"))] += 1
    twice = {key: n for key, n in trained.items() if n > 1}
    if twice:
        problems.append(f"configurations trained twice: {twice}")
    ghosts = statuses.get("RUNNING", 0)
    if ghosts or states.get("RUNNING"):
        problems.append(f"RUNNING left: {ghosts} runs, {states.get('RUNNING', 0)} trials")
    status = subprocess.run(
        _cli("status", "--study", "soak", "--storage", storage, "--tracking-uri", tracking),
        capture_output=True, text=True, timeout=600, cwd=folder,
    )  # fmt: skip
    if status.returncode != 0:
        problems.append(f"cropsearch status exited {status.returncode}: {status.stdout[-500:]}")
    complete = states.get("COMPLETE", 0)
    if f"{complete} complete" not in status.stdout:
        problems.append(f"status does not count {complete} complete: {status.stdout[-300:]}")
    return {
        "trials": dict(states),
        "runs": dict(statuses),
        "retried_dead_trials": sum("failed_trial" in t.system_attrs for t in trials),
        "reused_twins": sum("duplicate_of" in r.data.tags for r in trial_runs),
        "lost": lost,
        "ghosts": ghosts,
        "status_exit": status.returncode,
        "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="finished trials to reach")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(20.0, 40.0))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cropsearch-soak-") as folder:
        counts = soak(args.trials, tuple(args.kill_every), Path(folder), args.seed)
    print(json.dumps(counts, indent=2))
    return 1 if counts["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
