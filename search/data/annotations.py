"""User datasets (``csv``, ``voc``, ``coco``, ``tfrecord``, ``folder``): one pipeline from records
to a Dataset.

A format parser turns its files into :class:`Annotations` (images with their objects, in the
file's stored pixel frame, as pixel edges ``(x_min, y_min, x_max, y_max)``); :func:`build_dataset`
does the rest the same way for every format: checks, splits, decoding once, caching. An image
is a file under the dataset root, or encoded bytes a reader returns (TFRecord). An object
without a box (``folder``: box-free data) stands for its whole image.

Options shared by these formats (default in brackets):

- ``classes=a|b|c`` [all]: keep only these classes; label indices follow this order. Without it,
  classes are sorted by name (COCO: by category id). Naming a class the data lacks is an error.
- ``min_size=N`` [0]: drop objects whose box, clipped to the image, is under N pixels on its
  shorter side, measured in the original image (before resizing); box-free: the image's.
- ``max_side=N`` [256]: working resolution, the longest image side (never upscaled; 0 keeps
  the original size). Boxes are scaled with the image.
- ``val=F``, ``test=F`` [0.15, 0.15]: fractions of *images* carved into val and test where the
  dataset has no split of its own, stratified by each image's first object's class; every
  class keeps at least one image in train. The objects of one image never straddle splits.
- ``seed=N`` [0]: the carved splits and the sample order.
- ``max_memory=GIB`` and ``cache=0``: see :mod:`search.data.decoded` and :mod:`search.data.cache`.

Each annotated object is one sample; an image with several objects is decoded once and shared.

Per-sample faults are skipped and counted by reason in :class:`DataReport`: the file
(``missing file``, ``not an image``, ``corrupt image``, ``image too large``, ``path outside
dataset root`` for ``../x.jpg``, absolute paths and symlinks leading out of the image root), the
box (``non-finite box``, ``inverted box``, ``empty box``, ``negative box size``, ``box outside
image``, ``smaller than min_size``), the annotation (``malformed annotation`` for a missing or
non-numeric field, ``unreadable annotation file``, ``unknown category``, ``unknown image id``,
``crowd annotation``), ``not in a split list`` (VOC ImageSets) and ``class not in classes=``. A
box partly outside its image is clipped to it, kept, and counted in ``clipped_boxes``.

Dataset-level faults raise :class:`DataError`, one line naming the file or dataset: a missing or
unparseable annotation file, a missing CSV column, no usable sample, a single class, a class
with fewer than 2 samples (it cannot be both trained and evaluated: leave it out with
``classes=``), an empty train or val split, and canvases over the memory limit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.data import images as imaging
from search.data.cache import CacheKey, load_or_build
from search.data.dataset import DataError, DataReport, Dataset, ImageTable
from search.data.decoded import Decoded, SplitIndex, assemble, check_memory
from search.data.specs import DataSpec, check_options, option
from search.data.splits import SPLITS, TEST, TRAIN, VAL, split_groups

COMMON_OPTIONS = ("classes", "min_size", "max_side", "val", "test", "seed", "max_memory", "cache")
MEMORY_HINT = "lower max_side=, or keep fewer classes="

#: Reasons a sample is skipped (besides the image faults of :mod:`search.data.images`).
OUTSIDE_ROOT = "path outside dataset root"
NON_FINITE = "non-finite box"
INVERTED = "inverted box"
EMPTY_BOX = "empty box"
NEGATIVE_SIZE = "negative box size"
OUTSIDE_IMAGE = "box outside image"
TOO_SMALL = "smaller than min_size"
MALFORMED = "malformed annotation"
UNREADABLE_FILE = "unreadable annotation file"
UNKNOWN_CATEGORY = "unknown category"
UNKNOWN_IMAGE = "unknown image id"
CROWD = "crowd annotation"
NOT_IN_SPLIT = "not in a split list"
NOT_SELECTED = "class not in classes="

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class UserOptions:
    """The options every user format takes, validated."""

    classes: tuple[str, ...] | None = None
    min_size: float = 0.0
    max_side: int = 256
    val: float = 0.15
    test: float = 0.15
    seed: int = 0

    @classmethod
    def from_spec(cls, spec: DataSpec, extra: tuple[str, ...] = ()) -> UserOptions:
        """Read and check the options of ``spec`` (``extra``: format-specific option names)."""
        check_options(spec, COMMON_OPTIONS + extra)
        classes = None
        if "classes" in spec.options:
            classes = tuple(c.strip() for c in spec.options["classes"].split("|") if c.strip())
            if not classes:
                raise DataError(f"--data '{spec}': classes= names no class (use classes=a|b|c)")
            repeated = sorted({c for c in classes if classes.count(c) > 1})
            if repeated:
                raise DataError(f"--data '{spec}': classes= repeats {', '.join(repeated)}")
        made = cls(
            classes,
            option(spec, "min_size", 0.0, float, low=0),
            option(spec, "max_side", 256, int, low=0),
            option(spec, "val", 0.15, float, low=0, high=1),
            option(spec, "test", 0.15, float, low=0, high=1),
            option(spec, "seed", 0, int),
        )
        if made.val + made.test >= 1:
            raise DataError(
                f"--data '{spec}': val={made.val} + test={made.test} leaves nothing to train on"
            )
        return made

    def as_key(self) -> dict[str, Any]:
        """The options as plain data, for the cache key."""
        return asdict(self)


@dataclass
class ObjectRecord:
    """One annotated object as the annotation file states it (``box`` None: the whole image)."""

    label: str
    box: Box | None
    where: str


@dataclass
class ImageRecord:
    """One image and its objects; ``split`` is the dataset's own split, or None (carve it).

    Attributes:
        path: the image file, relative to the root; with ``reader``, only a name for reports.
        objects: its objects.
        split: the dataset's own split, or None.
        reader: returns the encoded image, for formats that hold images inside their own files.
        probe: the image's header, when the parser has already read it.
    """

    path: str
    objects: list[ObjectRecord] = field(default_factory=list)
    split: int | None = None
    reader: Callable[[], bytes] | None = None
    probe: imaging.Probe | None = None


@dataclass
class Annotations:
    """What a format parser found.

    Attributes:
        source: the annotation file or folder, named in error messages.
        root: image paths are relative to it, and must resolve inside it.
        images: the images in annotation order.
        report: per-sample faults found while parsing.
        class_order: default class order (e.g. COCO category ids), else names are sorted.
        carve: the splits carved from the images without a split of their own.
        has_boxes: False for box-free data (every object is its whole image).
    """

    source: Path
    root: Path
    images: list[ImageRecord]
    report: DataReport
    class_order: list[str] | None = None
    carve: tuple[int, ...] = (VAL, TEST)
    has_boxes: bool = True


@dataclass
class _Image:
    path: Path
    name: str
    objects: list[ObjectRecord]
    split: int | None
    probe: imaging.Probe | None = None
    reader: Callable[[], bytes] | None = None

    def source(self) -> imaging.Source:
        return self.reader() if self.reader is not None else self.path


def check_box(box: Box) -> str | None:
    """Why a box is unusable whatever its image (a skip reason), or None."""
    if not all(math.isfinite(v) for v in box):
        return NON_FINITE
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        return INVERTED
    if x1 == x0 or y1 == y0:
        return EMPTY_BOX
    return None


def read_location(spec: DataSpec, kind: str) -> Path:
    """The spec's location as a path that exists (``kind``: "file" or "folder")."""
    path = Path(spec.location or "").expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such {kind} (from --data '{spec}')")
    if kind == "file" and not path.is_file():
        raise DataError(f"{path}: is not a file (format '{spec.format}' needs a file)")
    if kind == "folder" and not path.is_dir():
        raise DataError(f"{path}: is not a folder (format '{spec.format}' needs a folder)")
    return path


