"""``csv:FILE``: one row per object, columns ``path,label,x_min,y_min,x_max,y_max``.

``path`` is relative to the CSV's folder (absolute paths must lie inside it); coordinates are
pixel edges in the image file's stored frame; extra columns are ignored; UTF-8, with or without
a byte-order mark. Several rows may name the same image: it is decoded once. A row with an empty
path or label or a non-numeric coordinate is skipped as ``malformed annotation`` (``FILE:LINE``
in the report); a missing column or an empty file is a :class:`DataError`. Options: see
:mod:`search.data.annotations`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from search.data.annotations import (
    MALFORMED,
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

COLUMNS = ("path", "label", "x_min", "y_min", "x_max", "y_max")
COORDINATES = COLUMNS[2:]


def load_csv(spec: DataSpec) -> Dataset:
    """Load the dataset a ``csv:FILE[,options]`` spec names."""
    options = UserOptions.from_spec(spec)
    path = read_location(spec, "file")
    key = CacheKey("csv", options.as_key())
    return build_dataset(spec, options, parse_csv(path, key), key)


def parse_csv(path: Path, key: CacheKey) -> Annotations:
    """Read the CSV at ``path`` (its bytes go into ``key``) into :class:`Annotations`."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start})") from None
    key.add_bytes(data)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in reader.fieldnames or ()]
    except csv.Error as error:
        raise DataError(f"{path}: not a readable CSV ({error})") from None
    if not header:
        raise DataError(f"{path}: empty file, expected a header {','.join(COLUMNS)}")
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(header: {','.join(header)}; needed: {','.join(COLUMNS)})"
        )
    reader.fieldnames = header
    report = DataReport()
    images: list[ImageRecord] = []
    try:
        for row in reader:
            where = f"{path.name}:{reader.line_num}"
            image_path = (row.get("path") or "").strip()
            label = (row.get("label") or "").strip()
            try:
                x0, y0, x1, y1 = (float(row[column]) for column in COORDINATES)
            except (TypeError, ValueError):
                report.skip(MALFORMED, where=f"{where} (coordinate not a number)")
                continue
            if not image_path or not label:
                report.skip(MALFORMED, where=f"{where} (empty path or label)")
                continue
            images.append(ImageRecord(image_path, [ObjectRecord(label, (x0, y0, x1, y1), where)]))
    except csv.Error as error:
        raise DataError(f"{path}: not a readable CSV at line {reader.line_num} ({error})") from None
    return Annotations(path, path.parent, images, report)
