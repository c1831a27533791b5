"""The space file as keras-tuner HyperParameters and as an Optuna grid (no training)."""

from __future__ import annotations

from pathlib import Path

import keras_tuner
import pytest
import yaml

from search.engines.keras_tuner_space import hyperparameters
from search.space import Space, SpaceError

SPACE = {
    "fixed": {"border": "pad"},
    "params": {
        "kind": {"type": "categorical", "choices": ["full", "center", "object"]},
        "size": {"type": "categorical", "choices": [[32, 32], [48, 48]]},
        "fraction": {"type": "float", "low": 0.2, "high": 1.0, "step": 0.2,
                     "when": {"kind": ["center"]}},
        "context": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": ["object"]}},
        # nested: only for object crops of the larger size
        "jitter": {"type": "float", "low": 0.0, "high": 0.2,
                   "when": {"kind": ["object"], "size": [[48, 48]]}},
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "width": {"type": "int", "low": 8, "high": 32, "step": 8},
        "batch_size": {"type": "int", "low": 16, "high": 128, "log": True},
    },
}  # fmt: skip


def _load(tmp_path: Path, spec: dict[str, object] = SPACE) -> Space:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return Space.load(path)


def test_every_parameter_type_translates(tmp_path: Path) -> None:
    hp = hyperparameters(_load(tmp_path))
    by_name = {h.name: h for h in hp.space}
    assert isinstance(by_name["border"], keras_tuner.engine.hyperparameters.Fixed)
    assert by_name["border"].value == "pad"
    assert isinstance(by_name["kind"], keras_tuner.engine.hyperparameters.Choice)
    assert list(by_name["size"].values) == ["[32, 32]", "[48, 48]"]  # lists travel as JSON
    fraction = by_name["fraction"]
    assert isinstance(fraction, keras_tuner.engine.hyperparameters.Float)
    assert (fraction.min_value, fraction.max_value, fraction.step) == (0.2, 1.0, 0.2)
    assert by_name["context"].step is None and by_name["context"].sampling == "linear"
    assert by_name["learning_rate"].sampling == "log"
    width = by_name["width"]
    assert isinstance(width, keras_tuner.engine.hyperparameters.Int)
    assert (width.min_value, width.max_value, width.step) == (8, 32, 8)
    assert by_name["batch_size"].sampling == "log" and by_name["batch_size"].step is None


def test_when_becomes_nested_conditional_scopes(tmp_path: Path) -> None:
    hp = hyperparameters(_load(tmp_path))
    by_name = {h.name: h for h in hp.space}
    assert [(c.name, c.values) for c in by_name["fraction"].conditions] == [("kind", ["center"])]
    jitter = [(c.name, c.values) for c in by_name["jitter"].conditions]
    assert jitter == [("kind", ["object"]), ("size", ["[48, 48]"])]
    assert by_name["width"].conditions == []
    hp.values.update({"kind": "object", "size": "[32, 32]"})
    assert hp.is_active("context") and not hp.is_active("jitter")
    assert not hp.is_active("fraction")
    hp.values["size"] = "[48, 48]"
    assert hp.is_active("jitter")


@pytest.mark.parametrize("seed", range(8))
def test_oracle_values_give_valid_configurations(tmp_path: Path, seed: int) -> None:
    """What a keras-tuner oracle chooses becomes a configuration with exactly the active
    parameters, lists back as lists, as Optuna's sampling gives."""
    space = _load(tmp_path)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective="val_accuracy", max_trials=1, hyperparameters=hyperparameters(space), seed=seed
    )
    oracle._set_project_dir(str(tmp_path), "p")
    chosen = oracle.populate_space("0")["values"]
    values = space.values_from(chosen)
    assert values["border"] == "pad" and values["size"] in ([32, 32], [48, 48])
    assert ("fraction" in values) == (values["kind"] == "center")
    assert ("context" in values) == (values["kind"] == "object")
    assert ("jitter" in values) == (values["kind"] == "object" and values["size"] == [48, 48])
    from search.settings import TrainConfig
    from search.space import split_values

    policy, train = split_values(values, TrainConfig())
    assert policy.kind == values["kind"] and train.width in (8, 16, 24, 32)


def test_grid_needs_a_step_per_float(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="'context': grid search needs a step"):
        _load(tmp_path).grid()
    spec = {"params": {
        "kind": {"type": "categorical", "choices": ["full", "center"]},
        "fraction": {"type": "float", "low": 0.5, "high": 1.0, "step": 0.25},
        "width": {"type": "int", "low": 8, "high": 24, "step": 8},
    }}  # fmt: skip
    grid = _load(tmp_path, spec).grid()
    assert grid == {"kind": ["full", "center"], "fraction": [0.5, 0.75, 1.0], "width": [8, 16, 24]}
