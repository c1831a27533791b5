"""Optuna's --pruner and --algorithm choices, fed per-epoch validation accuracy (no training)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from search.engines.optuna_study import open_study


@pytest.mark.parametrize(
    ("pruner", "kind"),
    [
        ("median", optuna.pruners.MedianPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("none", optuna.pruners.NopPruner),
    ],
)
def test_pruner_choice(tmp_path: Path, pruner: str, kind: type) -> None:
    study = open_study("p", f"sqlite:///{tmp_path}/o.db", 0, 1, 4, pruner)  # type: ignore[arg-type]
    assert isinstance(study.pruner, kind)


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [("tpe", optuna.samplers.TPESampler), ("random", optuna.samplers.RandomSampler)],
)
def test_sampler_choice(tmp_path: Path, algorithm: str, kind: type) -> None:
    study = open_study("s", f"sqlite:///{tmp_path}/o.db", 0, 1, 4, algorithm=algorithm)
    assert isinstance(study.sampler, kind)


def test_hyperband_pruner_stops_trials_that_fall_behind(tmp_path: Path) -> None:
    """Per-epoch validation accuracy as the engine reports it: trials far below the others at
    a rung are stopped there, the good ones run all epochs."""
    study = open_study("h", f"sqlite:///{tmp_path}/o.db", 0, 1, 9, "hyperband")
    epochs_run: dict[int, int] = {}

    def objective(trial: optuna.Trial) -> float:
        quality = 0.9 if trial.number % 3 == 0 else 0.1
        for epoch in range(9):
            value = quality * (epoch + 1) / 9
            trial.report(value, epoch)
            epochs_run[trial.number] = epoch + 1
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=18)
    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t % 3 != 0 for t in pruned)
    assert all(epochs_run[t] < 9 for t in pruned)
    assert any(epochs_run[t] == 9 for t in epochs_run if t % 3 == 0)


def test_grid_sampler_walks_the_stepped_space(tmp_path: Path) -> None:
    import yaml

    from search.space import Space

    path = tmp_path / "grid.yaml"
    spec = {"params": {
        "kind": {"type": "categorical", "choices": ["full", "center"]},
        "fraction": {"type": "float", "low": 0.5, "high": 1.0, "step": 0.5},
    }}  # fmt: skip
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    space = Space.load(path)
    study = open_study("g", f"sqlite:///{tmp_path}/o.db", 0, 1, 4, algorithm="grid", space=space)
    assert isinstance(study.sampler, optuna.samplers.GridSampler)
    study.optimize(lambda trial: float(len(str(space.sample(trial)))), n_trials=4)
    seen = {(t.params["kind"], t.params["fraction"]) for t in study.trials}
    assert seen == {("full", 0.5), ("full", 1.0), ("center", 0.5), ("center", 1.0)}


def test_importances_do_not_announce_their_scratch_study(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import optuna

    from search.engines.optuna_records import param_importances

    distribution = optuna.distributions.FloatDistribution(0.0, 10.0)
    study = optuna.create_study()
    for value in range(5):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(value)}, distributions={"x": distribution}, value=value
            )
        )
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.INFO, logger="optuna"):
            optuna.logging.set_verbosity(optuna.logging.INFO)
            caplog.clear()
            assert param_importances(study) == {"x": 1.0}
        assert "A new study created" not in caplog.text  # the confirm command printed it
    finally:
        optuna.logging.disable_propagation()
