"""Cluttered MNIST: the construction, the IDX reader, and the real files when present."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from search.data import DataError, Dataset, Samples, load_dataset
from search.data.mnist import clutter, read_idx

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def write_idx(path: Path, array: np.ndarray) -> Path:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as file:
            file.write(data)
    else:
        path.write_bytes(data)
    return path


def fake_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 'digits': a random block of ink each; labels cycle 0..9."""
    rng = np.random.default_rng(seed)
    digits = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        y0, x0 = rng.integers(0, 14, size=2)
        h, w = rng.integers(6, 14, size=2)
        digits[i, y0 : y0 + h, x0 : x0 + w] = rng.integers(1, 256, size=(h, w))
    return digits, (np.arange(n) % 10).astype(np.uint8)


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    root = tmp_path / "mnist"
    root.mkdir()
    train, train_labels = fake_digits(300, 0)
    test, test_labels = fake_digits(100, 1)
    write_idx(root / "train-images-idx3-ubyte.gz", train)
    write_idx(root / "train-labels-idx1-ubyte.gz", train_labels)
    write_idx(root / "t10k-images-idx3-ubyte", test)  # raw files work too
    write_idx(root / "t10k-labels-idx1-ubyte", test_labels)
    return root


def ink_boxes(digits: np.ndarray) -> np.ndarray:
    rows, cols = np.asarray(digits.any(axis=2)), np.asarray(digits.any(axis=1))
    y0, x0 = rows.argmax(1), cols.argmax(1)
    y1 = digits.shape[1] - rows[:, ::-1].argmax(1)
    x1 = digits.shape[2] - cols[:, ::-1].argmax(1)
    return np.stack([x0, y0, x1, y1], axis=1)


def assert_boxes_hold_ink(samples: Samples, side: int = 28) -> None:
    """Every box lies in its canvas, is at most a digit in size, and has ink on all four edges."""
    for image, box in zip(samples.images, samples.boxes, strict=True):
        x0, y0, x1, y1 = (int(v) for v in box)
        assert box.tolist() == [x0, y0, x1, y1]
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
        assert x1 - x0 <= side and y1 - y0 <= side
        region = image[y0:y1, x0:x1, 0]
        assert region[0].max() > 0 and region[-1].max() > 0
        assert region[:, 0].max() > 0 and region[:, -1].max() > 0


def test_clutter_pastes_the_digit_intact_inside_its_box() -> None:
    digits, _ = fake_digits(50, 2)
    canvases, boxes = clutter(digits, np.random.default_rng(0), canvas=60, distractors=6)
    assert canvases.shape == (50, 60, 60) and canvases.dtype == np.uint8
    own = ink_boxes(digits)
    for canvas, box, digit, (dx0, dy0, dx1, dy1) in zip(canvases, boxes, digits, own, strict=True):
        x0, y0, x1, y1 = (int(v) for v in box)
        assert (x1 - x0, y1 - y0) == (dx1 - dx0, dy1 - dy0)
        crop, ink = canvas[y0:y1, x0:x1], digit[dy0:dy1, dx0:dx1]
        assert (crop[ink > 0] >= ink[ink > 0]).all()  # brighter-wins pasting keeps the digit
    assert (canvases > 0).sum() > (digits > 0).sum()  # the distractors added ink


def test_clutter_without_distractors_is_just_the_digit() -> None:
    digits, _ = fake_digits(5, 3)
    canvases, _ = clutter(digits, np.random.default_rng(0), canvas=40, distractors=0)
    assert [int((c > 0).sum()) for c in canvases] == [int((d > 0).sum()) for d in digits]


def test_fake_mnist_loads_with_counts_and_stratified_labels(fake_mnist: Path) -> None:
    data = load_dataset(f"mnist:{fake_mnist},train=100,val=50,test=30,canvas=48")
    assert (len(data.train), len(data.val), len(data.test)) == (100, 50, 30)
    assert data.class_names == tuple(str(d) for d in range(10))
    assert data.train.images.shape == (100, 48, 48, 3)
    assert (data.train.sizes == 48).all()
    assert np.bincount(data.train.labels).tolist() == [10] * 10
    assert np.bincount(data.val.labels).tolist() == [5] * 10
    assert np.bincount(data.test.labels).tolist() == [3] * 10
    for split in (data.train, data.val, data.test):
        assert_boxes_hold_ink(split)
        assert np.array_equal(split.images[..., 0], split.images[..., 2])  # gray as RGB


def test_defaults_take_every_digit(fake_mnist: Path) -> None:
    data = load_dataset(f"mnist:{fake_mnist},val=40")
    assert (len(data.train), len(data.val), len(data.test)) == (260, 40, 100)


