"""A detector's boxes for a dataset's samples: ``--boxes detections:FILE``.

Two formats, told apart by the file's suffix:

- **COCO results JSON** (``.json``), what every detector's COCO evaluation writes: a list of
  ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``. For ``coco:`` data an entry
  names its image by COCO id (the id's ``file_name`` in the dataset's annotation file); for the
  other formats by a ``file_name`` key holding the image's path as the annotations give it.
- **CSV** (any other suffix): a header ``file,x0,y0,x1,y1,score`` and one row per detection,
  ``file`` the image's path as the annotations give it.

Coordinates are pixels in the image file's stored frame, like the annotations; they follow the
image through EXIF orientation and resizing as the annotated boxes do. ``category_id`` and
``score`` are read but not used: keep only the detections your pipeline keeps (its score
threshold) in the file.

Each sample's box at inference is the detection of its image that overlaps its annotated box
best; detections are given to objects greedily by IoU, one detection per object, so the
objects of one image get their own. A sample left without a detection overlapping its box at
IoU >= :data:`MATCH_IOU` is a **miss**: it has no box (rows of NaN), and the crop falls back to
the full image as with ``--boxes none``.

Rows are skipped and counted, never silently: an image the dataset does not hold, a box wholly
outside its image, a non-positive width or height, non-finite numbers, a malformed row.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.data.dataset import DataError, Dataset, ImageTable, Samples
from search.data.images import place_boxes

#: A detection overlapping the annotated object less than this is not a detection of it.
MATCH_IOU = 0.1
CSV_COLUMNS = ("file", "x0", "y0", "x1", "y1", "score")

UNKNOWN_IMAGE = "unknown image"
OUTSIDE_IMAGE = "box outside the image"
NON_POSITIVE = "non-positive size"
NON_FINITE = "non-finite numbers"
MALFORMED = "malformed row"
#: Skip reasons, in the order the report lists them.
REASONS = (UNKNOWN_IMAGE, OUTSIDE_IMAGE, NON_POSITIVE, NON_FINITE, MALFORMED)


@dataclass(frozen=True)
class Detections:
    """The usable detections of a file, by image row of the dataset's :class:`ImageTable`.

    Attributes:
        path: the file read.
        rows_read: detections in the file (usable or not).
        by_image: for each image row, its detections ``(k, 4)`` in the image's working frame
            (the pixels the samples hold).
        skipped: rows skipped, by reason.
        examples: up to three places per skip reason.
    """

    path: Path
    rows_read: int
    by_image: dict[int, np.ndarray]
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def usable(self) -> int:
        """Detections kept."""
        return sum(len(boxes) for boxes in self.by_image.values())


@dataclass(frozen=True)
class Matched:
    """One split's boxes at inference and how they were found.

    Attributes:
        boxes: float (N, 4) working-frame boxes; a miss is a row of NaN.
        iou: float (N,), each matched box's IoU with the annotated box (NaN for a miss).
    """

    boxes: np.ndarray
    iou: np.ndarray

    @property
    def matched(self) -> int:
        """Samples that got a detection."""
        return int(np.isfinite(self.iou).sum())

    @property
    def misses(self) -> int:
        """Samples left without a box."""
        return len(self.iou) - self.matched

    @property
    def mean_iou(self) -> float | None:
        """Mean IoU of the matched boxes with the annotations (None when none matched)."""
        found = self.iou[np.isfinite(self.iou)]
        return float(found.mean()) if len(found) else None


def load_detections(path: Path, dataset: Dataset, coco_file: Path | None = None) -> Detections:
    """Read the detections at ``path`` for ``dataset`` (``coco_file``: its COCO annotation
    file, whose ``images`` list maps ``image_id`` to ``file_name``).

    Raises:
        DataError: the file cannot be read or is not one of the two formats, or the dataset
            holds no image files (generated data such as ``shapes``).
    """
    if dataset.images is None:
        raise DataError(
            f"detections:{path}: the dataset '{dataset.spec}' is generated, not read from image "
            "files, so no detector's boxes can name its images (use iou:X or none)"
        )
    table = dataset.images
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    reader = _Reader(path, table, _working_sizes(dataset))
    if path.suffix.lower() == ".json":
        ids = _coco_file_names(coco_file) if coco_file is not None else None
        reader.read_json(text, ids)
    else:
        reader.read_csv(text)
    return Detections(path, reader.rows, reader.kept(), reader.skipped, reader.examples)


def match_detections(samples: Samples, detections: Detections) -> Matched:
    """Each sample's detection: greedily by IoU with the annotated boxes, one detection per
    object; misses (no detection at IoU >= :data:`MATCH_IOU`) get NaN rows."""
    boxes = np.full((len(samples), 4), np.nan)
    iou = np.full(len(samples), np.nan)
    if samples.image is None:
        return Matched(boxes, iou)
    for image in np.unique(samples.image):
        found = detections.by_image.get(int(image))
        if found is None or not len(found):
            continue
        rows = np.flatnonzero(samples.image == image)
        overlap = pairwise_iou(samples.annotated_boxes[rows], found)
        while True:
            best = np.unravel_index(np.argmax(overlap), overlap.shape)
            value = overlap[best]
            if not value >= MATCH_IOU:
                break
            row, detection = int(best[0]), int(best[1])
            boxes[rows[row]] = found[detection]
            iou[rows[row]] = value
            overlap[row, :] = -1.0
            overlap[:, detection] = -1.0
    return Matched(boxes, iou)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4): an (n, m) array."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(1, -1, 4)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def report_lines(detections: Detections, splits: dict[str, Matched | None]) -> list[str]:
    """What was read and matched, for the terminal and the ``detections.txt`` artifact."""
    lines = [
        f"detections: {detections.path}: {detections.rows_read} read, {detections.usable} usable, "
        f"{sum(detections.skipped.values())} skipped"
    ]
    for reason in REASONS:
        if detections.skipped[reason]:
            examples = detections.examples.get(reason, [])
            suffix = f"  e.g. {'; '.join(examples)}" if examples else ""
            lines.append(f"  skipped, {reason}: {detections.skipped[reason]}{suffix}")
    for name, matched in splits.items():
        if matched is None:
            lines.append(f"  {name}: not matched (training uses the annotated boxes)")
            continue
        mean = "n/a" if matched.mean_iou is None else f"{matched.mean_iou:.3f}"
        lines.append(
            f"  {name}: {matched.matched} of {len(matched.iou)} samples matched, "
            f"{matched.misses} misses (no box: full image), mean IoU with the annotations {mean}"
        )
    return lines


def _working_sizes(dataset: Dataset) -> dict[int, tuple[int, int]]:
    """Each image row's working (height, width), from the samples that use it."""
    sizes: dict[int, tuple[int, int]] = {}
    for split in (dataset.train, dataset.val, dataset.test):
        if split.image is None:
            continue
        for image, (height, width) in zip(split.image.tolist(), split.sizes.tolist(), strict=True):
            sizes.setdefault(int(image), (int(height), int(width)))
    return sizes