def build_dataset(
    spec: DataSpec, options: UserOptions, annotations: Annotations, key: CacheKey
) -> Dataset:
    """Checks, splits, decoding (or the cache) and assembly for a parsed user dataset.

    ``key`` already holds the format, the options and the annotation files' bytes; the image
    files' paths, sizes and times are added here.
    """
    images = _prepare(options, annotations)
    for image in images:
        if image.reader is None:
            key.add_file_stat(image.path)
    decoded = load_or_build(spec, key, lambda: _decode_all(spec, options, annotations, images))
    return assemble(spec, decoded, MEMORY_HINT)


def decode_annotations(spec: DataSpec, options: UserOptions, annotations: Annotations) -> Decoded:
    """Checks, splits and decoding without the cache: for a format whose cache key is known
    before parsing (its images live inside its files), called from :func:`load_or_build`."""
    return _decode_all(spec, options, annotations, _prepare(options, annotations))


def _prepare(options: UserOptions, annotations: Annotations) -> list[_Image]:
    images = _resolve(annotations)
    _check_requested_classes(options, annotations, images)
    return _filter_objects(images, options, annotations.report)


def _resolve(annotations: Annotations) -> list[_Image]:
    """Image paths resolved inside the root; records of one file merged (decoded once)."""
    root = annotations.root.resolve()
    merged: dict[Path, _Image] = {}
    held: list[_Image] = []
    for record in annotations.images:
        if not record.objects:
            continue
        if record.reader is not None:  # held in the annotation files: nothing to resolve
            image = _Image(Path(record.path), record.path, list(record.objects), record.split)
            image.probe, image.reader = record.probe, record.reader
            held.append(image)
            continue
        candidate = Path(record.path)
        try:
            resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        except (OSError, RuntimeError, ValueError):  # symlink loops, NUL bytes
            annotations.report.skip(imaging.MISSING_FILE, len(record.objects), record.path)
            continue
        if not resolved.is_relative_to(root):
            annotations.report.skip(OUTSIDE_ROOT, len(record.objects), record.path)
            continue
        known = merged.get(resolved)
        if known is None:
            merged[resolved] = _Image(resolved, record.path, list(record.objects), record.split)
        else:
            known.objects.extend(record.objects)
    return list(merged.values()) + held


