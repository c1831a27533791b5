"""The trained winner as an MLflow Keras model that classifies raw images with their boxes.

Every completed run keeps its trained weights (``weights.npz``, in ``model.get_weights()``
order), so the winner's network can be rebuilt whichever process, machine or engine trained it.
:func:`log_winner_model` puts the policy's :class:`~search.crop.layer.PolicyCrop` layer in
front of that network and logs the whole as the ``mlflow.keras`` flavour, with the input
signature ``images`` (N, H, W, 3) pixels 0..255 and ``boxes`` (N, 4) pixel ``xyxy``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.crop.policy import CropPolicy
from search.results import serving
from search.results.tracking import Tracker
from search.settings import TrainConfig

if TYPE_CHECKING:
    import keras

WEIGHTS = "weights.npz"
#: Artifact folder of the logged model in the winner's run.
MODEL = "model"


def log_weights(tracker: Tracker, run_id: str, weights: list[np.ndarray]) -> None:
    """Keep a run's trained weights as its ``weights.npz`` artifact."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / WEIGHTS
        np.savez(path, *weights)
        tracker.client.log_artifact(run_id, str(path))


def load_weights(tracker: Tracker, run_id: str) -> list[np.ndarray] | None:
    """A run's trained weights, or None when it kept none."""
    if not any(a.path == WEIGHTS for a in tracker.client.list_artifacts(run_id)):
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = tracker.client.download_artifacts(run_id, WEIGHTS, folder)
        with np.load(path) as stored:
            return [stored[f"arr_{i}"] for i in range(len(stored.files))]


def served_model(
    policy: CropPolicy, config: TrainConfig, n_classes: int, weights: list[np.ndarray]
) -> keras.Model:
    """``(images, boxes)`` -> class probabilities: the policy's eval crop, then the network
    ``config`` describes with ``weights``."""
    import keras

    from search.crop.layer import PolicyCrop  # TensorFlow: only when a model is built
    from search.training.model import build_network, hyperparameters

    network = build_network(config.model, (*policy.size, 3), n_classes, hyperparameters(config))
    network.set_weights(weights)
    images = keras.Input((None, None, 3), name="images")
    boxes = keras.Input((4,), name="boxes")
    crops = PolicyCrop(policy, name="crop_policy")(images, boxes)
    return keras.Model({"images": images, "boxes": boxes}, network(crops), name="cropsearch_winner")


def log_winner_model(
    tracker: Tracker,
    run_id: str,
    policy: CropPolicy,
    config: TrainConfig,
    n_classes: int,
    weights_run_id: str,
) -> str | None:
    """Log the model trained in ``weights_run_id`` (with ``policy`` in front) to ``run_id``;
    returns its ``runs:/`` URI, or None when that run kept no weights. Logged once."""
    logged = tracker.client.get_run(run_id).data.tags.get("winner_model")
    if logged is not None:
        return logged
    weights = load_weights(tracker, weights_run_id)
    if weights is None:
        return None
    import keras
    import mlflow
    import tensorflow as tf
    from mlflow.models import Model, ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    model = served_model(policy, config, n_classes, weights)
    signature = ModelSignature(
        inputs=Schema(
            [
                TensorSpec(np.dtype(np.float32), (-1, -1, -1, 3), "images"),
                TensorSpec(np.dtype(np.float32), (-1, 4), "boxes"),
            ]
        ),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n_classes))]),
    )
    import pydantic
    import yaml

    requirements = [
        f"{package.__name__}=={package.__version__}"
        for package in (tf, keras, np, pydantic, mlflow)
    ] + [f"pyyaml=={yaml.__version__}"]  # this package itself goes with the model as its code
    mlflow.set_tracking_uri(tracker.tracking_uri)
    with mlflow.start_run(run_id=run_id):
        Model.log(
            artifact_path=None,
            name=MODEL,
            flavor=serving,
            model=model,
            signature=signature,
            pip_requirements=requirements,
        )
    uri = f"runs:/{run_id}/{MODEL}"
    tracker.set_tags(run_id, {"winner_model": uri, "winner_weights_from": weights_run_id})
    return uri


def load_winner(uri: str) -> Any:
    """The logged winner model (``mlflow.keras.load_model`` with the crop layer known)."""
    import mlflow

    import search.crop.layer  # noqa: F401  registers the crop layer with Keras

    return mlflow.keras.load_model(uri)
