"""The pruning rules through a real search (the project's prune callback, run_trial's pruned
branch, both stores and ``status``), with a stand-in for training that reports a known
validation accuracy per epoch, so the rules decide alone: the baseline and the anchors are
never pruned, nothing is pruned before the warm-up or at the last epoch, and a pruned trial
is PRUNED in Optuna, KILLED in MLflow, ``state=pruned`` in its record."""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

import search
from search.cli import main
from search.study.record import TrialRecord

pytestmark = pytest.mark.slow  # whole searches through the CLI (a stand-in trainer)

EPOCHS = 6
WARMUP = EPOCHS // 2  # the median pruner's warm-up: epochs 0..WARMUP-1 are never judged


def _curve(policy: search.CropPolicy, epochs: int = EPOCHS) -> list[float]:
    """The validation accuracy a policy reports after each epoch, shaped so that each rule
    alone decides its fate: the baseline is the worst; the object anchor is poor (only the
    anchor rule keeps it); sampled centre crops below 0.6 are poor (pruned after the warm-up);
    other sampled centre crops are good until their last epoch (only the last-epoch rule
    keeps them); sampled object crops start badly and recover after the warm-up (only the
    warm-up keeps them)."""
    ramp = [(epoch + 1) / epochs for epoch in range(epochs)]
    warmup = epochs // 2
    if policy.kind == "full":
        return [0.05 * r for r in ramp]
    if policy.kind == "object":
        if policy.context == 0.2:  # the object anchor
            return [0.1 * r for r in ramp]
        return [0.0 if epoch < warmup else 0.95 * r for epoch, r in enumerate(ramp)]
    if policy.fraction == 0.875:  # the centre anchor
        return [0.9 * r for r in ramp]
    if policy.fraction < 0.6:
        return [0.1 * r for r in ramp]
    return [*(0.9 * r for r in ramp[:-1]), 0.01]


def fake_train(policy: search.CropPolicy, data: Any, config: Any, on_epoch: Any = None,
               *args: Any, **kwargs: Any) -> Any:  # fmt: skip
    """Stands in for training: reports the policy's curve epoch by epoch, stops when told."""
    from search.training.fit import TrainResult

    result = TrainResult(n_params=1, seconds=0.01)
    for epoch, value in enumerate(_curve(policy, config.epochs)):
        metrics = {"loss": 1.0, "accuracy": value, "val_loss": 1.0, "val_accuracy": value}
        result.history.append(metrics)
        result.val_accuracy = value
        if on_epoch is not None and on_epoch(epoch, metrics):
            result.stopped = True
            return result
    result.test_accuracy = result.val_accuracy
    result.test_predictions = np.zeros(len(data.test), dtype=np.int64)
    result.weights = _weights((*policy.size, 3), data.n_classes)
    return result


@functools.cache
def _weights(shape: tuple[int, int, int], classes: int) -> list[np.ndarray]:
    """An untrained network's weights, so the winner model can be written as usual."""
    from search.training.model import build_model

    return list(build_model(shape, classes).get_weights())


def test_the_pruning_rules_through_a_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import search.training.fit

    monkeypatch.setattr(search.training.fit, "train_policy", fake_train)
    space = tmp_path / "space.yaml"
    space.write_text(
        "params:\n"
        "  kind: {type: categorical, choices: [full, center, object]}\n"
        "  fraction: {type: float, low: 0.3, high: 0.9, when: {kind: [center]}}\n"
        "  context: {type: float, low: 0.0, high: 1.0, when: {kind: [object]}}\n"
    )
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        "search", "--data", "shapes:train=48,val=24,test=24,canvas=48", "--space", str(space),
        "--trials", "16", "--epochs", str(EPOCHS), "--screen-epochs", str(EPOCHS),
        "--study", "prune", "--no-confirm",
        "--algorithm", "random", "--storage", storage, "--tracking-uri", tracking,
    ]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    assert code == 0, (out.getvalue()[-500:], capsys.readouterr().err[-2000:])

    study = optuna.load_study(study_name="prune", storage=storage)
    records = {t.number: TrialRecord.from_json(t.user_attrs["record"]) for t in study.trials}
    epochs_run = {number: len(record.history) for number, record in records.items()}
    states = {t.number: t.state for t in study.trials}
    complete, pruned_state = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
    # The baseline and the anchors (the object anchor is poor) run every epoch.
    assert [states[n] for n in (0, 1, 2)] == [complete] * 3
    assert records[0].baseline and all(epochs_run[n] == EPOCHS for n in (0, 1, 2))
    sampled = [t for t in study.trials if t.number >= 3 and t.params.get("kind") != "full"]
    poor = {
        t.number for t in sampled if t.params["kind"] == "center" and t.params["fraction"] < 0.6
    }
    late_drop = {t.number for t in sampled if t.params["kind"] == "center"} - poor
    slow_start = {t.number for t in sampled if t.params["kind"] == "object"}
    assert poor and late_drop and slow_start, "the seed samples every shape of curve"
    pruned = {n for n, state in states.items() if state == pruned_state}
    assert pruned == poor, "exactly the poor sampled trials are stopped"
    for number in pruned:
        assert WARMUP < epochs_run[number] < EPOCHS, "judged after the warm-up, before the end"
        assert records[number].state == "pruned"
        assert max(study.trials[number].intermediate_values) == epochs_run[number] - 1
    for number in late_drop | slow_start:  # below the median only at the end / at the start
        assert states[number] == complete and epochs_run[number] == EPOCHS, number

    client = MlflowClient(tracking)
    for trial in study.trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        expected = "KILLED" if trial.state == optuna.trial.TrialState.PRUNED else "FINISHED"
        assert run.info.status == expected, (trial.number, run.info.status)
        assert run.data.tags["state"] == records[trial.number].state

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["status", "--study", "prune", "--storage", storage,
                     "--tracking-uri", tracking]) == 0  # fmt: skip
    lines = out.getvalue().splitlines()
    assert f"  pruned {len(pruned):>7}  (optuna)" in lines and "Optuna and MLflow agree" in lines


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_pruner_that_always_stops_spares_the_baseline_and_the_last_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epochs: int
) -> None:
    """Whatever the pruner says, the baseline runs every epoch and no trial is stopped after
    its last epoch (there is nothing left to save): with 1 epoch nothing is pruned, with 2
    every other trial stops after its first."""
    import search.training.fit

    monkeypatch.setattr(search.training.fit, "train_policy", fake_train)
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        "search", "--data", "shapes:train=48,val=24,test=24,canvas=48", "--trials", "4",
        "--epochs", str(epochs), "--screen-epochs", str(epochs), "--study", "always",
        "--no-confirm", "--storage", storage,
        "--tracking-uri", tracking,
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    study = optuna.load_study(study_name="always", storage=storage)
    ran = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    records = [TrialRecord.from_json(t.user_attrs["record"]) for t in ran]
    assert len(ran) == 4
    assert records[0].baseline and ran[0].state == optuna.trial.TrialState.COMPLETE
    assert len(records[0].history) == epochs
    expected = optuna.trial.TrialState.COMPLETE if epochs == 1 else optuna.trial.TrialState.PRUNED
    for trial, record in zip(ran[1:], records[1:], strict=True):
        assert trial.state == expected, (trial.number, record.label)
        assert len(record.history) == 1
