"""``folder:DIR``: one sub-folder per class with images inside, and no boxes.

The layout :func:`keras.utils.image_dataset_from_directory` reads: ``DIR/<class>/<image>``.
Class names are the sub-folder names (in sorted order, as Keras numbers them); a class folder's
images may sit at any depth inside it. Image files are recognised by extension, in any case:
``.bmp .gif .jpeg .jpg .png`` (Keras' list) and ``.webp .tif .tiff``. Hidden files and folders
(``.DS_Store``, ``.ipynb_checkpoints``), files with other extensions and files directly in DIR
are ignored, and the report says how many.

Splits: when DIR holds only folders named ``train``, ``val`` (or ``validation``) and ``test``,
each with class folders inside, those folders decide, and a split without a folder is carved
from ``train`` with the ``val=``/``test=`` fractions; otherwise val and test are carved from all
images, stratified by class.

Each image is one sample whose box is the whole image (``Dataset.has_boxes`` is False), so the
kinds that need no object box (``full``, ``center``, ``random``, ``random_resized``) work as on
any data; a search space that can sample an object kind is refused before a search starts.
``min_size=N`` drops images under N pixels on their shorter side. Image faults (``missing
file``, ``not an image``, ``corrupt image``, ``image too large``, ``path outside dataset root``
for a symlink leading out of DIR) are skipped and counted. Options: see
:mod:`search.data.annotations`.
"""

from __future__ import annotations

import os
from pathlib import Path

from search.data.annotations import (
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

EXTENSIONS = frozenset({".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp", ".tif", ".tiff"})
#: Split folder name -> its split (None: train, the pool val and test are carved from).
SPLIT_FOLDERS: dict[str, int | None] = {"train": None, "val": VAL, "validation": VAL, "test": TEST}


def load_folder(spec: DataSpec) -> Dataset:
    """Load the dataset a ``folder:DIR[,options]`` spec names."""
    options = UserOptions.from_spec(spec)
    root = read_location(spec, "folder")
    key = CacheKey("folder", options.as_key())
    return build_dataset(spec, options, parse_folder(root), key)


def parse_folder(root: Path) -> Annotations:
    """List the class folders of ``root`` (or of its split folders) and their images."""
    report = DataReport()
    layout = _split_layout(root)
    groups = layout or [(root, None)]
    images: list[ImageRecord] = []
    classes: dict[str, int] = {}
    ignored = loose = 0
    for base, split in groups:
        loose += sum(1 for entry in _visible(base) if not entry.is_dir())
        for folder in (entry for entry in _visible(base) if entry.is_dir()):
            classes.setdefault(folder.name, 0)
            for path in _files(folder):
                if path.suffix.lower() not in EXTENSIONS:
                    ignored += 1
                    continue
                name = path.relative_to(root).as_posix()
                images.append(ImageRecord(name, [ObjectRecord(folder.name, None, name)], split))
                classes[folder.name] += 1
    if not images:
        found = f"; {loose} files directly in it" if loose else ""
        raise DataError(
            f"{root}: no images in class sub-folders (a folder dataset is "
            f"DIR/<class name>/<image>{found})"
        )
    report.notes.append(
        f"folder: {len(images)} image files in {len(classes)} class folders, no boxes "
        "(each sample is its whole image)"
    )
    empty = sorted(name for name, count in classes.items() if not count)
    if empty:
        report.notes.append(f"class folders without images, left out: {', '.join(empty)}")
    if ignored or loose:
        report.notes.append(
            f"ignored: {ignored} files without an image extension, {loose} files outside "
            "class folders"
        )
    carve: tuple[int, ...] = (VAL, TEST)
    if layout:
        present = {code for _, code in layout}
        carve = tuple(code for code in (VAL, TEST) if code not in present)
        used = ", ".join(f"{folder.name}/" for folder, _ in layout)
        report.notes.append(f"splits: folders {used}")
    return Annotations(root, root, images, report, sorted(classes), carve, has_boxes=False)


def _visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` not hidden, sorted by name."""
    try:
        return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    except OSError as error:
        raise DataError(f"{folder}: cannot list ({error.strerror or error})") from None


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder``, at any depth, skipping hidden files and folders."""
    found = []
    for top, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [Path(top) / name for name in sorted(names) if not name.startswith(".")]
    return found


def _split_layout(root: Path) -> list[tuple[Path, int | None]] | None:
    """The split folders of ``root`` when it is laid out as train/val/test, else None."""
    entries = [entry for entry in _visible(root) if entry.is_dir()]
    names = {entry.name for entry in entries}
    if "train" not in names or not names <= set(SPLIT_FOLDERS):
        return None
    if not any(entry.is_dir() for entry in _visible(root / "train")):
        return None  # 'train' holds images: it is a class named train
    return [(entry, SPLIT_FOLDERS[entry.name]) for entry in entries]