def _check_requested_classes(
    options: UserOptions, annotations: Annotations, images: list[_Image]
) -> None:
    if options.classes is None:
        return
    seen = {obj.label for image in images for obj in image.objects}
    unknown = [c for c in options.classes if c not in seen]
    if unknown:
        found = sorted(seen)
        listed = ", ".join(found[:30]) + (", ..." if len(found) > 30 else "")
        raise DataError(
            f"{annotations.source}: classes= names {', '.join(repr(c) for c in unknown)}, "
            f"not found in the annotations (found: {listed or 'none'})"
        )


def _filter_objects(images: list[_Image], options: UserOptions, report: DataReport) -> list[_Image]:
    """Drop objects of unselected classes and boxes unusable whatever the image."""
    kept = []
    for image in images:
        objects = []
        for obj in image.objects:
            if options.classes is not None and obj.label not in options.classes:
                report.skip(NOT_SELECTED, where=obj.where)
                continue
            reason = None if obj.box is None else check_box(obj.box)
            if reason is not None:
                report.skip(reason, where=obj.where)
                continue
            objects.append(obj)
        if objects:
            image.objects = objects
            kept.append(image)
    return kept


def _decode_all(
    spec: DataSpec, options: UserOptions, annotations: Annotations, images: list[_Image]
) -> Decoded:
    report = annotations.report
    probed = [image for image in images if _probe(image, options, report)]
    class_names = _class_names(options, annotations, probed)
    index = {name: k for k, name in enumerate(class_names)}
    codes = _assign_splits(options, annotations, probed, index)
    targets = [image.probe.target_size(options.max_side) for image in probed if image.probe]
    n_samples = sum(len(image.objects) for image in probed)
    if targets:
        check_memory(
            spec,
            n_samples,
            max(h for _, h in targets),
            max(w for w, _ in targets),
            MEMORY_HINT,
        )
    pixels: list[np.ndarray] = []
    names: list[str] = []
    frames: list[tuple[int, int, int]] = []
    rows: dict[int, list[tuple[int, np.ndarray, int]]] = {code: [] for code in (TRAIN, VAL, TEST)}
    resized = 0
    for image, code in zip(probed, codes, strict=True):
        assert image.probe is not None
        try:
            array, image.probe = imaging.decode(image.source(), image.probe, options.max_side)
        except imaging.ImageFault as fault:
            report.skip(fault.reason, len(image.objects), _where(image.name, fault.detail))
            continue
        boxes = _working_boxes(image, array.shape[1], array.shape[0])
        resized += array.shape[:2] != image.probe.oriented_size[::-1]
        for obj, box in zip(image.objects, boxes, strict=True):
            rows[int(code)].append((len(pixels), box, index[obj.label]))
        pixels.append(array)
        names.append(image.name)
        frames.append((image.probe.width, image.probe.height, image.probe.orientation))
    decoded_labels = [label for code in rows for _, _, label in rows[code]]
    _check_classes(annotations.source, class_names, Counter(decoded_labels), report)
    _check_splits(annotations.source, options, annotations, rows)
    rng = np.random.default_rng([options.seed, 1])
    splits = {}
    for code, name in enumerate(SPLITS):
        order = rng.permutation(len(rows[code]))
        items = [rows[code][i] for i in order]
        splits[name] = SplitIndex(
            np.array([i for i, _, _ in items], dtype=np.int64),
            np.array([b for _, b, _ in items], dtype=np.float64).reshape(-1, 4),
            np.array([label for _, _, label in items], dtype=np.int64),
        )
    side = "original size" if options.max_side <= 0 else f"longest side <= {options.max_side}"
    report.notes.append(f"images: {len(pixels)} decoded, {resized} resized ({side})")
    table = ImageTable(tuple(names), np.array(frames, dtype=np.int64).reshape(-1, 3))
    return Decoded.from_images(class_names, pixels, splits, report, annotations.has_boxes, table)


def _where(name: str, detail: str) -> str:
    return f"{name} ({detail[:120]})" if detail else name


