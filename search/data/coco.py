"""``coco:FILE[,images=DIR]``: a COCO instances JSON (``images``, ``annotations``, ``categories``).

Each annotation is a sample; its label is its category's ``name`` and its ``bbox`` ``[x, y, w,
h]`` becomes ``(x, y, x + w, y + h)``. Image files are ``DIR/<file_name>`` with ``DIR`` the
``images=`` option or else the JSON's folder, and must resolve inside ``DIR``. Default class
order: by category id. Crowd annotations (``iscrowd`` 1) are skipped; so are annotations with
an unknown ``category_id`` or ``image_id`` or a malformed ``bbox`` (each counted by reason).
Invalid JSON, or a top level without the three lists, is a :class:`DataError`. COCO has no
split of its own here: val and test are carved (``val=``/``test=``). Other options: see
:mod:`search.data.annotations`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from search.data.annotations import (
    CROWD,
    MALFORMED,
    NEGATIVE_SIZE,
    NON_FINITE,
    UNKNOWN_CATEGORY,
    UNKNOWN_IMAGE,
    Annotations,
    ImageRecord,
    ObjectRecord,
    UserOptions,
    build_dataset,
    read_location,
)
from search.data.cache import CacheKey
from search.data.dataset import DataError, DataReport, Dataset
from search.data.specs import DataSpec, option


def load_coco(spec: DataSpec) -> Dataset:
    """Load the dataset a ``coco:FILE[,images=DIR][,options]`` spec names."""
    options = UserOptions.from_spec(spec, extra=("images",))
    path = read_location(spec, "file")
    images = option(spec, "images", None, str)
    root = Path(images).expanduser() if images else path.parent
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (images= of --data '{spec}')")
    key = CacheKey("coco", options.as_key())
    return build_dataset(spec, options, parse_coco(path, root, key), key)


def parse_coco(path: Path, root: Path, key: CacheKey) -> Annotations:
    """Read the COCO JSON at ``path`` (its bytes go into ``key``); images live under ``root``."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    key.add_bytes(data)
    try:
        document = json.loads(data)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid JSON (not UTF-8 text)") from None
    if not isinstance(document, dict):
        raise DataError(f"{path}: not a COCO instances file (top level is not an object)")
    for name in ("images", "annotations", "categories"):
        if not isinstance(document.get(name), list):
            raise DataError(f"{path}: not a COCO instances file (no '{name}' list)")
    categories = _categories(path, document["categories"])
    report = DataReport()
    records: dict[Any, ImageRecord] = {}
    for entry in document["images"]:
        if isinstance(entry, dict) and _hashable(entry.get("id")) and entry.get("file_name"):
            records.setdefault(entry["id"], ImageRecord(str(entry["file_name"])))
    for number, entry in enumerate(document["annotations"]):
        where = f"{path.name} annotation {_describe(entry, number)}"
        parsed = _annotation(entry, records, categories)
        if isinstance(parsed, str):
            report.skip(parsed, where=where)
            continue
        image_id, label, box = parsed
        records[image_id].objects.append(ObjectRecord(label, box, where))
    by_id = sorted(categories.items(), key=lambda item: _sort_key(item[0]))
    order = [name for _, name in by_id]
    return Annotations(path, root, list(records.values()), report, class_order=order)


def _categories(path: Path, entries: list[Any]) -> dict[Any, str]:
    categories = {}
    for number, entry in enumerate(entries):
        if not (isinstance(entry, dict) and _hashable(entry.get("id")) and entry.get("name")):
            raise DataError(f"{path}: category #{number} has no id or name")
        categories[entry["id"]] = str(entry["name"]).strip()
    return categories


def _annotation(
    entry: Any, records: dict[Any, ImageRecord], categories: dict[Any, str]
) -> tuple[Any, str, tuple[float, float, float, float]] | str:
    """(image id, label, box edges), or the reason to skip the annotation."""
    if not isinstance(entry, dict):
        return MALFORMED
    if not _hashable(entry.get("image_id")) or entry.get("image_id") not in records:
        return UNKNOWN_IMAGE
    if not _hashable(entry.get("category_id")) or entry.get("category_id") not in categories:
        return UNKNOWN_CATEGORY
    if entry.get("iscrowd"):
        return CROWD
    bbox = entry.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        return MALFORMED
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
        return MALFORMED
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return NON_FINITE
    if w < 0 or h < 0:
        return NEGATIVE_SIZE
    return entry["image_id"], categories[entry["category_id"]], (x, y, x + w, y + h)


def _hashable(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int) else (1, str(value))


def _describe(entry: Any, number: int) -> str:
    if isinstance(entry, dict) and _hashable(entry.get("id")):
        return f"id {entry['id']}"
    return f"#{number}"
