"""Stores created once, even when several processes start on a fresh folder together."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import filelock
import pytest

from search.ops.stores import StoreLockError, created_once, lock_path

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import optuna
    from search.ops.stores import created_once
    from search.results.tracking import Tracker

    folder, barrier, workers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    storage = f"sqlite:///{folder}/optuna.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (barrier / str(os.getpid())).touch()  # imports done: wait for the others, then go together
    while len(list(barrier.iterdir())) < workers:
        time.sleep(0.01)
    with created_once(storage):
        study = optuna.create_study(study_name="race", storage=storage, load_if_exists=True)
    tracker = Tracker(f"sqlite:///{folder}/mlflow.db", "race")
    print(study.study_name, tracker.experiment_id)
    """
)


@pytest.mark.slow  # two processes creating both stores: ~11 s
def test_concurrent_starts_on_a_fresh_folder_all_succeed(tmp_path: Path) -> None:
    """Without the lock, two workers crash here ("table latest_metrics already exists",
    "UNIQUE constraint failed: alembic_version"): seen in 2 runs out of 2."""
    folder = tmp_path / "mlruns"  # does not exist yet: the workers race to create everything
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(folder), str(barrier), "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [worker.communicate(timeout=180) for worker in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert "Traceback" not in err
    assert len({out for out, _ in results}) == 1  # one study, one experiment


def test_a_held_creation_lock_makes_the_next_process_wait_then_gives_up(tmp_path: Path) -> None:
    """The lock is a portable file lock beside the database: while another holder keeps it,
    ``created_once`` waits, and names the lock when the wait runs out."""
    url = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    lock = lock_path(url)
    assert lock == tmp_path / "mlruns" / "optuna.db.lock"
    with created_once(url):
        assert lock.exists()  # the folder was created for it
    other = filelock.FileLock(lock)
    other.acquire()
    try:
        waited = pytest.raises(StoreLockError, match=r"creating this store for 0s \(lock .*optuna")
        with waited, created_once(url, timeout=0.3):
            pass
    finally:
        other.release()
    with created_once(url, timeout=0.3):  # free again
        pass
