"""Several worker processes on one study: ``search --workers`` and ``cropsearch worker``."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from conftest import search_args


def _cli(args: list[str]) -> tuple[int, str]:
    from search.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    return code, out.getvalue()


@pytest.mark.slow  # two worker processes import TensorFlow and train 1-epoch trials
def test_two_workers_share_one_study_on_sqlite(tmp_path: Path) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    args = search_args(tmp_path, "pair", trials=3)
    code, output = _cli([*args, "--workers", "2"])
    assert code == 0, output
    assert "starting 2 workers" in output

    study = optuna.load_study(study_name="pair", storage=f"sqlite:///{tmp_path}/optuna.db")
    started = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    assert 3 <= len(started) <= 4  # a shared budget: at most one trial over, per extra worker
    assert {t.state for t in started} <= {
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
    }
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.trials) == 1
    assert len({t.user_attrs["owner"] for t in started}) in (1, 2)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("pair")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("cropsearch.role") == "study"]
    children = [r for r in runs if r.data.tags.get("cropsearch.role") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == len(started)
    assert all(r.info.status in ("FINISHED", "KILLED") for r in children)
    seeds = {k: v for k, v in parents[0].data.tags.items() if k.startswith("sampler_seed.")}
    assert len(seeds) == 2 and len(set(seeds.values())) == 2  # each worker its own, logged


def test_a_worker_refuses_an_unknown_study_in_one_line(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    import optuna

    optuna.create_study(study_name="other", storage=storage)
    code, output = _cli(
        ["worker", "--study", "missing", "--storage", storage,
         "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    )  # fmt: skip
    assert code == 2
    assert (
        output.strip()
        .splitlines()[-1]
        .endswith("no study 'missing' in this storage; start it with cropsearch search")
    )
    assert "Traceback" not in output


def test_a_worker_on_other_data_refuses_in_one_line(tmp_path: Path) -> None:
    import optuna
    import yaml
    from conftest import REPO, TINY_DATA

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="moved", storage=storage)
    space = yaml.safe_load((REPO / "spaces" / "default.yaml").read_text())
    attrs = {"space_spec": space, "data": TINY_DATA, "data_fingerprint": "0" * 16}
    attrs.update({"engine": "optuna", "epochs": 1, "seed": 0, "screen_fraction": 1.0})
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    code, output = _cli(
        ["worker", "--study", "moved", "--storage", storage,
         "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    )  # fmt: skip
    assert code == 2, output
    last = output.strip().splitlines()[-1]
    assert f"this machine's data for {TINY_DATA} differs from the study's" in last
    assert "Traceback" not in output and not (tmp_path / "mlflow.db").exists()
