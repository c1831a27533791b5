"""Fit and evaluate the compact CNN on one crop policy."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from search.config import TrainConfig
from search.crops import crop_samples
from search.data import Dataset, Samples
from search.model import build_model
from search.policy import OBJECT_KINDS, CropPolicy

#: Called after each epoch with (epoch, metrics); returning True stops training (pruned).
EpochCallback = Callable[[int, dict[str, float]], bool | None]


@dataclass
class TrainResult:
    """What one fit produced: the per-epoch history and final scores on eval-mode crops."""

    history: list[dict[str, float]] = field(default_factory=list)
    val_accuracy: float = 0.0
    test_accuracy: float = 0.0
    seconds: float = 0.0
    n_params: int = 0
    stopped: bool = False
    robustness: dict[str, float] = field(default_factory=dict)


def train_policy(
    policy: CropPolicy,
    data: Dataset,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
    train_index: np.ndarray | None = None,
    test_boxes: Mapping[str, np.ndarray | None] | None = None,
) -> TrainResult:
    """Train a fresh model on ``policy``'s crops of ``data.train``; score on ``data.val``/``test``.

    The learning rate decays to zero over the run (cosine), so the end point is stable enough
    to compare policies. ``on_epoch(epoch, metrics)`` runs after every epoch; when it returns
    True, training stops there (``stopped``; no test score).

    Args:
        train_index: train on these samples of ``data.train`` only (a screening subset).
        test_boxes: extra test scores, by name, with other test-time boxes (a detector's);
            ``None`` for a name means no box at all: the policy falls back to the full image.
    """
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    train = data.train if train_index is None else data.train.take(np.sort(train_index))
    train_canvas = tf.convert_to_tensor(train.images)
    val_x = crop_samples(policy, data.val)
    model = build_model((*policy.size, 3), data.n_classes, config.width, config.depth)
    steps = config.epochs * math.ceil(len(train) / config.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    result = TrainResult(n_params=model.count_params())
    for epoch in range(config.epochs):
        train_x = crop_samples(policy, train, True, config.seed, epoch, train_canvas)
        fit = model.fit(
            train_x,
            train.labels,
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
        if on_epoch is not None and on_epoch(epoch, metrics):
            result.stopped = True
            break
    if not result.stopped:
        result.test_accuracy = _accuracy(model, policy, data.test)
        for name, boxes in (test_boxes or {}).items():
            result.robustness[name] = _robust_accuracy(model, policy, data.test, boxes, result)
    result.seconds = time.perf_counter() - start
    return result


def _accuracy(model: keras.Model, policy: CropPolicy, samples: Samples) -> float:
    crops = crop_samples(policy, samples)
    return float(model.evaluate(crops, samples.labels, batch_size=256, verbose=0)[1])


def _robust_accuracy(
    model: keras.Model,
    policy: CropPolicy,
    test: Samples,
    boxes: np.ndarray | None,
    result: TrainResult,
) -> float:
    """Test accuracy with other boxes (or none: the full image); kinds that do not read the
    box score as with the true one."""
    if policy.kind not in OBJECT_KINDS:
        return result.test_accuracy
    if boxes is None:
        return _accuracy(model, policy.model_copy(update={"kind": "full"}), test)
    return _accuracy(model, policy, Samples(test.images, test.sizes, boxes, test.labels))
