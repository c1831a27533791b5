"""Soak: a study of many tiny trials under repeated faults ends with every finished trial in
both stores (issue 19.5).

Three ``cropsearch worker`` processes on one study in PostgreSQL, tracked by an ``mlflow
server`` (both on loopback, ``tests/servers.py``). Every 20-40 s a random worker is killed
with SIGKILL and another started in its place; PostgreSQL is restarted twice (at a third and
two thirds of the trials) and the MLflow server once (at half). When the study has
``--trials`` finished trials no more workers start, and the running ones finish. Then:

- every COMPLETE Optuna trial has exactly one FINISHED MLflow run, with its metrics and its
  crop PNG; no Optuna trial and no MLflow run is RUNNING;
- ``cropsearch status`` exits 0, and its counts are Optuna's;
- the leaderboard's records count the same complete and pruned trials as Optuna, its rows are
  complete trials, and the parent run's ``leaderboard.csv`` is that leaderboard;
- no configuration was trained twice (a reused twin is tagged ``duplicate_of``), except the
  retry of a trial whose worker died;
- no worker ended with an error other than the start-up check's one line when it met a store
  restarting ("cannot reach", counted as ``workers_refused_at_start``).

    .venv/bin/python benchmarks/soak.py                 # 30 trials, kills every 20-40 s
    .venv/bin/python benchmarks/soak.py --trials 8 --kill-every 25 40   # the slow test's size

Prints the counts as JSON (``lost`` and ``ghosts`` must be 0) and exits 1 when a check fails;
``--keep DIR`` keeps the folder with each worker's log.
"""

from __future__ import annotations

import argparse
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
#: The soak gives up when more workers than this end with an error, or no trial finishes for
#: this many seconds (a broken setup would otherwise restart failing workers for ever).
MAX_FAILED, STALL = 10, 600.0


class SoakStalled(RuntimeError):
    """The soak made no progress (workers failing or stuck)."""


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stop(signum: int, _frame: Any) -> None:
    """SIGTERM (and SIGINT, ignored in a background job) end the soak through its clean-up."""
    raise KeyboardInterrupt(f"signal {signum}")


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
    counts: dict[str, Any] = {
        "kills": 0, "worker_starts": 0, "postgres_restarts": 0, "mlflow_restarts": 0,
    }  # fmt: skip
    failed_exits: list[tuple[int, Path]] = []  # workers that ended with an error, their logs
    killed: set[int] = set()  # pids
    ended: set[int] = set()
    workers: list[subprocess.Popen[bytes]] = []
    refused: list[str] = []  # workers whose start-up check met a store restarting
    logs = folder / "workers"  # one log per worker started
    logs.mkdir(exist_ok=True)
    paths: dict[int, Path] = {}
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
                         "--study", "soak", "--storage", storage, "--tracking-uri", server.uri,
                         "--no-confirm"),
                    env=env, cwd=folder, check=True, stdout=out, timeout=900,
                )  # fmt: skip

                def start() -> subprocess.Popen[bytes]:
                    counts["worker_starts"] += 1
                    path = logs / f"{counts['worker_starts']:03d}.log"
                    with open(path, "wb") as log:
                        worker = subprocess.Popen(
                            _cli("worker", "--study", "soak", "--trials", "3"),
                            env=env, cwd=folder, stdout=log, stderr=log,
                        )  # fmt: skip
                    paths[worker.pid] = path
                    return worker

                workers.extend(start() for _ in range(WORKERS))
                faults = [("postgres", trials / 3), ("mlflow", trials / 2),
                          ("postgres", 2 * trials / 3)]  # fmt: skip
                next_kill = time.monotonic() + rng.uniform(*kill_every)
                progress, last_done = time.monotonic(), -1
                while True:
                    done = _finished(storage)
                    if done != last_done:
                        progress, last_done = time.monotonic(), done
                    if len(failed_exits) > MAX_FAILED or time.monotonic() - progress > STALL:
                        raise SoakStalled(
                            f"{done} trials finished, {len(failed_exits)} workers failed; "
                            f"the last lines of the latest worker's log:\n"
                            + _tail(paths[workers[-1].pid])
                        )
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
                        if victim.poll() is None:
                            victim.send_signal(signal.SIGKILL)
                            victim.wait()
                            killed.add(victim.pid)
                            counts["kills"] += 1
                        next_kill = time.monotonic() + rng.uniform(*kill_every)
                    for index, worker in enumerate(workers):
                        code = worker.poll()
                        if code is None or worker.pid in ended:
                            continue
                        ended.add(worker.pid)
                        if code != 0 and worker.pid not in killed:
                            last = _tail(paths[worker.pid], 1)
                            if code == 2 and "cannot reach" in last:
                                refused.append(last)  # the documented one line: not a fault
                            else:
                                failed_exits.append((code, paths[worker.pid]))
                        if not enough:
                            workers[index] = start()  # in place of a killed or finished one
                    if enough and all(w.poll() is not None for w in workers):
                        break
                    time.sleep(1)
                counts["workers_failed"] = len(failed_exits)
                counts["workers_refused_at_start"] = len(refused)
                counts.update(check(storage, server.uri, folder))
                if failed_exits:
                    counts["problems"].extend(
                        f"worker {path.name} ended with exit code {code}; its log ends:\n"
                        + _tail(path, 12)
                        for code, path in failed_exits
                    )
    finally:
        for worker in workers:  # an interrupted soak leaves no worker behind
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        subprocess.run(["rm", "-rf", str(cluster_folder)], check=False)
    counts["seconds"] = round(time.monotonic() - started)
    return counts


