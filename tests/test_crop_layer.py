"""The in-graph policy (``search.crop.graph``, ``search.crop.layer``): the Keras layer and the
``tf.data`` map give the pixels of the search's own cropping (``policy.apply``,
``crop_samples``) for every kind and mode, over the window and crop tables of
``test_crop_geometry.py`` and ``test_crop_cut.py``.

The issue's bound is one grey level; measured, the crops are identical wherever both paths see
the same canvas (the image itself), so the tests also count differing pixels.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_crop_cut import BOX, NEAREST_ROWS, NOISE
from test_crop_geometry import WINDOW_TABLE

from search.crop import graph as crop_graph
from search.crop import layer as crop_layer
from search.crop.cut import apply_policy, crop_samples
from search.crop.geometry import pixels_to_normalized, uniforms
from search.crop.kinds import KINDS
from search.crop.policy import CropPolicy
from search.data import Samples

SEEDS_EPOCHS = ((0, 0), (7, 3))


def _numpy_crops(
    policy: CropPolicy,
    images: list[np.ndarray],
    boxes: np.ndarray,
    training: bool,
    seed: int,
    epoch: int,
) -> np.ndarray:
    """The search's cropping, one image at a time (its own canvas), keyed by sample index."""
    return np.stack(
        [
            apply_policy(policy, image[None], box[None], training, seed, epoch, np.array([i]))[0]
            for i, (image, box) in enumerate(zip(images, boxes, strict=True))
        ]
    )


def _padded(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array([image.shape[:2] for image in images])
    canvas = np.zeros((len(images), *sizes.max(axis=0), 3), np.uint8)
    for i, image in enumerate(images):
        canvas[i, : image.shape[0], : image.shape[1]] = image
    return canvas, sizes


def _max_difference(a: Any, b: Any) -> int:
    return int(np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max())


def test_uniforms_match_numpy_bit_for_bit() -> None:
    ids = np.array([0, 1, 2, 99, 2**31 + 5, 2**40 + 3])
    for seed, epoch, draw in ((0, 0, 1), (2**64 - 1, 5, 33), (12345, 2**40, 4)):
        expected = uniforms(seed, epoch, ids, draw)
        got = crop_graph.uniforms(seed, epoch, tf.constant(ids), draw).numpy()
        np.testing.assert_array_equal(got, expected)
    # the epoch may be a tensor (a layer's variable)
    got = crop_graph.uniforms(3, tf.constant(4, tf.int64), tf.constant(ids), 2).numpy()
    np.testing.assert_array_equal(got, uniforms(3, 4, ids, 2))


@pytest.mark.parametrize(
    ("fields", "image", "box"),
    [row[1:4] for row in WINDOW_TABLE],
    ids=[row[0] for row in WINDOW_TABLE],
)
def test_windows_match_the_window_table(
    fields: dict[str, Any], image: tuple[int, int], box: tuple[float, ...] | None
) -> None:
    policy = CropPolicy(
        **{"fraction": 0.4, "jitter": 0.2, "box_noise": 0.1, "min_object_covered": 0.3, **fields}
    )
    sizes = np.array([image] * 4)
    boxes = None if box is None else np.array([box] * 4, float)
    for training in (False, True):
        for seed, epoch in SEEDS_EPOCHS:
            expected = policy.windows(sizes, boxes, training, seed, epoch)
            got = crop_graph.crop_windows(
                policy, tf.constant(sizes), None if boxes is None else tf.constant(boxes),
                training, seed, epoch,
            )  # fmt: skip
            np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-9)


def _table_cases() -> list[tuple[str, CropPolicy, tuple[int, int], tuple[float, ...]]]:
    """Every row of the window table (its image size and box) and of the crop table (the 90x120
    image and its box), each with the other table's fields varied."""
    cases = []
    for name, fields, image, box, _ in WINDOW_TABLE:
        size = {"size": (24, 32)}
        policy = CropPolicy(**{"fraction": 0.5, "jitter": 0.2, "box_noise": 0.1, **size, **fields})
        cases.append((name, policy, image, box or (0.0, 0.0, image[1], image[0])))
    for fields, size in NEAREST_ROWS:
        policy = CropPolicy(**fields, size=size, jitter=0.15, box_noise=0.05)
        cases.append((f"{fields['kind']}-{size[0]}x{size[1]}", policy, NOISE.shape[:2], BOX))
    return cases


TABLE_CASES = _table_cases()


