"""A decoded dataset before padding, the memory limit, and assembly into :class:`Dataset`.

Every loader ends the same way: it produces a :class:`Decoded` (each kept image once, unpadded,
plus per split which image, box and label each sample has), which the decode cache stores as
is, and :func:`assemble` pads it into the per-sample canvases :class:`Samples` holds.

Memory limit: the canvases hold ``samples x H x W x 3`` bytes, where ``H x W`` is the largest
image at the working resolution (every image is zero-padded to it). Loaders estimate this
before decoding anything and raise :class:`DataError` past the limit: the ``max_memory=GIB``
option, else the ``CROPSEARCH_MAX_MEMORY`` environment variable (GiB), else 4 GiB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from search.data.dataset import DataError, DataReport, Dataset, ImageTable, Samples
from search.data.specs import DataSpec, option
from search.data.splits import SPLITS

MEMORY_ENV = "CROPSEARCH_MAX_MEMORY"
DEFAULT_MEMORY_GIB = 4.0
GIB = 1024**3


@dataclass(frozen=True)
class SplitIndex:
    """One split's samples: the image each uses, its box and its label."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.image)


@dataclass(frozen=True)
class Decoded:
    """Each kept image once plus what points at it.

    Attributes:
        class_names: names of the label indices.
        pixels: uint8 1-D, image ``j`` (``sizes[j]`` = (h, w)) stored row-major as h*w*3 bytes,
            images back to back.
        sizes: int (M, 2) image (height, width) at the working resolution.
        splits: ``{"train": SplitIndex, "val": ..., "test": ...}``.
        report: what loading kept and skipped.
        has_boxes: False for box-free data, whose boxes are the whole images.
        images: where each image came from (None for generated data).
    """

    class_names: tuple[str, ...]
    pixels: np.ndarray
    sizes: np.ndarray
    splits: dict[str, SplitIndex]
    report: DataReport
    has_boxes: bool = True
    images: ImageTable | None = None

    @classmethod
    def from_images(
        cls,
        class_names: tuple[str, ...],
        images: list[np.ndarray],
        splits: dict[str, SplitIndex],
        report: DataReport,
        has_boxes: bool = True,
        table: ImageTable | None = None,
    ) -> Decoded:
        """Build from a list of (h, w, 3) uint8 images."""
        sizes = np.array([image.shape[:2] for image in images], dtype=np.int64).reshape(-1, 2)
        flat = [image.reshape(-1) for image in images]
        pixels = np.concatenate(flat) if flat else np.zeros(0, dtype=np.uint8)
        return cls(class_names, pixels, sizes, splits, report, has_boxes, table)

    @property
    def n_samples(self) -> int:
        """Samples over all splits."""
        return sum(len(split) for split in self.splits.values())

    def canvas_shape(self) -> tuple[int, int]:
        """(height, width) every image is padded to."""
        if len(self.sizes) == 0:
            return 0, 0
        height, width = self.sizes.max(axis=0)
        return int(height), int(width)


def memory_limit(spec: DataSpec) -> float:
    """The canvas memory limit in bytes: option ``max_memory``, env, or the default (GiB)."""
    from_env = os.environ.get(MEMORY_ENV)
    default = DEFAULT_MEMORY_GIB
    if from_env:
        try:
            default = float(from_env)
        except ValueError:
            raise DataError(f"{MEMORY_ENV}={from_env!r} is not a number of GiB") from None
        if not default > 0:
            raise DataError(f"{MEMORY_ENV}={from_env!r} must be a positive number of GiB")
    gib = option(spec, "max_memory", default, float, low=1e-6)
    return float(gib) * GIB


def check_memory(spec: DataSpec, n_samples: int, height: int, width: int, hint: str) -> None:
    """Raise :class:`DataError` when ``n_samples`` canvases of ``height`` x ``width`` x 3 bytes
    would exceed the limit; ``hint`` says which options shrink the data."""
    need = n_samples * height * width * 3
    limit = memory_limit(spec)
    if need > limit:
        raise DataError(
            f"{spec}: the decoded canvases would need {need / GIB:.3g} GiB ({n_samples} samples "
            f"x {height}x{width}x3 bytes), over the {limit / GIB:.3g} GiB limit; {hint}, or raise "
            f"max_memory= (or {MEMORY_ENV})"
        )


def assemble(spec: DataSpec, decoded: Decoded, hint: str) -> Dataset:
    """Pad the decoded images into per-sample canvases and build the :class:`Dataset`."""
    height, width = decoded.canvas_shape()
    check_memory(spec, decoded.n_samples, height, width, hint)
    sizes = decoded.sizes
    ends = np.cumsum(sizes[:, 0] * sizes[:, 1] * 3)
    starts = ends - sizes[:, 0] * sizes[:, 1] * 3
    uniform = bool(len(sizes)) and bool((sizes == (height, width)).all())
    stack = decoded.pixels.reshape(-1, height, width, 3) if uniform else None
    splits = []
    for name in SPLITS:
        split = decoded.splits[name]
        index = np.asarray(split.image, dtype=np.int64)
        if stack is not None:
            images = _take(stack, index)
        else:
            images = np.zeros((len(index), height, width, 3), dtype=np.uint8)
            for row, j in enumerate(index):
                h, w = sizes[j]
                images[row, :h, :w] = decoded.pixels[starts[j] : ends[j]].reshape(h, w, 3)
        splits.append(
            Samples(
                images,
                sizes[index].reshape(-1, 2),
                np.asarray(split.boxes, dtype=np.float64).reshape(-1, 4),
                np.asarray(split.labels, dtype=np.int64),
                decoded.has_boxes,
                None if decoded.images is None else index,
            )
        )
    train, val, test = splits
    return Dataset(str(spec), decoded.class_names, train, val, test, decoded.report, decoded.images)


def _take(stack: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``stack[index]``, as a view when ``index`` is a contiguous ascending run."""
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return stack[index[0] : index[0] + len(index)]
    return stack[index] if len(index) else stack[:0].copy()