def check(storage: str, tracking: str, folder: Path) -> dict[str, Any]:
    """The end-state checks: counts, and ``problems`` (each a line)."""
    import optuna
    from mlflow.tracking import MlflowClient

    from search.engines.optuna_records import OptunaRecords
    from search.results.report import leaderboard, leaderboard_csv, summary_lines

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
        if len(finished) != 1 or len(by_number[trial.number]) != 1:
            lost += 1
            problems.append(
                f"trial {trial.number}: {len(finished)} FINISHED runs of "
                f"{len(by_number.get(trial.number, []))}"
            )
            continue
        run = finished[0]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        if "final_val_accuracy" not in run.data.metrics or "crop_samples.png" not in artifacts:
            lost += 1
            problems.append(f"trial {trial.number}: run without its metrics or crop PNG")
        if "duplicate_of" not in run.data.tags:
            trained[str(trial.user_attrs.get("configuration"))] += 1
    twice = {key: n for key, n in trained.items() if n > 1}
    if twice:
        problems.append(f"configurations trained twice: {twice}")
    ghosts = statuses.get("RUNNING", 0)
    if ghosts or states.get("RUNNING"):
        problems.append(f"RUNNING left: {ghosts} runs, {states.get('RUNNING', 0)} trials")
    # The leaderboard (as printed and as the parent run's leaderboard.csv) counts the same.
    records = OptunaRecords(study).search_records()
    board = leaderboard(records)
    told = Counter({"complete": states.get("COMPLETE", 0), "pruned": states.get("PRUNED", 0)})
    recorded = Counter(r.state for r in records)
    if any(recorded[state] != n for state, n in told.items()):
        problems.append(f"leaderboard records {dict(recorded)}, Optuna {dict(told)}")
    complete = {t.number for t in trials if t.state.name == "COMPLETE"}
    if not board or any(row.number not in complete for row in board):
        problems.append(f"leaderboard rows not all complete trials: {[r.number for r in board]}")
    parents = [r for r in runs if r.data.tags.get("cropsearch.role") == "study"]
    if len(parents) != 1:
        problems.append(f"{len(parents)} parent runs")
    else:
        logged = client.download_artifacts(parents[0].info.run_id, "leaderboard.csv", str(folder))
        if Path(logged).read_text().splitlines() != leaderboard_csv(board).splitlines():
            problems.append("the parent run's leaderboard.csv is not the study's leaderboard")
    status = subprocess.run(
        _cli("status", "--study", "soak", "--storage", storage, "--tracking-uri", tracking),
        capture_output=True, text=True, timeout=600, cwd=folder,
    )  # fmt: skip
    if status.returncode != 0:
        problems.append(f"cropsearch status exited {status.returncode}: {status.stdout[-500:]}")
    shown = Counter()
    for line in status.stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[1].isdigit() and words[2] == "(optuna)":
            shown[words[0].upper()] += int(words[1])
    if shown != Counter({k: v for k, v in states.items() if v}):
        problems.append(f"status counts {dict(shown)}, Optuna {dict(states)}")
    return {
        "trials": dict(states),
        "runs": dict(statuses),
        "summary": summary_lines(records)[0],
        "dead_trials": sum(
            t.state.name == "FAIL"
            and any("died" in r.data.tags.get("error", "") for r in by_number.get(t.number, []))
            for t in trials
        ),
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
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (logs)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        counts = soak(args.trials, tuple(args.kill_every), args.keep, args.seed)
    else:
        with tempfile.TemporaryDirectory(prefix="cropsearch-soak-") as folder:
            counts = soak(args.trials, tuple(args.kill_every), Path(folder), args.seed)
    print(json.dumps(counts, indent=2))
    return 1 if counts["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
