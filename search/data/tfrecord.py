"""``tfrecord:GLOB``: TFRecord files of ``tf.train.Example`` in the TensorFlow Object Detection API
layout, read as they are (no conversion step).

GLOB is one file, a glob (``data/pets_train.record-*``; ``**`` recurses) or a folder (its files
whose name contains ``.record`` or ``.tfrecord``); ``.pbtxt`` files are never read as records.
Each file may be plain or gzip-compressed (told from its first bytes).

Features read from each example (the API's keys; others are ignored):

- ``image/encoded``: the encoded image, any format Pillow reads (``image/format`` is not
  needed: the bytes say); decoded once, EXIF orientation applied, like every format;
- ``image/object/bbox/xmin``, ``xmax``, ``ymin``, ``ymax``: the boxes, normalized to [0, 1] of
  the encoded image's own size (``image/width`` and ``image/height`` are not needed);
- ``image/object/class/text`` and/or ``image/object/class/label``: each object's class. The
  text wins; a numeric label is named by the label map, or by its number without one;
- ``image/filename`` (optional): names the record in the report.

Each object is one sample; an image with several objects is decoded once.

Label map: ``label_map=FILE``, else ``label_map.pbtxt`` (or a single ``*label_map.pbtxt``)
beside the first file: ``item { id: 1 name: 'cat' display_name: 'Cat' }`` blocks, read with a
small parser (no protobuf compiler). An item names its id by ``display_name`` when it has one,
else by ``name``, as the API's ``create_category_index_from_labelmap`` does; a class text equal
to an item's ``name`` maps to the same class. Class order: by id, then other names sorted.

Splits: when a file's name holds the word ``train``, ``val``/``validation``/``eval`` or
``test`` (``pets_val.record-00000-of-00002``), its images go to that split, and a split no file
names is carved from the others (``val=``/``test=``); else val and test are carved from all.

Per-sample faults, skipped and counted: an undecodable image (``not an image``, ``corrupt
image``, ``image too large``), ``no image/encoded``, ``unreadable record`` (not a
``tf.train.Example``), ``mismatched list lengths`` (the four box lists and the class lists of
one example differ: all its objects), ``missing label`` (neither text nor label), ``unknown
category`` (a label the label map lacks), ``box outside [0, 1]`` (beyond a 1e-6 tolerance),
``non-finite box``, ``inverted box``, ``empty box``, ``smaller than min_size`` and ``class not
in classes=``. A file that is not a TFRecord, or is truncated or corrupt, is a
:class:`DataError` naming it; so is a malformed label map. Other options: see
:mod:`search.data.annotations`; ``label_map=FILE`` is this format's own.

TensorFlow is imported only here and only on a cache miss: a cached dataset loads without it.
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from search.data import images as imaging
from search.data.annotations import (
    MEMORY_HINT,
    NON_FINITE,
    UNKNOWN_CATEGORY,
    Annotations,
    ImageRecord,
    ObjectRecord,
    UserOptions,
    decode_annotations,
)
from search.data.cache import CacheKey, load_or_build
from search.data.dataset import DataError, DataReport, Dataset
from search.data.decoded import Decoded, assemble
from search.data.specs import DataSpec, option
from search.data.splits import SPLITS, TEST, TRAIN, VAL

#: Reasons a sample is skipped, besides those of :mod:`search.data.annotations`.
MISMATCHED = "mismatched list lengths"
MISSING_LABEL = "missing label"
OUTSIDE_UNIT = "box outside [0, 1]"
NO_IMAGE = "no image/encoded"
UNREADABLE_RECORD = "unreadable record"

#: Normalized coordinates this far outside [0, 1] are float rounding, clamped, not skipped.
TOLERANCE = 1e-6
CORNERS = ("xmin", "ymin", "xmax", "ymax")
SPLIT_WORDS = {
    "train": TRAIN,
    "training": TRAIN,
    "val": VAL,
    "validation": VAL,
    "eval": VAL,
    "test": TEST,
}
_GZIP_MAGIC = b"\x1f\x8b"
#: The useful part of TensorFlow's message on a bad file.
_READ_ERROR = re.compile(r"(corrupted|truncated) record at \d+|inflate\(\)[^\[]*")
_TOKEN = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|#[^\n]*|[{}:,;]|[^\s{}:,;"'#]+""")