@pytest.mark.slow  # about 15 s: two table sweeps of eager crops
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_layer_and_map_match_policy_apply_over_the_tables(interpolation: str) -> None:
    """Every table row in eval and train mode through the layer; through the map for one row
    of each kind (both run ``crop_batch``; the map's own tests cover its element forms)."""
    rng = np.random.default_rng(0)
    mapped_kinds = set()
    for name, table_policy, image, box in TABLE_CASES:
        policy = CropPolicy(**{**table_policy.to_dict(), "interpolation": interpolation})
        images = rng.integers(0, 256, size=(2, *image, 3), dtype=np.uint8)
        boxes = np.array([box] * 2, float)
        layer = policy.as_layer(train_crops=True, seed=7)
        layer.epoch.assign(3)
        for training, seed, epoch in ((False, 0, 0), (True, 7, 3)):
            expected = _numpy_crops(policy, list(images), boxes, training, seed, epoch)
            layer.position.assign(0)
            got = layer(images, boxes, training=training)
            assert _max_difference(got, expected) == 0, (name, training)
            if policy.kind not in mapped_kinds:
                data = tf.data.Dataset.from_tensor_slices((images, boxes, [0, 1])).enumerate()
                crop = policy.tf_map(training=training, seed=seed, epoch=epoch)
                crops = np.stack([c for c, _ in data.map(crop).as_numpy_iterator()])
                assert crops.dtype == np.uint8
                np.testing.assert_array_equal(crops, expected)
        mapped_kinds.add(policy.kind)


