"""Crop throughput: batched crops against the per-image loop, and against training speed.

Measures, on the same images and boxes in one run (absolute speeds swing ~2x on shared
machines, so read the ratios):

- ``policy.apply``: numpy uint8 images in, uint8 crops out (the public API);
- ``windows + cut``: the trainer's path, ``search.crop.cut.cut`` on a resident ``tf`` canvas;
- ``in-graph``: the same crops cut by ``search.crop.graph.crop_batch`` (traced once, 256 crops
  per call) on the same canvas: the path training would take with one geometry (the pixels
  that differ from the trainer's are counted);
- the common per-image loop, ``tf.image.crop_to_bounding_box`` + ``tf.image.resize`` per
  image (on numpy images, and on slices of the resident canvas);
- training images/s of the default compact CNN (``build_model((s, s, 3), 6)``, batch 64) at
  each output size, so crops/s can be compared with what training consumes.

The issue's bar: batched crops >= 10x the per-image loop and >= 10x training images/s.

Usage::

    .venv/bin/python benchmarks/crop_throughput.py --n 2000 --size 48 96 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from importlib import metadata

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from search.crop.cut import cut
from search.crop.graph import crop_batch
from search.crop.policy import CropPolicy

SOURCE = 256
BAR = 10.0


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noise images SOURCE x SOURCE and one box each (side 24..128 px) inside them."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, SOURCE, SOURCE, 3), dtype=np.uint8)
    side = rng.uniform(24, 128, size=(n, 2))
    x0 = rng.uniform(0, SOURCE - side[:, 0])
    y0 = rng.uniform(0, SOURCE - side[:, 1])
    boxes = np.stack([x0, y0, x0 + side[:, 0], y0 + side[:, 1]], axis=1)
    return images, boxes


def loop_crops(images: np.ndarray | tf.Tensor, windows: np.ndarray, size: int) -> np.ndarray:
    """The tutorial pattern: one ``crop_to_bounding_box`` + ``resize`` per image."""
    height, width = int(images.shape[1]), int(images.shape[2])
    x0 = np.clip(np.floor(windows[:, 0]), 0, width - 1).astype(int)
    y0 = np.clip(np.floor(windows[:, 1]), 0, height - 1).astype(int)
    x1 = np.clip(np.ceil(windows[:, 2]), x0 + 1, width).astype(int)
    y1 = np.clip(np.ceil(windows[:, 3]), y0 + 1, height).astype(int)
    crops = []
    for i in range(len(windows)):
        crop = tf.image.crop_to_bounding_box(images[i], y0[i], x0[i], y1[i] - y0[i], x1[i] - x0[i])
        crops.append(tf.image.resize(crop, (size, size)))
    return tf.cast(tf.round(tf.clip_by_value(tf.stack(crops), 0, 255)), tf.uint8).numpy()


def in_graph_crops(
    policy: CropPolicy, canvas: tf.Tensor, boxes: np.ndarray
) -> Callable[[], object]:
    """Train-mode crops of ``policy`` by the in-graph path, traced once, 256 per call."""
    crop = tf.function(
        lambda images, boxes, ids: tf.cast(
            crop_batch(policy, images, boxes, training=True, seed=0, epoch=0, indices=ids),
            tf.uint8,
        ),
        input_signature=[
            tf.TensorSpec([None, *canvas.shape[1:]], tf.uint8),
            tf.TensorSpec([None, 4], tf.float64),
            tf.TensorSpec([None], tf.int64),
        ],
    )
    ids = np.arange(len(boxes), dtype=np.int64)

    def run() -> object:
        parts = [
            crop(canvas[i : i + 256], boxes[i : i + 256], ids[i : i + 256]).numpy()
            for i in range(0, len(boxes), 256)
        ]
        return np.concatenate(parts)

    return run


def best_rate(function: Callable[[], object], items: int, repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` runs, after one warm-up run."""
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return items / best


