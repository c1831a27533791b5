"""The in-memory dataset every trial reads: decoded once, split, fingerprinted."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np


class DataError(ValueError):
    """A dataset-level fault: the data cannot be used at all (the CLI exits with code 2)."""


@dataclass(frozen=True)
class Samples:
    """One split: images on a zero-padded canvas with their true sizes, boxes and labels.

    Attributes:
        images: uint8 (N, H, W, 3); image i occupies ``images[i, :h_i, :w_i]``.
        sizes: int (N, 2), each image's true (height, width).
        boxes: float (N, 4), the object box in pixels ``(x_min, y_min, x_max, y_max)``.
        labels: int (N,), indices into the dataset's ``class_names``.
        has_boxes: False for box-free data (an image folder): each box is then the whole
            image, so every kind that needs no object box works unchanged.
        image: int (N,), each sample's row in the dataset's :class:`ImageTable` (None for
            generated data, whose samples come from no file).
        annotated: the annotated boxes when ``boxes`` are others, those a policy is scored
            with (a detector's; NaN rows: no box); None when ``boxes`` are the annotations.
    """

    images: np.ndarray
    sizes: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    has_boxes: bool = True
    image: np.ndarray | None = None
    annotated: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if not (len(self.sizes) == len(self.boxes) == len(self.labels) == n):
            raise ValueError("images, sizes, boxes and labels must have the same length")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray | slice) -> Samples:
        """The samples at ``index`` (a copy-free view where numpy allows)."""
        return Samples(
            self.images[index],
            self.sizes[index],
            self.boxes[index],
            self.labels[index],
            self.has_boxes,
            None if self.image is None else self.image[index],
            None if self.annotated is None else self.annotated[index],
        )

    @property
    def annotated_boxes(self) -> np.ndarray:
        """The annotated boxes, whatever boxes the samples are scored with."""
        return self.boxes if self.annotated is None else self.annotated

    @property
    def missing_boxes(self) -> np.ndarray:
        """bool (N,): samples with no box at inference (a detector's miss, or none)."""
        return ~np.isfinite(self.boxes).all(axis=1)


@dataclass(frozen=True)
class ImageTable:
    """Where the decoded images came from, so boxes given for the files can be placed.

    Attributes:
        names: each image's name as its annotations give it (a path relative to the dataset
            root, or the name a format stores with an embedded image).
        frames: int (M, 3): the file's stored width and height, and the EXIF orientation
            applied when it was decoded (1 = none).
    """

    names: tuple[str, ...]
    frames: np.ndarray


@dataclass
class DataReport:
    """What loading kept and skipped: per-sample faults are counted by reason, never silent.

    Attributes:
        skipped: samples skipped, by reason (a closed set of short phrases, e.g. "missing file").
        clipped_boxes: boxes partly outside their image, clipped to it and kept.
        examples: up to ``EXAMPLES`` places (file, ``file:line``) per skip reason.
        notes: how the data was read: splits used, resolution, cache use.
    """

    EXAMPLES: ClassVar[int] = 3

    skipped: Counter[str] = field(default_factory=Counter)
    clipped_boxes: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, count: int = 1, where: str | None = None) -> None:
        """Count ``count`` samples skipped for ``reason``, remembering a few places ``where``."""
        self.skipped[reason] += count
        if where is not None:
            places = self.examples.setdefault(reason, [])
            if len(places) < self.EXAMPLES:
                places.append(where)

    @property
    def n_skipped(self) -> int:
        """Samples skipped in all."""
        return sum(self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (stored with the decode cache)."""
        return {
            "skipped": dict(self.skipped),
            "clipped_boxes": self.clipped_boxes,
            "examples": self.examples,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataReport:
        """Inverse of :meth:`to_dict`."""
        return cls(
            Counter(data.get("skipped", {})),
            int(data.get("clipped_boxes", 0)),
            {k: list(v) for k, v in data.get("examples", {}).items()},
            list(data.get("notes", [])),
        )


@dataclass(frozen=True)
class Dataset:
    """Train/val/test splits of one dataset plus what describes it."""

    spec: str
    class_names: tuple[str, ...]
    train: Samples
    val: Samples
    test: Samples
    report: DataReport = field(default_factory=DataReport)
    #: The source images of file-based data (None for generated data).
    images: ImageTable | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def has_boxes(self) -> bool:
        """Whether samples carry object boxes; box-free samples hold their whole image's box."""
        return self.train.has_boxes

    @cached_property
    def fingerprint(self) -> str:
        """Short content hash of all splits: equal data gives an equal fingerprint."""
        digest = hashlib.sha256()
        for split in (self.train, self.val, self.test):
            for array in (split.images, split.sizes, split.boxes, split.labels):
                digest.update(np.ascontiguousarray(array).tobytes())
        digest.update("\n".join(self.class_names).encode())
        if not self.has_boxes:
            digest.update(b"\0no boxes")
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, dict[str, int]]:
        """Samples per class for each split."""
        return {
            name: {
                self.class_names[label]: int(count)
                for label, count in zip(*np.unique(split.labels, return_counts=True), strict=True)
            }
            for name, split in (("train", self.train), ("val", self.val), ("test", self.test))
        }
