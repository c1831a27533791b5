"""Fit and evaluate the compact CNN on one crop policy."""

from __future__ import annotations

import dataclasses
import math
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from search.crop.cut import crop_samples
from search.crop.kinds import OBJECT_KINDS
from search.crop.policy import CropPolicy
from search.data import Dataset, Samples
from search.ops.signals import raise_unraised
from search.settings import TrainConfig
from search.training.continuation import Continuation, load_state, save_state
from search.training.model import compiled_network
from search.training.reuse import compiled_model

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
    #: Validation accuracy with each box source of a multi-objective study, by name.
    val_by_boxes: dict[str, float] = field(default_factory=dict)
    #: Predicted class of each test sample (empty when stopped).
    test_predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: The trained model's weights, in ``model.get_weights()`` order (empty when stopped).
    weights: list[np.ndarray] = field(default_factory=list)


def train_policy(
    policy: CropPolicy,
    data: Dataset,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
    train_index: np.ndarray | None = None,
    test_boxes: Mapping[str, np.ndarray | None] | None = None,
    reuse_model: bool = True,
    val_boxes: Mapping[str, np.ndarray | None] | None = None,
    resume: Continuation | None = None,
) -> TrainResult:
    """Train a fresh model on ``policy``'s crops of ``data.train``; score on ``data.val``/``test``.

    The learning rate decays to zero over the run (cosine), so the end point is stable enough
    to compare policies. ``on_epoch(epoch, metrics)`` runs after every epoch; when it returns
    True, training stops there (``stopped``; no test score).

    Args:
        train_index: train on these samples of ``data.train`` only (a screening subset).
        test_boxes: extra test scores, by name, with other test-time boxes (a detector's);
            ``None`` for a name means no box at all: the policy falls back to the full image.
        val_boxes: validation scores of the trained model, by name, with other boxes (the
            objectives of a multi-objective study), as ``test_boxes``.
        reuse_model: reset and reuse a compiled model of the same shape from an earlier
            call (identical results, no new trace); False builds and compiles a new one.
        resume: continue a checkpoint from its epoch, with the decay spanning more epochs
            (keras-tuner's Hyperband; :mod:`search.training.continuation`).
    """
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    train = data.train if train_index is None else data.train.take(np.sort(train_index))
    train_canvas = _canvas(data.train.images, train_index, train.images)
    # Crops (train ones keyed by seed, epoch, index: order-free) are cut on a side thread:
    # the first epoch's while the model is set up, validation and test while it trains, each
    # next epoch's while the previous trains.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cropsearch-crops") as ahead:
        first = 0 if resume is None or resume.load_from is None else resume.initial_epoch
        next_x = ahead.submit(crop_samples, policy, train, True, config.seed, first, train_canvas)
        val_crops = ahead.submit(eval_crops, policy, data.val)
        test_crops = ahead.submit(eval_crops, policy, data.test)
        span = config.epochs if resume is None else max(resume.schedule_epochs, config.epochs)
        steps = span * math.ceil(len(train) / config.batch_size)
        if (
            config.model is not None
        ):  # a user's network (search.training.model): built and compiled anew
            model = compiled_network(config, (*policy.size, 3), data.n_classes, steps)
        else:
            # The initial weights and optimizer state of a new model; traced functions kept.
            model = compiled_model(
                (*policy.size, 3),
                data.n_classes,
                config.width,
                config.depth,
                config.learning_rate,
                steps,
                reuse=reuse_model,
            )
        result = TrainResult(n_params=model.count_params())
        if resume is not None and resume.load_from is not None:
            load_state(model, resume.load_from)
            result.history = list(resume.history)
        for epoch in range(first, config.epochs):
            train_x = next_x.result()
            if epoch + 1 < config.epochs:
                next_x = ahead.submit(
                    crop_samples, policy, train, True, config.seed, epoch + 1, train_canvas
                )
            fit = model.fit(
                train_x,
                train.labels,
                batch_size=config.batch_size,
                epochs=epoch + 1,
                initial_epoch=epoch,
                shuffle=True,
                verbose=0,
                callbacks=[_Interruptible()],
            )
            val_scores = class_scores(model, val_crops.result())  # cut while the first epoch trains
            metrics = {
                "loss": float(fit.history["loss"][-1]),
                "accuracy": float(fit.history["accuracy"][-1]),
                "val_loss": _loss(val_scores, data.val.labels),
                "val_accuracy": _hits(val_scores, data.val.labels),
            }
            result.history.append(metrics)
            result.val_accuracy = metrics["val_accuracy"]
            if on_epoch is not None and on_epoch(epoch, metrics):
                result.stopped = True
                break
        test_x = test_crops.result()
        ahead.shutdown(wait=True, cancel_futures=True)  # a pruned trial's next crops
    if resume is not None and resume.save_to is not None:
        save_state(model, result.history, resume.save_to)
    if not result.stopped:
        result.test_predictions = class_scores(model, test_x).argmax(axis=1)
        result.test_accuracy = float(np.mean(result.test_predictions == data.test.labels))
        result.weights = model.get_weights()
        for name, boxes in (test_boxes or {}).items():
            result.robustness[name] = _accuracy_with(
                model, policy, data.test, boxes, result.test_accuracy
            )
        for name, boxes in (val_boxes or {}).items():
            result.val_by_boxes[name] = _accuracy_with(
                model, policy, data.val, boxes, result.val_accuracy
            )
    result.seconds = time.perf_counter() - start
    return result


class _Interruptible(keras.callbacks.Callback):
    """Stops a training at its next batch on a signal whose interrupt Python could not raise
    where it arrived (:func:`~search.ops.signals.raise_unraised`). A batch's start, not its
    end: an end hook would make Keras wait for every step's logs."""

    def on_train_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None:
        raise_unraised()


_CANVAS: list[tuple[np.ndarray, bytes | None, tf.Tensor]] = []


def _canvas(images: np.ndarray, index: np.ndarray | None, chosen: np.ndarray) -> tf.Tensor:
    """The training images as one tensor, converted once for the trials of a process that
    train on the same split (and subset)."""
    key = None if index is None else np.sort(index).tobytes()
    if _CANVAS and _CANVAS[0][0] is images and _CANVAS[0][1] == key:
        return _CANVAS[0][2]
    tensor = tf.convert_to_tensor(chosen)
    _CANVAS[:] = [(images, key, tensor)]
    return tensor


#: Each model's traced inference, by crop dtype and shape; kept as long as the model (a kept
#: compiled model of :mod:`search.training.reuse` keeps it across trials).
_INFERENCE: weakref.WeakKeyDictionary[
    keras.Model, dict[tuple[str, tuple[int, ...]], Callable[[np.ndarray], tf.Tensor]]
]
_INFERENCE = weakref.WeakKeyDictionary()

#: Crops a batch when scoring, as ``predict`` would batch them.
SCORE_BATCH = 256


def class_scores(model: keras.Model, crops: np.ndarray) -> np.ndarray:
    """Class probabilities of ``crops``, what ``model.predict(crops, batch_size=256)`` gives,
    bit for bit, without the tf.data pipeline ``predict`` builds at every call (0.06 s a call
    here, three calls or more a trial). One traced function serves the validation and test
    scores."""
    traced = _INFERENCE.setdefault(model, {})
    key = (crops.dtype.str, crops.shape[1:])
    infer = traced.get(key)
    if infer is None:
        held = weakref.ref(model)  # the function must not keep its model alive

        def forward(batch: tf.Tensor) -> tf.Tensor:
            return held()(batch, training=False)  # type: ignore[misc]

        spec = tf.TensorSpec([None, *crops.shape[1:]], tf.as_dtype(crops.dtype))
        infer = tf.function(forward, input_signature=[spec])
        traced[key] = infer
    batches = range(0, len(crops), SCORE_BATCH) or [0]
    return np.concatenate([infer(crops[i : i + SCORE_BATCH]).numpy() for i in batches])


def _hits(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(scores.argmax(axis=1) == labels))


def _loss(scores: np.ndarray, labels: np.ndarray) -> float:
    """Sparse categorical cross-entropy, clipped as Keras clips it."""
    chosen = np.clip(scores[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(np.mean(-np.log(chosen)))


def eval_crops(policy: CropPolicy, samples: Samples) -> np.ndarray:
    """Eval-mode crops of a split. A sample without a box (a detector's miss, or no boxes at
    all) is cut as the full image when the policy needs a box, as a two-stage pipeline without
    a detection would; kinds that need no box cut it as usual."""
    missing = samples.missing_boxes
    if not missing.any():
        return crop_samples(policy, samples)
    height, width = samples.sizes[:, 0], samples.sizes[:, 1]
    whole = np.stack([np.zeros_like(width), np.zeros_like(height), width, height], axis=1)
    filled = dataclasses.replace(samples, boxes=np.where(missing[:, None], whole, samples.boxes))
    if policy.kind not in OBJECT_KINDS:
        return crop_samples(policy, filled)
    fallback = policy.model_copy(update={"kind": "full"})
    if missing.all():
        return crop_samples(fallback, filled)
    crops = np.empty((len(samples), *policy.size, 3), dtype=np.uint8)
    crops[~missing] = crop_samples(policy, filled.take(~missing))
    crops[missing] = crop_samples(fallback, filled.take(missing))
    return crops


def _accuracy(model: keras.Model, policy: CropPolicy, samples: Samples) -> float:
    return _hits(class_scores(model, eval_crops(policy, samples)), samples.labels)


def _accuracy_with(
    model: keras.Model,
    policy: CropPolicy,
    samples: Samples,
    boxes: np.ndarray | None,
    as_scored: float,
) -> float:
    """Accuracy on ``samples`` with other boxes (None: no box, the full image); kinds that do
    not read the box score ``as_scored``, their accuracy with the split's own boxes."""
    if policy.kind not in OBJECT_KINDS:
        return as_scored
    if boxes is None:
        boxes = np.full_like(samples.boxes, np.nan, dtype=np.float64)
    return _accuracy(model, policy, dataclasses.replace(samples, boxes=boxes))
