"""The confirmation's rounds in parallel processes: the same tables whichever process
finishes first, a process that dies fails only its run, and Ctrl-C stops every process with
its run ended as failed."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from conftest import REPO, TINY_DATA, search_args
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from search.cli import main
from search.crop.policy import CropPolicy
from search.data import load_dataset
from search.engines.lookup import find_study
from search.results.tracking import Tracker
from search.settings import TrainConfig
from search.study.pool import PoolContext, TrainingPool
from search.study.trial import TrialSetup

pytestmark = pytest.mark.slow  # trains real models in real processes


def _confirmed(folder: Path) -> list[tuple[int, float, float, float, float]]:
    args = [*search_args(folder, "par", trials=3, confirm=True), "--processes", "2", "--top", "2"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0, out.getvalue()
    assert "anchors and confirmation rounds train in 2 processes x 1 thread(s)" in out.getvalue()
    # the baseline's and the leader's runs train beside the screening and the confirmation
    # finds them done; the runner-up's train in its round
    assert out.getvalue().count("[confirm, during the screening] confirm #0 seed") == 2
    assert out.getvalue().count("[confirm, during the screening] confirm #") == 4
    assert "up to 2 runs to train, 4 already done" in out.getvalue()
    confirmation = find_study("par", f"sqlite:///{folder}/optuna.db").records.confirmation()
    assert confirmation is not None
    return [
        (s.number, s.val.mean, s.val.std, s.test.mean, s.test.std) for s in confirmation.summaries
    ]


def test_a_parallel_confirmation_gives_the_same_numbers_twice(tmp_path: Path) -> None:
    first = _confirmed(tmp_path / "one")
    assert first == _confirmed(tmp_path / "two")
    assert len(first) == 3


def test_a_training_process_that_dies_fails_only_its_run(tmp_path: Path) -> None:
    data = load_dataset(TINY_DATA)
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(tracking, "pool")
    parent = tracker.start_parent("pool", {})
    setups = [
        TrialSetup("pool", n, CropPolicy(kind=kind), TrainConfig(epochs=1, seed=n))
        for n, kind in enumerate(("full", "center", "object"))
    ]
    context = PoolContext(data, tracking, "pool", parent, threads=1)
    with TrainingPool(context, 2) as pool:
        victim = pool._slots[0][0]
        threading.Timer(1.0, os.kill, (victim.pid, signal.SIGKILL)).start()
        finished = dict(pool.train(setups))
    assert sorted(finished) == [0, 1, 2]
    assert finished[0].state == "failed" and "died (exit code -9)" in (finished[0].error or "")
    assert finished[1].state == finished[2].state == "complete"
    assert finished[2].train.seed == 2 and finished[2].policy["kind"] == "object"


def test_the_command_exits_when_a_process_died_before_reading_its_context(
    tmp_path: Path,
) -> None:
    # the context (the data) is larger than a pipe holds: without cancel_join_thread the
    # inbox's feeder thread stays blocked on the dead process's pipe and the exit waits on it
    script = f"""
import os, signal
from search.data import load_dataset
from search.study.pool import PoolContext, TrainingPool
data = load_dataset("shapes:train=800,val=48,test=48")
context = PoolContext(data, "sqlite:///{tmp_path}/mlflow.db", "pool", "parent", threads=1)
pool = TrainingPool(context, 1)
process = pool._slots[0][0]
os.kill(process.pid, signal.SIGKILL)
process.join()
print("exiting", flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "exiting" in done.stdout, done.stderr


@pytest.mark.parametrize("stage", ["search", "confirm"])
def test_ctrl_c_while_processes_train_ends_every_run(tmp_path: Path, stage: str) -> None:
    """Anchors (stage search) or a confirmation round train in two processes when Ctrl-C
    comes: the command exits 130 printing no traceback, no run stays RUNNING, no trial stays
    RUNNING, and the processes are gone."""
    args = [
        sys.executable, "-m", "search.cli", "search", "--data", "shapes:train=800,val=48,test=48",
        "--trials", "3" if stage == "search" else "2", "--epochs", "12", "--study", "stop",
        "--top", "1", "--repeats", "2",
        "--processes", "2", "--storage", f"sqlite:///{tmp_path}/optuna.db",
        "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
    ]  # fmt: skip
    command = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert command.stdout is not None
    lines = []
    for line in command.stdout:
        lines.append(line)
        if "anchors and confirmation rounds train in 2 processes" in line:
            break
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("stop")
    assert experiment is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both confirmation runs have started training
        running = client.search_runs(
            [experiment.experiment_id],
            f"tags.stage = '{stage}' and attributes.status = 'RUNNING'",
        )
        if len(running) == 2:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"two {stage} runs never ran together")
    children = _children(command.pid)
    os.killpg(command.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: the whole group
    rest, _ = command.communicate(timeout=120)
    assert command.returncode == 130, "".join(lines) + rest
    assert "Traceback" not in rest, rest  # the training processes end quietly
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    interrupted = [r for r in runs if r.data.tags.get("stage") == stage]
    assert "FAILED" in {r.info.status for r in interrupted}
    study = optuna.load_study(study_name="stop", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.number for t in study.trials if t.state == TrialState.RUNNING] == []
    assert all(not _alive(pid) for pid in children), "a training process outlived the command"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