def _probe(image: _Image, options: UserOptions, report: DataReport) -> bool:
    """Read the header, then drop boxes wholly outside, clip the rest, apply min_size."""
    if image.probe is None:
        try:
            image.probe = imaging.probe(image.source())
        except imaging.ImageFault as fault:
            report.skip(fault.reason, len(image.objects), _where(image.name, fault.detail))
            return False
    width, height = image.probe.width, image.probe.height
    objects = []
    for obj in image.objects:
        whole = (0.0, 0.0, float(width), float(height))
        if obj.box is None:
            obj = ObjectRecord(obj.label, whole, obj.where)
        x0, y0, x1, y1 = obj.box or whole
        clipped = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            report.skip(OUTSIDE_IMAGE, where=obj.where)
            continue
        if min(clipped[2] - clipped[0], clipped[3] - clipped[1]) < options.min_size:
            report.skip(TOO_SMALL, where=obj.where)
            continue
        if clipped != obj.box:
            report.clipped_boxes += 1
            obj = ObjectRecord(obj.label, clipped, obj.where)
        objects.append(obj)
    image.objects = objects
    return bool(objects)


def _working_boxes(image: _Image, width: int, height: int) -> np.ndarray:
    """The image's boxes, oriented like its pixels and scaled to ``width`` x ``height``."""
    assert image.probe is not None
    probe = image.probe
    boxes = np.array([obj.box for obj in image.objects], dtype=np.float64).reshape(-1, 4)
    return imaging.place_boxes(boxes, probe.width, probe.height, probe.orientation, (height, width))


def _class_names(
    options: UserOptions, annotations: Annotations, images: list[_Image]
) -> tuple[str, ...]:
    counts = Counter(obj.label for image in images for obj in image.objects)
    if options.classes is not None:
        names = tuple(options.classes)
    elif annotations.class_order is not None:
        names = tuple(dict.fromkeys(c for c in annotations.class_order if counts[c]))
    else:
        names = tuple(sorted(counts))
    by_index = Counter({k: counts[name] for k, name in enumerate(names)})
    _check_classes(annotations.source, names, by_index, annotations.report)
    return names


def _check_classes(
    source: Path, names: tuple[str, ...], counts: Counter[int], report: DataReport
) -> None:
    """Dataset-level class checks: some samples, two classes or more, two samples per class."""
    if sum(counts.values()) == 0:
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.skipped.most_common(4))
        skipped = f" (skipped: {reasons})" if reasons else ""
        raise DataError(f"{source}: no usable samples{skipped}")
    few = [(name, counts[k]) for k, name in enumerate(names) if counts[k] < 2]
    if few:
        keep = [name for k, name in enumerate(names) if counts[k] >= 2]
        listed = ", ".join(f"'{name}' ({n})" for name, n in few)
        raise DataError(
            f"{source}: class(es) {listed} have fewer than 2 samples, too few to train and "
            f"evaluate; leave them out with classes={'|'.join(keep)}"
        )
    if len(names) < 2:
        raise DataError(
            f"{source}: only one class ('{names[0]}', {counts[0]} samples); "
            "classification needs at least 2"
        )


def _assign_splits(
    options: UserOptions, annotations: Annotations, images: list[_Image], index: dict[str, int]
) -> np.ndarray:
    """Split code per image: the dataset's own split, else carved, stratified by first label."""
    codes = np.full(len(images), TRAIN, dtype=np.int8)
    pool = [i for i, image in enumerate(images) if image.split is None]
    for i, image in enumerate(images):
        if image.split is not None:
            codes[i] = image.split
    first = np.array([index[images[i].objects[0].label] for i in pool], dtype=np.int64)
    val = options.val if VAL in annotations.carve else 0.0
    test = options.test if TEST in annotations.carve else 0.0
    rng = np.random.default_rng([options.seed, 0])
    codes[pool] = split_groups(first, val, test, rng)
    carved = [f"{name} {part:.0%}" for name, part in (("val", val), ("test", test)) if part]
    if pool and carved:
        by = "the first object's class" if annotations.has_boxes else "class"
        annotations.report.notes.append(
            f"splits: {' and '.join(carved)} of {len(pool)} images carved by image, stratified by "
            f"{by} (seed {options.seed})"
        )
    return codes


def _check_splits(
    source: Path,
    options: UserOptions,
    annotations: Annotations,
    rows: dict[int, list[tuple[int, np.ndarray, int]]],
) -> None:
    for code, name in enumerate(SPLITS):
        if rows[code]:
            continue
        if code == TEST and TEST in annotations.carve and options.test == 0:
            continue
        images = len({i for items in rows.values() for i, _, _ in items})
        raise DataError(
            f"{source}: the {name} split is empty ({images} images with usable samples, "
            f"val={options.val}, test={options.test}); add images or change val=/test="
        )
