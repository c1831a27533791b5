"""``voc:DIR``: Pascal VOC layout, ``DIR/Annotations/*.xml`` and ``DIR/JPEGImages/``.

Each XML's ``<object>`` is a sample (``<name>`` is the label, ``<bndbox>`` the box); the image
is ``JPEGImages/<filename>`` (or ``<xml stem>.jpg`` without ``<filename>``) and must resolve
inside ``JPEGImages``. VOC boxes are 1-based inclusive pixel indices, converted to edges
``(x_min - 1, y_min - 1, x_max, y_max)``. Objects marked ``difficult`` are kept.

Splits: where ``ImageSets/Main/{train,val,test,trainval}.txt`` exist they decide (ids are XML
stems): ``test.txt`` -> test, ``val.txt`` -> val, ``train.txt`` (else ``trainval.txt``) ->
train; a split without a list is carved from the train images with the ``val=``/``test=``
fractions (e.g. VOC2012: test carved from train.txt). Images in no list are skipped (``not in
a split list``). Without lists every split is carved. An unparseable XML file is skipped
(``unreadable annotation file``); an object without a name or a numeric box is a ``malformed
annotation``. Options: see :mod:`search.data.annotations`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from search.data.annotations import (
    MALFORMED,
    NOT_IN_SPLIT,
    UNREADABLE_FILE,
    Annotations,
    ImageRecord,
    ObjectRecord,
    UserOptions,
    build_dataset,
    read_location,
)
from search.data.cache import CacheKey
from search.data.dataset import DataError, DataReport, Dataset
from search.data.specs import DataSpec
from search.data.splits import TEST, VAL

LISTS = ("train", "val", "test", "trainval")
CORNERS = ("xmin", "ymin", "xmax", "ymax")


def load_voc(spec: DataSpec) -> Dataset:
    """Load the dataset a ``voc:DIR[,options]`` spec names."""
    options = UserOptions.from_spec(spec)
    root = read_location(spec, "folder")
    key = CacheKey("voc", options.as_key())
    return build_dataset(spec, options, parse_voc(root, key), key)


def parse_voc(root: Path, key: CacheKey) -> Annotations:
    """Read a VOC folder (annotation and split-list bytes go into ``key``)."""
    folder = root / "Annotations"
    if not folder.is_dir():
        raise DataError(f"{root}: no Annotations folder (a VOC dataset has Annotations/*.xml)")
    files = sorted(folder.glob("*.xml"))
    if not files:
        raise DataError(f"{folder}: no .xml annotation files")
    report = DataReport()
    lists = _split_lists(root, key)
    images = []
    for path in files:
        record = _parse_file(path, key, report)
        if record is None:
            continue
        if lists:
            record.split = _own_split(path.stem, lists)
            if record.split == -1:
                report.skip(NOT_IN_SPLIT, len(record.objects), f"Annotations/{path.name}")
                continue
        images.append(record)
    carve: tuple[int, ...] = (VAL, TEST)
    if lists:
        carve = tuple(code for code, name in ((VAL, "val"), (TEST, "test")) if name not in lists)
        used = [f"{name}.txt" for name in LISTS if name in lists]
        report.notes.append(f"splits: ImageSets/Main {', '.join(used)}")
    return Annotations(root, root / "JPEGImages", images, report, carve=carve)


def _split_lists(root: Path, key: CacheKey) -> dict[str, set[str]]:
    lists = {}
    for name in LISTS:
        path = root / "ImageSets" / "Main" / f"{name}.txt"
        if path.is_file():
            try:
                data = path.read_bytes()
            except OSError as error:
                raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
            key.add_text(name)
            key.add_bytes(data)
            text = data.decode("utf-8", errors="replace")
            lists[name] = {line.split()[0] for line in text.splitlines() if line.strip()}
    return lists


def _own_split(stem: str, lists: dict[str, set[str]]) -> int | None:
    """The listed split of an image: VAL or TEST, None for train (splits without a list are
    carved from these), or -1 when the lists leave it out."""
    if stem in lists.get("test", ()):
        return TEST
    if stem in lists.get("val", ()):
        return VAL
    train = lists.get("train", lists.get("trainval"))
    if train is None or stem in train:
        return None
    return -1


def _parse_file(path: Path, key: CacheKey, report: DataReport) -> ImageRecord | None:
    where = f"Annotations/{path.name}"
    try:
        data = path.read_bytes()
    except OSError as error:
        report.skip(UNREADABLE_FILE, where=f"{where} ({error.strerror or error})")
        return None
    key.add_text(path.name)
    key.add_bytes(data)
    try:
        tree = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        report.skip(UNREADABLE_FILE, where=f"{where} ({error})")
        return None
    if tree.tag != "annotation":
        report.skip(UNREADABLE_FILE, where=f"{where} (root element <{tree.tag}>)")
        return None
    filename = (tree.findtext("filename") or "").strip() or f"{path.stem}.jpg"
    record = ImageRecord(filename)
    for number, obj in enumerate(tree.findall("object"), start=1):
        label = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        try:
            if box is None or not label:
                raise ValueError
            x0, y0, x1, y1 = (float(box.findtext(k) or "") for k in CORNERS)
        except ValueError:
            report.skip(MALFORMED, where=f"{where} object {number}")
            continue
        edges = (x0 - 1, y0 - 1, x1, y1)
        record.objects.append(ObjectRecord(label, edges, f"{where} object {number}"))
    return record