def test_same_seed_same_data_and_cache(fake_mnist: Path, cache_folder: Path) -> None:
    spec = f"mnist:{fake_mnist},train=60,val=20,test=20"
    first = load_dataset(spec)
    assert len(list(cache_folder.glob("mnist-*.npz"))) == 1
    again = load_dataset(spec)
    assert again.report.notes[-1].startswith("cache: loaded")
    assert again.fingerprint == first.fingerprint
    fresh = load_dataset(spec + ",cache=0")
    assert fresh.fingerprint == first.fingerprint
    assert load_dataset(spec + ",seed=1").fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", r"missing t10k-labels-idx1-ubyte\[\.gz\]"),
        ("truncated", r"t10k-images-idx3-ubyte: truncated \(header promises 78400 data bytes"),
        ("magic", r"t10k-images-idx3-ubyte: not an IDX file"),
        ("count", r"t10k-labels-idx1-ubyte: 99 labels for 100 images"),
        ("gzip", r"train-labels-idx1-ubyte\.gz: cannot read"),
    ],
)
def test_broken_idx_files_are_data_errors(fake_mnist: Path, damage: str, message: str) -> None:
    images = fake_mnist / "t10k-images-idx3-ubyte"
    if damage == "missing":
        (fake_mnist / "t10k-labels-idx1-ubyte").unlink()
    elif damage == "truncated":
        images.write_bytes(images.read_bytes()[:5000])
    elif damage == "magic":
        images.write_bytes(b"\x12\x34" + images.read_bytes()[2:])
    elif damage == "count":
        write_idx(fake_mnist / "t10k-labels-idx1-ubyte", np.zeros(99, dtype=np.uint8))
    elif damage == "gzip":
        labels = fake_mnist / "train-labels-idx1-ubyte.gz"
        labels.write_bytes(labels.read_bytes()[:30])
    with pytest.raises(DataError, match=message):
        load_dataset(f"mnist:{fake_mnist},train=10,val=10,test=10")


def test_too_many_canvases_and_bad_options(fake_mnist: Path) -> None:
    with pytest.raises(DataError, match=r"train=290 \+ val=20 canvases need 310 training digits"):
        load_dataset(f"mnist:{fake_mnist},train=290,val=20")
    with pytest.raises(DataError, match=r"test=101 canvases need 101 test digits"):
        load_dataset(f"mnist:{fake_mnist},val=10,test=101")
    with pytest.raises(
        DataError, match=r"val=5000 canvases leave no training digit \(the file has 300\)"
    ):
        load_dataset(f"mnist:{fake_mnist}")
    with pytest.raises(DataError, match="canvas=20 is smaller than the digits"):
        load_dataset(f"mnist:{fake_mnist},val=10,canvas=20")
    with pytest.raises(DataError, match=r"option val=0 is outside \[1, inf\]"):
        load_dataset(f"mnist:{fake_mnist},val=0")
    with pytest.raises(DataError, match=r"unknown option\(s\) classes for format 'mnist'"):
        load_dataset(f"mnist:{fake_mnist},classes=1|2")
    with pytest.raises(DataError, match="nowhere: no such folder"):
        load_dataset(f"mnist:{fake_mnist / 'nowhere'}")
    with pytest.raises(DataError, match=r"\(400 samples x 60x60x3 bytes\), over the 0\.001 GiB"):
        load_dataset(f"mnist:{fake_mnist},val=10,max_memory=0.001")


def test_read_idx_reads_headers(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "x.gz", array), 3), array)
    with pytest.raises(DataError, match="IDX with 3 dimensions, expected 1"):
        read_idx(tmp_path / "x.gz", 1)


# -- the real files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_mnist() -> Path:
    if not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {MNIST_DIR}")
    return MNIST_DIR


def matching_labels(
    canvas: np.ndarray, box: np.ndarray, digits: np.ndarray, boxes: np.ndarray, labels: np.ndarray
) -> set[int]:
    """Labels of the source digits whose ink sits, pixel for pixel, inside ``box`` on ``canvas``."""
    x0, y0, x1, y1 = (int(v) for v in box)
    same = np.flatnonzero(
        ((boxes[:, 2] - boxes[:, 0]) == x1 - x0) & ((boxes[:, 3] - boxes[:, 1]) == y1 - y0)
    )
    crop = canvas[y0:y1, x0:x1]
    found = set()
    for j in same:
        dx0, dy0, dx1, dy1 = boxes[j]
        ink = digits[j, dy0:dy1, dx0:dx1]
        if (crop[ink > 0] >= ink[ink > 0]).all():
            found.add(int(labels[j]))
    return found


def test_real_mnist_cluttered_benchmark(real_mnist: Path) -> None:
    data: Dataset = load_dataset(f"mnist:{real_mnist},train=500,test=200")
    assert (len(data.train), len(data.val), len(data.test)) == (500, 5000, 200)
    assert data.class_names == tuple(str(d) for d in range(10))
    for split in (data.train, data.val, data.test):
        assert split.images.shape[1:] == (60, 60, 3) and split.images.dtype == np.uint8
        assert set(np.unique(split.labels)) == set(range(10))
        assert_boxes_hold_ink(split)
    # the labels are the IDX labels of the digits actually pasted
    for split, prefix in ((data.test, "t10k"), (data.train, "train")):
        digits = read_idx(real_mnist / f"{prefix}-images-idx3-ubyte.gz", 3)
        labels = read_idx(real_mnist / f"{prefix}-labels-idx1-ubyte.gz", 1)
        if prefix == "train":
            assert labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # as the README says
        boxes = ink_boxes(digits)
        for i in range(25):
            found = matching_labels(split.images[i, :, :, 0], split.boxes[i], digits, boxes, labels)
            assert found == {int(split.labels[i])}