class _EpochTimer:
    """Keras callback recording each epoch's wall time."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def callback(self) -> object:
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
                timer._start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: object = None) -> None:
                timer.times.append(time.perf_counter() - timer._start)

        return Callback()


def training_rate(size: int, n: int, epochs: int) -> float:
    """Training images/s of the default model at ``size`` on random data (last epoch)."""
    import keras

    from search.training.model import build_model

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, 6, size=n)
    model = build_model((size, size, 3), 6)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _EpochTimer()
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, callbacks=[timer.callback()])
    return n / timer.times[-1]


def machine() -> str:
    """One line naming the machine and the versions that matter."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for name in ("numpy", "tensorflow-cpu", "tensorflow", "keras"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{platform.node()} {platform.machine()}, nproc {cores}, load {load}; "
        f"python {platform.python_version()}, {', '.join(versions)}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table of rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="images (and crops) per run")
    parser.add_argument("--size", type=int, nargs="+", default=[48, 96], help="output sides")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path (best kept)")
    parser.add_argument("--train-n", type=int, default=2048, help="images per training epoch")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (last one timed)")
    parser.add_argument("--no-train", action="store_true", help="skip the training comparison")
    parser.add_argument(
        "--border",
        choices=["shift", "pad"],
        default="shift",
        help="border of the object policy (pad: windows may leave the image)",
    )
    parser.add_argument("--context", type=float, default=0.25, help="context of the policy")
    args = parser.parse_args(argv)

    print("command:", shlex.join([sys.executable, *sys.argv]))
    print("machine:", machine())
    images, boxes = make_data(args.n)
    canvas = tf.convert_to_tensor(images)
    index = np.arange(args.n)
    print(f"data: {args.n} images {SOURCE}x{SOURCE} (noise), one box each; repeats {args.repeats}")

    failures = 0
    for size in args.size:
        policy = CropPolicy(
            kind="object", context=args.context, jitter=0.1, size=size, border=args.border
        )
        windows = policy.windows(images.shape[1:3] * np.ones((args.n, 1)), boxes, True, 0, 0)

        def batched_apply(policy: CropPolicy = policy) -> object:
            return policy.apply(images, boxes, training=True, seed=0)

        def trainer_path(policy: CropPolicy = policy) -> object:
            found = policy.windows(images.shape[1:3] * np.ones((args.n, 1)), boxes, True, 0, 0)
            return cut(canvas, found, index, policy.size, policy.fit, policy.interpolation)

        def loop_numpy(size: int = size, windows: np.ndarray = windows) -> object:
            return loop_crops(images, windows, size)

        def loop_tensor(size: int = size, windows: np.ndarray = windows) -> object:
            return loop_crops(canvas, windows, size)

        in_graph = in_graph_crops(policy, canvas, boxes)
        differ = np.abs(in_graph().astype(int) - np.asarray(trainer_path()).astype(int))
        rates = {
            "policy.apply (numpy in)": best_rate(batched_apply, args.n, args.repeats),
            "windows + cut (tf canvas)": best_rate(trainer_path, args.n, args.repeats),
            "in-graph (tf canvas)": best_rate(in_graph, args.n, args.repeats),
            "per-image loop (numpy in)": best_rate(loop_numpy, args.n, args.repeats),
            "per-image loop (tf canvas)": best_rate(loop_tensor, args.n, args.repeats),
        }
        train = None if args.no_train else training_rate(size, args.train_n, args.epochs)
        # Each batched path is compared with the loop on the same input form.
        pairs = {
            "policy.apply (numpy in)": "per-image loop (numpy in)",
            "windows + cut (tf canvas)": "per-image loop (tf canvas)",
        }
        print(f"\n{SOURCE}x{SOURCE} -> {size}x{size}, {policy.label()}")
        print(f"  {'path':28s} {'crops/s':>9s} {'x loop':>7s} {'x train':>8s}")
        for name, rate in rates.items():
            versus_loop = f"{rate / rates[pairs[name]]:7.1f}" if name in pairs else f"{'-':>7s}"
            versus_train = f"{rate / train:8.1f}" if train else f"{'-':>8s}"
            print(f"  {name:28s} {rate:9.0f} {versus_loop} {versus_train}")
        if train:
            print(f"  {'training (images/s)':28s} {train:9.0f}")
        trainer = rates["windows + cut (tf canvas)"]
        print(
            f"  in-graph / trainer path: {rates['in-graph (tf canvas)'] / trainer:.2f}x; "
            f"{np.count_nonzero(differ)} of {differ.size} pixels differ (max {differ.max()})"
        )
        for name, loop in pairs.items():
            checks = [(loop, rates[name] / rates[loop])]
            if train:
                checks.append(("training", rates[name] / train))
            for what, ratio in checks:
                ok = ratio >= BAR
                failures += not ok
                print(f"  {'ok  ' if ok else 'MISS'} {name} vs {what}: {ratio:.1f}x (bar {BAR:g}x)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
