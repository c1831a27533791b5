"""``cropsearch search --model usermodel:Tiny``, as a keras-tuner user runs it: a HyperModel
subclass with no constructor, in a file of the current folder; the search completes and MLflow
records that network."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import keras_tuner
import numpy as np
import pytest
from conftest import search_args
from mlflow.tracking import MlflowClient

from search.ops.devices import describe_device
from search.training.model import build_network

pytestmark = pytest.mark.slow

USERMODEL = textwrap.dedent(
    """
    import keras
    import keras_tuner
    from keras import layers


    class Tiny(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential()
            model.add(layers.Rescaling(1 / 255))
            model.add(layers.Conv2D(hp.Int("filters", 4, 12, step=4, default=12), 3))
            model.add(layers.GlobalAveragePooling2D())
            model.add(layers.Dense(6, activation="softmax"))
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            return model
    """
)


def test_a_constructor_less_hypermodel_runs_a_search_and_is_recorded(tmp_path: Path) -> None:
    (tmp_path / "usermodel.py").write_text(USERMODEL)
    cropsearch = Path(sys.executable).parent / "cropsearch"
    args = [*search_args(tmp_path, "user", trials=2), "--model", "usermodel:Tiny"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(cropsearch), *args], cwd=tmp_path, capture_output=True, text=True, env=env,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"device: {describe_device()}"

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("user")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("cropsearch.role") == "study")
    assert parent.data.params["model"] == "usermodel:Tiny"
    assert parent.data.params["device"] == describe_device()
    trials = [r for r in runs if r.data.tags.get("stage") == "search"]
    assert len(trials) == 2

    sys.path.insert(0, str(tmp_path))
    try:
        expected = build_network("usermodel:Tiny", (48, 48, 3), 6, keras_tuner.HyperParameters())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("usermodel", None)
    shapes = [w.shape for w in expected.get_weights()]
    assert shapes[0] == (3, 3, 3, 12)  # the user's Conv2D, its filters at their default
    for run in trials:
        assert run.data.params["train.model"] == "usermodel:Tiny"
        assert run.data.metrics["n_params"] == expected.count_params()
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_artifacts(run.info.run_id, "weights.npz", folder)
            with np.load(path) as stored:
                assert [stored[f"arr_{i}"].shape for i in range(len(stored.files))] == shapes