def load_tfrecord(spec: DataSpec) -> Dataset:
    """Load the dataset a ``tfrecord:GLOB[,label_map=FILE][,options]`` spec names."""
    options = UserOptions.from_spec(spec, extra=("label_map",))
    files = find_files(spec)
    map_path = _label_map_path(spec, files)
    key = CacheKey("tfrecord", options.as_key())
    for path in files:
        key.add_file_stat(path.resolve())
    label_map = LabelMap()
    if map_path is not None:
        data = _read_bytes(map_path)
        key.add_text(str(map_path.resolve()))
        key.add_bytes(data)
        label_map = parse_label_map(data.decode("utf-8", errors="replace"), map_path)

    def build() -> Decoded:
        return decode_annotations(spec, options, parse_tfrecords(files, label_map))

    return assemble(spec, load_or_build(spec, key, build), MEMORY_HINT)


def find_files(spec: DataSpec) -> list[Path]:
    """The record files a spec's location names (a file, a glob or a folder), sorted."""
    location = os.path.expanduser(spec.location or "")
    if Path(location).is_dir():
        found = [p for p in Path(location).iterdir() if re.search(r"\.(tf)?record", p.name)]
    else:
        found = [Path(p) for p in glob.glob(location, recursive=True)]
    files = sorted(p for p in found if p.is_file() and p.suffix != ".pbtxt")
    if not files:
        what = "no .record/.tfrecord files in" if Path(location).is_dir() else "no file matches"
        raise DataError(f"{location}: {what} (from --data '{spec}')")
    return files


