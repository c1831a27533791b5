"""``mnist:DIR``: cluttered digits built from MNIST-format IDX files (Mnih et al. 2014).

DIR holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
and ``t10k-labels-idx1-ubyte``, each raw or ``.gz`` (the raw file wins when both exist; the
``train-images.idx3-ubyte`` spelling is accepted too). Other MNIST-format files (e.g.
Fashion-MNIST) load the same way; their class names stay the label numbers.

Each canvas (``canvas`` x ``canvas``, black) gets ``distractors`` patches of 8x8 pixels cut at
random positions from other digits of the same split and pasted at random positions, then the
digit itself pasted at a uniformly random position; pasting keeps the brighter pixel, so no
ink of the digit is ever darkened or hidden, though clutter may overlap it.
The box is the tight box of the digit's ink (pixels > 0), in canvas pixel edges
``(x_min, y_min, x_max, y_max)``. Canvases are RGB uint8 (gray repeated).

Options (default in brackets):

- ``val=N`` [5000]: val canvases, a stratified carve-out of the training file's digits;
- ``train=N`` [all the rest: 55,000 with real MNIST]: train canvases from the remaining
  training digits, stratified by label;
- ``test=N`` [all: 10,000]: test canvases from the test file, stratified;
- ``canvas=N`` [60], ``distractors=N`` [4], ``seed=N`` [0];
- ``max_memory=GIB``, ``cache=0``: see :mod:`search.data.decoded` and :mod:`search.data.cache`
  (the full default set, 70,000 canvases of 60x60x3, takes 0.75 GiB).

Class names are the digits ``"0"`` .. ``"9"`` (up to the largest label in the files). A
missing, truncated or malformed IDX file is a :class:`DataError`; a blank digit (no ink) is
skipped (``blank digit``).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from search.data.cache import CacheKey, load_or_build
from search.data.dataset import DataError, DataReport, Dataset
from search.data.decoded import Decoded, SplitIndex, assemble, check_memory
from search.data.specs import DataSpec, check_options, option
from search.data.splits import SPLITS, stratified_pick

OPTIONS = ("train", "val", "test", "canvas", "distractors", "seed", "max_memory", "cache")
PATCH = 8
DEFAULT_VAL = 5000
BLANK = "blank digit"
MEMORY_HINT = "lower train=/val=/test= or canvas="
FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def load_mnist(spec: DataSpec) -> Dataset:
    """Build (or load from the cache) the cluttered benchmark a ``mnist:DIR`` spec names."""
    check_options(spec, OPTIONS)
    root = Path(spec.location or "").expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (--data '{spec}' needs the MNIST IDX files)")
    files = {name: find_file(root, stems) for name, stems in FILES.items()}
    settings = {
        "train": option(spec, "train", None, int, low=1),
        "val": option(spec, "val", DEFAULT_VAL, int, low=1),
        "test": option(spec, "test", None, int, low=1),
        "canvas": option(spec, "canvas", 60, int, low=PATCH, high=4096),
        "distractors": option(spec, "distractors", 4, int, low=0, high=100),
        "seed": option(spec, "seed", 0, int, low=0, high=2**32 - 1),
    }
    key = CacheKey("mnist", settings)
    for path in files.values():
        key.add_file_stat(path.resolve())
    decoded = load_or_build(spec, key, lambda: _build(spec, files, **settings))
    return assemble(spec, decoded, MEMORY_HINT)


def find_file(root: Path, stems: tuple[str, ...]) -> Path:
    """The IDX file of one of ``stems`` in ``root``, raw or gzipped."""
    for stem in stems:
        for name in (stem, f"{stem}.gz"):
            if (root / name).is_file():
                return root / name
    raise DataError(f"{root}: missing {stems[0]}[.gz] (MNIST IDX files expected)")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file (raw or gzipped) with ``ndim`` dimensions."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as file:
                data = file.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"{path}: IDX data type 0x{data[2]:02x}, expected unsigned bytes (0x08)")
    if data[3] != ndim:
        raise DataError(f"{path}: IDX with {data[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(data) - header < size:
        raise DataError(
            f"{path}: truncated (header promises {size} data bytes, file has {len(data) - header})"
        )
    return np.frombuffer(data, dtype=np.uint8, count=size, offset=header).reshape(shape)


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise DataError(
            f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}"
        )
    if images.shape[1] < PATCH or images.shape[2] < PATCH:
        raise DataError(f"{images_path}: digits of {images.shape[1:]} pixels are too small")
    return images, labels


def _build(
    spec: DataSpec,
    files: dict[str, Path],
    train: int | None,
    val: int,
    test: int | None,
    canvas: int,
    distractors: int,
    seed: int,
) -> Decoded:
    report = DataReport()
    train_images, train_labels = _read_pair(files["train_images"], files["train_labels"])
    test_images, test_labels = _read_pair(files["test_images"], files["test_labels"])
    if max(train_images.shape[1:]) > canvas or max(test_images.shape[1:]) > canvas:
        raise DataError(f"--data '{spec}': canvas={canvas} is smaller than the digits")
    pools = {}
    for name, images, path in (
        ("train", train_images, files["train_images"]),
        ("test", test_images, files["test_images"]),
    ):
        inked = np.flatnonzero(images.reshape(len(images), -1).any(axis=1))
        if len(inked) < len(images):
            report.skip(BLANK, len(images) - len(inked), where=path.name)
        pools[name] = inked
    train_pool, test_pool = pools["train"], pools["test"]
    if train is None and val >= len(train_pool):
        raise DataError(
            f"{files['train_images']}: val={val} canvases leave no training digit "
            f"(the file has {len(train_pool)})"
        )
    n_train = len(train_pool) - val if train is None else train
    n_test = len(test_pool) if test is None else test
    if n_train < 1 or n_train + val > len(train_pool):
        raise DataError(
            f"{files['train_images']}: train={n_train} + val={val} canvases need "
            f"{n_train + val} training digits, the file has {len(train_pool)}"
        )
    if n_test > len(test_pool):
        raise DataError(
            f"{files['test_images']}: test={n_test} canvases need {n_test} test digits, the "
            f"file has {len(test_pool)}"
        )
    check_memory(spec, n_train + val + n_test, canvas, canvas, MEMORY_HINT)
    pick = np.random.default_rng([seed, 0])
    val_index = train_pool[stratified_pick(train_labels[train_pool], val, pick)]
    rest = np.setdiff1d(train_pool, val_index)
    train_index = rest[stratified_pick(train_labels[rest], n_train, pick)]
    test_index = test_pool[stratified_pick(test_labels[test_pool], n_test, pick)]
    chosen = {
        "train": (train_images, train_labels, train_index),
        "val": (train_images, train_labels, val_index),
        "test": (test_images, test_labels, test_index),
    }
    total = n_train + val + n_test
    gray = np.empty((total, canvas, canvas), dtype=np.uint8)
    splits = {}
    start = 0
    for number, name in enumerate(SPLITS):
        images, labels, index = chosen[name]
        rng = np.random.default_rng([seed, 1 + number])
        stop = start + len(index)
        gray[start:stop], boxes = clutter(images[index], rng, canvas, distractors)
        splits[name] = SplitIndex(
            np.arange(start, stop, dtype=np.int64), boxes, labels[index].astype(np.int64)
        )
        start = stop
    n_classes = int(max(train_labels.max(initial=0), test_labels.max(initial=0))) + 1
    report.notes.append(
        f"cluttered MNIST: {canvas}x{canvas} canvases, {distractors} distractors of "
        f"{PATCH}x{PATCH}; val carved from the training file, test from the test file (seed {seed})"
    )
    sizes = np.tile(np.array([[canvas, canvas]], dtype=np.int64), (total, 1))
    names = tuple(str(i) for i in range(n_classes))
    rgb = np.stack([gray] * 3, axis=-1)
    return Decoded(names, rgb.reshape(-1), sizes, splits, report)


def clutter(
    digits: np.ndarray, rng: np.random.Generator, canvas: int = 60, distractors: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Paste each digit on a black canvas with ``distractors`` 8x8 patches of *other* digits of
    ``digits``.

    Args:
        digits: uint8 (n, h, w) digit images, each with some ink.
        rng: the random generator (positions and patch sources).
        canvas: canvas side in pixels (>= h, w).
        distractors: patches per canvas.

    Returns:
        (uint8 (n, canvas, canvas) canvases, float (n, 4) ink boxes as pixel edges).
    """
    n, height, width = digits.shape
    out = np.zeros((n, canvas, canvas), dtype=np.uint8)
    if n == 0:
        return out, np.zeros((0, 4))
    rows = np.arange(n)[:, None, None]
    for _ in range(distractors):
        source = (np.arange(n) + _uniform(rng, 1, n, n)) % n if n > 1 else np.zeros(1, int)
        sy, sx = _window(rng, height, n, PATCH), _window(rng, width, n, PATCH)
        ty, tx = _window(rng, canvas, n, PATCH), _window(rng, canvas, n, PATCH)
        pieces = digits[source[:, None, None], sy[:, :, None], sx[:, None, :]]
        target = (rows, ty[:, :, None], tx[:, None, :])
        out[target] = np.maximum(out[target], pieces)
    dy, dx = _uniform(rng, 0, canvas - height + 1, n), _uniform(rng, 0, canvas - width + 1, n)
    ys = dy[:, None] + np.arange(height)[None, :]
    xs = dx[:, None] + np.arange(width)[None, :]
    target = (rows, ys[:, :, None], xs[:, None, :])
    out[target] = np.maximum(out[target], digits)
    ink_rows, ink_cols = np.asarray(digits.any(axis=2)), np.asarray(digits.any(axis=1))
    y0 = ink_rows.argmax(axis=1)
    y1 = height - ink_rows[:, ::-1].argmax(axis=1)
    x0 = ink_cols.argmax(axis=1)
    x1 = width - ink_cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([dx + x0, dy + y0, dx + x1, dy + y1], axis=1).astype(np.float64)
    return out, boxes


def _uniform(rng: np.random.Generator, low: int, high: int, n: int) -> np.ndarray:
    """``n`` integers uniform in ``[low, high)``."""
    return np.asarray(rng.integers(low, high, size=n), dtype=np.int64)


def _window(rng: np.random.Generator, extent: int, n: int, length: int) -> np.ndarray:
    """(n, length) index runs ``start .. start + length - 1``, ``start`` uniform in ``extent``."""
    return _uniform(rng, 0, extent - length + 1, n)[:, None] + np.arange(length)[None, :]