def test_random_policies_images_and_boxes_match() -> None:
    """Images of differing sizes in one padded batch, ragged batch and one by one."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        sizes = rng.integers(8, 100, size=(4, 2))
        images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in sizes]
        low, high = rng.uniform(0, 0.5, (4, 2)), rng.uniform(0.5, 1, (4, 2))
        boxes = np.concatenate([low, high], axis=1) * np.tile(sizes[:, ::-1], 2)
        policy = CropPolicy(
            kind=str(rng.choice(list(KINDS))),
            size=[int(v) for v in rng.integers(8, 60, size=2)],
            border=str(rng.choice(["shift", "pad"])),
            fit=str(rng.choice(["stretch", "letterbox"])),
            interpolation=str(rng.choice(["bilinear", "nearest"])),
            fraction=rng.uniform(0.05, 1),
            context=rng.uniform(-0.25, 2),
            jitter=rng.uniform(0, 0.5),
            aspect_ratio=float(np.exp(rng.uniform(np.log(0.25), np.log(4)))),
            min_object_covered=rng.uniform(0, 1),
            box_noise=float(rng.choice([0.0, rng.uniform(0, 0.5)])),
        )
        training, seed, epoch = bool(rng.integers(2)), int(rng.integers(100)), int(rng.integers(5))
        expected = _numpy_crops(policy, images, boxes, training, seed, epoch)
        canvas, true_sizes = _padded(images)
        padded = crop_graph.crop_batch(
            policy, canvas, boxes, true_sizes, training=training, seed=seed, epoch=epoch
        )
        assert _max_difference(padded, expected) == 0, policy
        pixels = np.concatenate([image.reshape(-1, 3) for image in images])
        widths = np.repeat(sizes[:, 1], sizes[:, 0])
        ragged = tf.RaggedTensor.from_nested_row_lengths(pixels, [sizes[:, 0], widths])
        by_ragged = crop_graph.crop_batch(
            policy, ragged, boxes, training=training, seed=seed, epoch=epoch
        )
        np.testing.assert_array_equal(by_ragged, padded)
        # normalized [y_min, x_min, y_max, x_max] boxes name the same windows
        relative = pixels_to_normalized(boxes, sizes)
        by_relative = crop_graph.crop_batch(
            policy, canvas, relative, true_sizes, "rel_yxyx", training, seed, epoch
        )
        assert _max_difference(by_relative, expected) <= 1, policy
        # the search's own call on the whole list (one zero-padded canvas): within 1 level
        together = apply_policy(policy, images, boxes, training, seed, epoch)
        if policy.interpolation == "bilinear":
            assert _max_difference(padded, together) <= 1, policy


def test_crop_samples_parity_for_a_split_in_tf_data() -> None:
    """``crop_samples`` of a split (train mode keyed by sample index) against the map over
    ``enumerate()``, unbatched and batched, with true sizes, and the epoch a variable."""
    rng = np.random.default_rng(2)
    n = 10
    canvas = rng.integers(0, 256, size=(n, 64, 72, 3), dtype=np.uint8)
    sizes = np.tile([[64, 72]], (n, 1))
    boxes = np.tile([[10.0, 8.0, 50.0, 40.0]], (n, 1)) + rng.uniform(-5, 5, (n, 4))
    samples = Samples(canvas, sizes, boxes, np.arange(n) % 3)
    policy = CropPolicy(kind="object_random", fraction=0.3, context=0.2, size=32, box_noise=0.1)
    epoch = tf.Variable(0, dtype=tf.int64)
    crop = policy.tf_map(training=True, seed=5, epoch=epoch)
    elements = tf.data.Dataset.from_tensor_slices((canvas, boxes, samples.labels, sizes))
    for value in (0, 2):
        epoch.assign(value)
        expected = crop_samples(policy, samples, training=True, seed=5, epoch=value)
        single = np.stack([c for c, _ in elements.enumerate().map(crop).as_numpy_iterator()])
        batched = elements.enumerate().batch(4).map(crop)
        in_batches = np.concatenate([c for c, _ in batched.as_numpy_iterator()])
        np.testing.assert_array_equal(single, expected)
        np.testing.assert_array_equal(in_batches, expected)
    labels = np.concatenate([label for _, label in batched.as_numpy_iterator()])
    np.testing.assert_array_equal(labels, samples.labels)


def test_map_over_images_of_differing_sizes_single_and_ragged_batches() -> None:
    rng = np.random.default_rng(5)
    sizes = [(30, 50), (64, 40), (45, 45), (20, 90), (70, 33)]
    images = [rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8) for hw in sizes]
    boxes = np.array([[w * 0.2, h * 0.1, w * 0.7, h * 0.8] for h, w in sizes])
    policy = CropPolicy(kind="object_random", context=0.3, fraction=0.2, size=(20, 28))
    expected = _numpy_crops(policy, images, boxes, True, 3, 1)

    def samples() -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        yield from zip(images, boxes, range(len(images)), strict=True)

    signature = (
        tf.TensorSpec((None, None, 3), tf.uint8),
        tf.TensorSpec((4,), tf.float64),
        tf.TensorSpec((), tf.int32),
    )
    data = tf.data.Dataset.from_generator(samples, output_signature=signature).enumerate()
    crop = policy.tf_map(training=True, seed=3, epoch=1)
    single = np.stack([c for c, _ in data.map(crop).as_numpy_iterator()])
    ragged = np.concatenate([c for c, _ in data.ragged_batch(2).map(crop).as_numpy_iterator()])
    np.testing.assert_array_equal(single, expected)
    np.testing.assert_array_equal(ragged, expected)


def test_map_in_train_mode_needs_sample_indices() -> None:
    crop = CropPolicy(kind="random", fraction=0.5).tf_map(training=True)
    data = tf.data.Dataset.from_tensor_slices(
        (np.zeros((2, 20, 20, 3), np.uint8), [[0.0] * 4] * 2, [0, 1])
    )
    with pytest.raises(ValueError, match=r"dataset\.enumerate\(\)"):
        data.map(crop)
    with pytest.raises(ValueError, match="box_format 'yxyx' must be one of xyxy, rel_yxyx"):
        CropPolicy().tf_map(box_format="yxyx")  # type: ignore[arg-type]


def _crop_model(policy: CropPolicy, **layer_args: Any) -> keras.Model:
    images = keras.Input((None, None, 3), dtype="uint8", name="images")
    boxes = keras.Input((4,), name="boxes")
    crops = policy.as_layer(**layer_args, name="crop")(images, boxes)
    x = keras.layers.Rescaling(1 / 255)(crops)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model([images, boxes], keras.layers.Dense(3, activation="softmax")(x))


def test_layer_in_a_model_saves_and_loads(tmp_path: Path) -> None:
    policy = CropPolicy(kind="object", context=0.25, size=24, jitter=0.2, border="pad")
    model = _crop_model(policy, box_format="rel_yxyx", train_crops=True, seed=4)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(6, 50, 70, 3), dtype=np.uint8)
    boxes = np.tile([[0.2, 0.1, 0.7, 0.5]], (6, 1)).astype(np.float32)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(
        loaded.predict([images, boxes], verbose=0), model.predict([images, boxes], verbose=0)
    )
    layer = loaded.get_layer("crop")
    assert isinstance(layer, crop_layer.PolicyCrop)
    assert (layer.policy, layer.box_format, layer.train_crops, layer.seed) == (
        policy,
        "rel_yxyx",
        True,
        4,
    )
    # inference cuts eval windows, whatever train_crops says
    crops = keras.Model(loaded.inputs, layer.output).predict([images, boxes], verbose=0)
    pixels = np.tile([[7.0, 10.0, 35.0, 35.0]], (6, 1))
    # float32 boxes (the model's input) scale to pixels up to an ulp off: a tie may round
    # the other way
    assert _max_difference(crops, policy.apply(images, pixels)) <= 1


def test_layer_trains_on_the_search_train_crops() -> None:
    """In ``fit`` the layer cuts train windows keyed by (seed, epoch, position in the epoch):
    with ``shuffle=False`` and :class:`EpochKeys` those of ``crop_samples`` for that epoch."""
    policy = CropPolicy(kind="random_resized", fraction=0.3, size=16)
    model = _crop_model(policy, train_crops=True, seed=2)
    rng = np.random.default_rng(4)
    n = 12
    images = rng.integers(0, 256, size=(n, 40, 40, 3), dtype=np.uint8)
    boxes = np.zeros((n, 4), np.float32)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(
        [images, boxes], np.arange(n) % 3, batch_size=5, epochs=2, shuffle=False,
        callbacks=[crop_layer.EpochKeys()], verbose=0,
    )  # fmt: skip
    layer = model.get_layer("crop")
    assert (int(layer.epoch.numpy()), int(layer.position.numpy())) == (1, n)
    # the same steps by hand: batches of 5 in order, epoch 1
    samples = Samples(images, np.tile([[40, 40]], (n, 1)), boxes, np.zeros(n, int))
    layer.position.assign(0)
    seen = np.concatenate(
        [layer(images[i : i + 5], boxes[i : i + 5], training=True) for i in range(0, n, 5)]
    )
    np.testing.assert_array_equal(seen, crop_samples(policy, samples, True, seed=2, epoch=1))
    assert not np.array_equal(seen, crop_samples(policy, samples, True, seed=2, epoch=0))
