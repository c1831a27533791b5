"""Fit and evaluate the compact CNN on one crop policy."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from search.config import TrainConfig
from search.crops import crop_samples
from search.data import Dataset
from search.model import build_model
from search.policy import CropPolicy

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    """What one fit produced: the per-epoch history and final scores on eval-mode crops."""

    history: list[dict[str, float]] = field(default_factory=list)
    val_accuracy: float = 0.0
    test_accuracy: float = 0.0
    seconds: float = 0.0
    n_params: int = 0


def train_policy(
    policy: CropPolicy,
    data: Dataset,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train a fresh model on ``policy``'s crops of ``data.train``; score on ``data.val``/``test``.

    The learning rate decays to zero over the run (cosine), so the end point is stable enough
    to compare policies. ``on_epoch(epoch, metrics)`` runs after every epoch and may raise
    (``optuna.TrialPruned``) to stop early.
    """
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    train_canvas = tf.convert_to_tensor(data.train.images)
    val_x = crop_samples(policy, data.val)
    model = build_model((*policy.size, 3), data.n_classes, config.width, config.depth)
    steps = config.epochs * math.ceil(len(data.train) / config.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    result = TrainResult(n_params=model.count_params())
    for epoch in range(config.epochs):
        train_x = crop_samples(policy, data.train, True, config.seed, epoch, train_canvas)
        fit = model.fit(
            train_x,
            data.train.labels,
            batch_size=config.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=True,
            verbose=0,
        )
        val_loss, val_accuracy = model.evaluate(val_x, data.val.labels, batch_size=256, verbose=0)
        metrics = {
            "loss": float(fit.history["loss"][-1]),
            "accuracy": float(fit.history["accuracy"][-1]),
            "val_loss": float(val_loss),
            "val_accuracy": float(val_accuracy),
        }
        result.history.append(metrics)
        result.val_accuracy = metrics["val_accuracy"]
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    test_x = crop_samples(policy, data.test)
    result.test_accuracy = float(
        model.evaluate(test_x, data.test.labels, batch_size=256, verbose=0)[1]
    )
    result.seconds = time.perf_counter() - start
    return result