@dataclass(frozen=True)
class LabelMap:
    """A ``label_map.pbtxt``: class names of numeric labels (empty without a file).

    Attributes:
        names: label id -> class name (``display_name``, else ``name``).
        aliases: every ``name`` and ``display_name`` -> its id.
        path: the file read, if any.
    """

    names: dict[int, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    path: Path | None = None

    def of_text(self, text: str) -> str:
        """The class of an object's ``class/text``."""
        label = self.aliases.get(text)
        return text if label is None else self.names[label]

    def of_label(self, label: int) -> str | None:
        """The class of an object's ``class/label``: None when the map lacks it."""
        return self.names.get(label) if self.names else str(label)

    def order(self, name: str) -> tuple[int, int, str]:
        """Sort key of a class: by label id, then by number, then by name."""
        if name in self.aliases:
            return 0, self.aliases[name], name
        if re.fullmatch(r"-?\d+", name):
            return 1, int(name), name
        return 2, 0, name


def parse_label_map(text: str, source: Path) -> LabelMap:
    """Read a ``StringIntLabelMap`` text file (``item { id: 1 name: 'cat' }`` blocks)."""
    map_ = LabelMap(path=source)
    tokens = [t for t in _TOKEN.findall(text) if not t.startswith("#") and t not in (",", ";")]
    names, aliases = map_.names, map_.aliases
    i = 0

    def fail(problem: str) -> DataError:
        return DataError(f"{source}: not a label map ({problem})")

    while i < len(tokens):
        if tokens[i : i + 2] == ["item", "{"]:
            i += 2
        elif tokens[i : i + 3] == ["item", ":", "{"]:
            i += 3
        else:
            raise fail(f"expected 'item {{', found {tokens[i]!r}")
        fields: dict[str, str] = {}
        while True:
            if i >= len(tokens):
                raise fail("an item is not closed")
            if tokens[i] == "}":
                i += 1
                break
            ahead = tokens[i + 1 : i + 3]
            if ahead[:1] == ["{"] or ahead == [":", "{"]:  # a nested message: not needed
                i = _skip_block(tokens, i + (2 if ahead[0] == "{" else 3), fail)
            elif len(ahead) == 2 and ahead[0] == ":" and ahead[1] not in ("{", "}"):
                fields.setdefault(tokens[i], _unquote(ahead[1]))
                i += 3
            else:
                raise fail(f"cannot read the field {tokens[i]!r}")
        try:
            label = int(fields["id"])
        except (KeyError, ValueError):
            raise fail(f"item {len(names) + 1} has no integer id") from None
        name = (fields.get("display_name") or fields.get("name") or "").strip()
        if not name:
            raise fail(f"item id {label} has no name")
        if label in names:
            raise fail(f"id {label} appears twice")
        names[label] = name
        for alias in (fields.get("name", "").strip(), name):
            if alias:
                aliases.setdefault(alias, label)
    if not names:
        raise fail("no items")
    return map_


def _skip_block(tokens: list[str], i: int, fail: Callable[[str], DataError]) -> int:
    """The index after the ``}`` closing a block whose ``{`` is just before ``i``."""
    depth = 1
    while i < len(tokens):
        depth += {"{": 1, "}": -1}.get(tokens[i], 0)
        i += 1
        if depth == 0:
            return i
    raise fail("a block is not closed")


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        escapes = {"n": "\n", "t": "\t"}
        return re.sub(r"\\(.)", lambda m: escapes.get(m[1], m[1]), token[1:-1])
    return token


def _label_map_path(spec: DataSpec, files: list[Path]) -> Path | None:
    given = option(spec, "label_map", None, str)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: no such label map (label_map= of --data '{spec}')")
        return path
    folder = files[0].parent
    if (folder / "label_map.pbtxt").is_file():
        return folder / "label_map.pbtxt"
    found = sorted(folder.glob("*label_map.pbtxt"))
    if len(found) > 1:
        listed = ", ".join(p.name for p in found)
        raise DataError(f"{folder}: several label maps ({listed}); choose one with label_map=FILE")
    return found[0] if found else None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


class RecordFile:
    """One TFRecord file, read in order: once to parse it, and once more to decode its images."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as file:
            self.gzip = file.read(2) == _GZIP_MAGIC
        self._records: Iterator[bytes] | None = None
        self._next = 0

    def records(self) -> Iterator[bytes]:
        """Each serialized record; a file that is not a readable TFRecord is a DataError."""
        tf = _tensorflow()
        dataset = tf.data.TFRecordDataset(str(self.path), "GZIP" if self.gzip else "")
        count = 0
        try:
            for record in dataset.as_numpy_iterator():
                yield record
                count += 1
        except tf.errors.OpError as error:
            found = _READ_ERROR.search(error.message)
            detail = found[0].strip() if found else type(error).__name__
            what = "not a TFRecord file" if count == 0 else f"unreadable after {count} records"
            raise DataError(f"{self.path}: {what} ({detail})") from None

    def image(self, index: int) -> bytes:
        """The encoded image of record ``index`` (reading on from the last one asked for)."""
        if self._records is None or index < self._next:
            self._records, self._next = self.records(), 0
        record = b""
        while self._next <= index:
            record = next(self._records, b"")
            self._next += 1
        example = _example(record)
        encoded = _bytes(example, "image/encoded") if example is not None else []
        if not encoded:
            raise DataError(f"{self.path}: changed while loading (record {index})")
        return encoded[0]


def parse_tfrecords(files: list[Path], label_map: LabelMap) -> Annotations:
    """Read every record of ``files`` into :class:`Annotations` (images probed, not decoded)."""
    report = DataReport()
    splits = {path: _split_of(path) for path in files}
    images: list[ImageRecord] = []
    records = empty = gzipped = 0
    for path in files:
        file = RecordFile(path)
        gzipped += file.gzip
        split = None if splits[path] == TRAIN else splits[path]  # None: train, and carved from
        for index, raw in enumerate(file.records()):
            records += 1
            where = f"{path.name} record {index}"
            example = _example(raw)
            if example is None:
                report.skip(UNREADABLE_RECORD, where=where)
                continue
            filename = b"".join(_bytes(example, "image/filename")).decode("utf-8", "replace")
            where += f" ({filename})" if filename else ""
            parsed = _objects(example, where, label_map, report)
            if parsed is None:
                continue
            if not parsed:
                empty += not _floats(example, "image/object/bbox/xmin")
                continue
            encoded = _bytes(example, "image/encoded")
            if not encoded or not encoded[0]:
                report.skip(NO_IMAGE, len(parsed), where)
                continue
            try:
                probe = imaging.probe(encoded[0])
            except imaging.ImageFault as fault:
                detail = f" ({fault.detail[:120]})" if fault.detail else ""
                report.skip(fault.reason, len(parsed), where + detail)
                continue
            width, height = probe.width, probe.height
            objects = [
                ObjectRecord(label, (x0 * width, y0 * height, x1 * width, y1 * height), place)
                for label, (x0, y0, x1, y1), place in parsed
            ]
            images.append(ImageRecord(where, objects, split, partial(file.image, index), probe))
    report.notes.append(
        f"tfrecord: {records} records in {len(files)} files ({gzipped} gzip-compressed), "
        f"{empty} without objects"
    )
    report.notes.append(
        f"label map: {label_map.path} ({len(label_map.names)} ids)"
        if label_map.path is not None
        else "label map: none (numeric labels are named by their number)"
    )
    carve: tuple[int, ...] = (VAL, TEST)
    if any(code is not None for code in splits.values()):
        carve = tuple(code for code in (VAL, TEST) if code not in splits.values())
        stated = [f"{p.name} {SPLITS[c]}" for p, c in splits.items() if c is not None]
        report.notes.append(f"splits: from file names ({', '.join(stated)})")
    labels = {obj.label for image in images for obj in image.objects}
    order = sorted(labels, key=label_map.order)
    source = files[0] if len(files) == 1 else files[0].parent
    return Annotations(source, source, images, report, order, carve)


def _split_of(path: Path) -> int | None:
    """The split a file's name states (``pets_val.record-00000-of-00002``: val), if any."""
    for word in re.split(r"[^a-z]+", path.name.lower()):
        if word in SPLIT_WORDS:
            return SPLIT_WORDS[word]
    return None


def _objects(
    example: Any, where: str, label_map: LabelMap, report: DataReport
) -> list[tuple[str, tuple[float, float, float, float], str]] | None:
    """The usable objects of an example as (label, normalized corners, where); None when the
    example's lists disagree (all its objects are skipped)."""
    corners = [_floats(example, f"image/object/bbox/{k}") for k in CORNERS]
    texts = _bytes(example, "image/object/class/text")
    labels = _ints(example, "image/object/class/label")
    lengths = [len(values) for values in corners] + [len(v) for v in (texts, labels) if v]
    if len(set(lengths)) > 1:
        report.skip(MISMATCHED, max(lengths), f"{where}: {lengths}")
        return None
    objects = []
    for j in range(lengths[0]):
        object_where = f"{where} object {j + 1}"
        text = texts[j].decode("utf-8", "replace").strip() if texts else ""
        if text:
            label = label_map.of_text(text)
        elif labels:
            named = label_map.of_label(labels[j])
            if named is None:
                report.skip(UNKNOWN_CATEGORY, where=f"{object_where} (label {labels[j]})")
                continue
            label = named
        else:
            report.skip(MISSING_LABEL, where=object_where)
            continue
        x0, y0, x1, y1 = (values[j] for values in corners)
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            report.skip(NON_FINITE, where=object_where)
            continue
        if not all(-TOLERANCE <= v <= 1 + TOLERANCE for v in (x0, y0, x1, y1)):
            report.skip(OUTSIDE_UNIT, where=object_where)
            continue
        box = (_unit(x0), _unit(y0), _unit(x1), _unit(y1))
        objects.append((label, box, object_where))
    return objects


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _example(record: bytes) -> Any:
    """The ``tf.train.Example`` in ``record``, or None when it is not one."""
    tf = _tensorflow()
    from google.protobuf.message import DecodeError

    try:
        return tf.train.Example.FromString(record)
    except DecodeError:
        return None


def _feature(example: Any, key: str, kind: str) -> list[Any]:
    feature = example.features.feature.get(key)
    return list(getattr(feature, kind).value) if feature is not None else []


def _bytes(example: Any, key: str) -> list[bytes]:
    return _feature(example, key, "bytes_list")


def _floats(example: Any, key: str) -> list[float]:
    return _feature(example, key, "float_list")


def _ints(example: Any, key: str) -> list[int]:
    return _feature(example, key, "int64_list")


def _tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf
