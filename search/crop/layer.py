"""A crop policy as a Keras layer and a ``tf.data`` map, on the in-graph ops of
:mod:`search.crop.graph`: they run inside a ``keras.Model`` and a ``tf.data`` pipeline and save
with the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from search.crop.graph import BOX_FORMATS, BoxFormat, crop_batch
from search.crop.policy import CropPolicy


@keras.saving.register_keras_serializable(package="cropsearch")
class PolicyCrop(keras.layers.Layer):
    """A crop policy as a Keras layer: ``(images, boxes)`` -> crops of ``policy.size``.

    Inference (and ``training=False``) cuts the policy's eval windows. With
    ``train_crops=True`` the layer cuts train-mode (random) windows while the model trains,
    keyed by (``seed``, epoch, sample position) as the search keys them: a sample's position
    counts up through the epoch, and :class:`EpochKeys` sets the epoch at the start of each.
    With ``fit(..., shuffle=False)`` the crops are then exactly those the search trained on.

    Call with ``images`` (N, H, W, C) pixels 0..255 (dense, padded with ``image_sizes`` (N, 2)
    true (height, width), or ragged), ``boxes`` (N, 4) in ``box_format`` (may be omitted for
    kinds that ignore boxes) and optional ``indices`` (N,) sample ids. Returns float32
    (N, h, w, C) of whole grey levels, the values ``policy.apply`` returns as uint8.
    """

    def __init__(
        self,
        policy: CropPolicy | dict[str, Any],
        box_format: BoxFormat = "xyxy",
        train_crops: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.policy = policy if isinstance(policy, CropPolicy) else CropPolicy.from_dict(policy)
        if box_format not in BOX_FORMATS:
            raise ValueError(f"box_format '{box_format}' must be one of {', '.join(BOX_FORMATS)}")
        self.box_format = box_format
        self.train_crops = train_crops
        self.seed = 0 if seed is None else int(seed)
        self.epoch = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="epoch"
        )
        self.position = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="position"
        )

    def call(
        self,
        images: Any,
        boxes: Any = None,
        image_sizes: Any = None,
        indices: Any = None,
        training: bool | None = None,
    ) -> tf.Tensor:
        random = bool(training) and self.train_crops
        if random and indices is None:
            n = tf.cast(_batch_size(images), tf.int64)
            indices = tf.range(n, dtype=tf.int64) + tf.convert_to_tensor(self.position)
            self.position.assign_add(n)
        return crop_batch(
            self.policy,
            images,
            boxes,
            image_sizes,
            self.box_format,
            training=random,
            seed=self.seed,
            epoch=tf.convert_to_tensor(self.epoch),
            indices=indices,
        )

    def compute_output_shape(self, images_shape: Any, *args: Any, **kwargs: Any) -> tuple:
        return (images_shape[0], *self.policy.size, images_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "policy": self.policy.to_dict(),
            "box_format": self.box_format,
            "train_crops": self.train_crops,
            "seed": self.seed,
        }


def _batch_size(images: Any) -> tf.Tensor:
    if isinstance(images, tf.RaggedTensor):
        return images.nrows()
    return tf.shape(images)[0]


class EpochKeys(keras.callbacks.Callback):
    """Keys the train crops of every :class:`PolicyCrop` in the model by the epoch: at the
    start of epoch ``e`` each layer's epoch becomes ``e`` and its sample position 0."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for layer in _policy_layers(self.model):
            layer.epoch.assign(epoch)
            layer.position.assign(0)


def _policy_layers(model: Any) -> list[PolicyCrop]:
    """The :class:`PolicyCrop` layers of ``model``, nested models included."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, PolicyCrop):
            found.append(layer)
        else:
            found += _policy_layers(layer)
    return found


def as_layer(
    policy: CropPolicy,
    box_format: BoxFormat = "xyxy",
    train_crops: bool = False,
    seed: int | None = None,
    **kwargs: Any,
) -> PolicyCrop:
    """``policy`` as a :class:`PolicyCrop` layer; see :meth:`CropPolicy.as_layer`."""
    return PolicyCrop(policy, box_format, train_crops, seed, **kwargs)


# -- tf.data map -------------------------------------------------------------------------------
def tf_map(
    policy: CropPolicy,
    box_format: BoxFormat = "xyxy",
    training: bool = False,
    seed: int | None = None,
    epoch: int | tf.Variable = 0,
) -> Callable[..., tuple[tf.Tensor, tf.Tensor]]:
    """A function for ``tf.data.Dataset.map``: ``(image, box, label)`` -> ``(crop, label)``.

    Elements may be single samples or batches (dense, ragged, or dense with a fourth component
    ``image_size`` (N, 2) giving true sizes of padded images). Crops are uint8. Eval mode needs
    nothing else. Train mode keys each crop by (``seed``, ``epoch``, sample index), so it maps
    over ``dataset.enumerate()`` (enumerate before batching): elements ``(index, (image, box,
    label))``. ``epoch`` may be a ``tf.Variable`` assigned between epochs.
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format '{box_format}' must be one of {', '.join(BOX_FORMATS)}")

    @tf.autograph.experimental.do_not_convert
    def crop_element(*element: Any) -> tuple[tf.Tensor, tf.Tensor]:
        index = None
        if len(element) == 2 and isinstance(element[1], tuple):
            index, element = element[0], element[1]
        if len(element) not in (3, 4):
            raise ValueError(
                "expected elements (image, box, label) or (image, box, label, image_size), "
                f"got {len(element)} components"
            )
        if training and index is None:
            raise ValueError(
                "train-mode crops are keyed by sample index: map over dataset.enumerate() "
                "(before batching)"
            )
        image, box, label = element[:3]
        image_size = element[3] if len(element) == 4 else None
        single = not isinstance(image, tf.RaggedTensor) and image.shape.rank == 3
        if single:
            image, box = image[None], tf.reshape(box, [1, 4])
            image_size = None if image_size is None else tf.reshape(image_size, [1, 2])
        crops = crop_batch(
            policy,
            image,
            box,
            image_size,
            box_format,
            training=training,
            seed=seed,
            epoch=tf.convert_to_tensor(epoch) if isinstance(epoch, tf.Variable) else epoch,
            indices=index,
        )
        crops = tf.cast(crops, tf.uint8)
        return (crops[0] if single else crops), label

    return crop_element