def _coco_file_names(path: Path) -> dict[Any, str]:
    """``image_id -> file_name`` from a COCO annotation file."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read its images list ({error})") from None
    entries = document.get("images") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DataError(f"{path}: not a COCO instances file (no 'images' list)")
    return {
        entry["id"]: str(entry["file_name"])
        for entry in entries
        if isinstance(entry, dict) and "id" in entry and entry.get("file_name")
    }


class _Reader:
    """Rows -> usable working-frame boxes per image row, faults counted by reason."""

    def __init__(self, path: Path, table: ImageTable, working: dict[int, tuple[int, int]]) -> None:
        self.path = path
        self.table = table
        self.working = working
        self.rows_of = {name: row for row, name in enumerate(table.names)}
        self.rows = 0
        self.boxes: dict[int, list[np.ndarray]] = {}
        self.skipped: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        places = self.examples.setdefault(reason, [])
        if len(places) < 3:
            places.append(where)

    def kept(self) -> dict[int, np.ndarray]:
        return {row: np.stack(found) for row, found in self.boxes.items()}

    def read_json(self, text: str, ids: dict[Any, str] | None) -> None:
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{self.path}: not valid JSON ({error.msg} at line {error.lineno} column "
                f"{error.colno})"
            ) from None
        if not isinstance(entries, list):
            raise DataError(f"{self.path}: not COCO detection results (top level is not a list)")
        for number, entry in enumerate(entries):
            self.rows += 1
            where = f"{self.path.name} entry {number}"
            if not isinstance(entry, dict):
                self.skip(MALFORMED, where)
                continue
            if ids is not None:
                key = entry.get("image_id")
                name = ids.get(key) if isinstance(key, int | str) else None
            else:
                name = entry.get("file_name")
            bbox = entry.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4:
                self.skip(MALFORMED, where)
                continue
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                self.skip(MALFORMED, where)
                continue
            self.add(name if isinstance(name, str) else None, (x, y, x + w, y + h), where)

    def read_csv(self, text: str) -> None:
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
        if header is None or tuple(column.strip() for column in header[:6]) != CSV_COLUMNS:
            raise DataError(f"{self.path}: the header must be {','.join(CSV_COLUMNS)}")
        for line, row in enumerate(rows, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            self.rows += 1
            where = f"{self.path.name}:{line}"
            if len(row) < 5 or not row[0].strip():
                self.skip(MALFORMED, where)
                continue
            try:
                box = tuple(float(cell) for cell in row[1:5])
            except ValueError:
                self.skip(MALFORMED, where)
                continue
            self.add(row[0].strip(), box, where)

    def add(self, name: str | None, box: tuple[float, ...], where: str) -> None:
        image = self.rows_of.get(name) if name is not None else None
        if image is None or image not in self.working:
            self.skip(UNKNOWN_IMAGE, where)
            return
        if not all(math.isfinite(v) for v in box):
            self.skip(NON_FINITE, where)
            return
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            self.skip(NON_POSITIVE, where)
            return
        stored_width, stored_height, orientation = (int(v) for v in self.table.frames[image])
        if x1 <= 0 or y1 <= 0 or x0 >= stored_width or y0 >= stored_height:
            self.skip(OUTSIDE_IMAGE, where)
            return
        clipped = np.clip([x0, y0, x1, y1], 0, [stored_width, stored_height] * 2)
        self.boxes.setdefault(image, []).append(
            place_boxes(clipped, stored_width, stored_height, orientation, self.working[image])
        )
