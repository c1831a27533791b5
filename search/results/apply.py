"""``cropsearch apply``: a policy's crops of one dataset split as PNG files plus a manifest.

The crops are cut by the search's own code (``policy.windows`` and ``crops.cut``), keyed by
each sample's index in its split, so train-mode crops with seed S and epoch E are those a trial
with seed S trained on in epoch E. Files go to ``OUT/<class>/<index>.png`` (the layout of
``folder:DIR`` data and ``keras.utils.image_dataset_from_directory``) and ``OUT/manifest.csv``
says where each came from.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from search.crop.policy import CropPolicy, PolicyError
from search.safe_yaml import clip, load_yaml_text
from search.space import BOX_FREE_KINDS

if TYPE_CHECKING:
    from search.data import DataReport, Dataset

Split = Literal["train", "val", "test"]
MANIFEST = "manifest.csv"
COLUMNS = (
    "file", "source", "label", "label_index",
    "box_x_min", "box_y_min", "box_x_max", "box_y_max",
    "window_x_min", "window_y_min", "window_x_max", "window_y_max",
)  # fmt: skip
#: Samples cut per ``crops.cut`` call (bounded memory for large splits).
CHUNK = 256


class ApplyError(ValueError):
    """The crops cannot be written (the CLI prints one line and exits with code 2)."""


@dataclass(frozen=True)
class Applied:
    """What :func:`write_crops` wrote."""

    folder: Path
    manifest: Path
    written: int


def class_folders(class_names: tuple[str, ...]) -> list[str]:
    """A safe, distinct folder name per class: characters other than letters, digits, ``-``,
    ``_`` and ``.`` become ``_``; a clash or an empty name gets the class index appended."""
    folders: list[str] = []
    for index, name in enumerate(class_names):
        folder = re.sub(r"[^\w.-]", "_", name).strip(".") or "class"
        if folder in folders:
            folder = f"{folder}_{index}"
        folders.append(folder)
    return folders


def skipped_summary(report: DataReport) -> str:
    """One line counting the samples loading skipped, by reason (as ``cropsearch data``)."""
    if report.n_skipped == 0:
        return "skipped 0 samples while loading"
    reasons = sorted(report.skipped.items(), key=lambda item: (-item[1], item[0]))
    return f"skipped {report.n_skipped} samples while loading: " + ", ".join(
        f"{reason} {count}" for reason, count in reasons
    )


def write_crops(
    policy: CropPolicy,
    dataset: Dataset,
    out: Path,
    split: Split = "val",
    training: bool = False,
    seed: int = 0,
    epoch: int = 0,
    progress: bool = True,
) -> Applied:
    """Crop every sample of ``split`` with ``policy`` into PNG files under ``out``.

    Args:
        policy: the crop policy.
        dataset: the loaded dataset (its bad samples already skipped and counted).
        out: a new or empty folder.
        split: which split to crop.
        training: train-mode windows (keyed by ``seed``, ``epoch`` and sample index).
        seed: seed of the train-mode randomness.
        epoch: epoch of the train-mode randomness.
        progress: show a progress bar.
    Raises:
        ApplyError: ``out`` is not empty or not writable, or the policy needs boxes the data
            does not have.
    """
    from search.crop.cut import cut  # TensorFlow: only once there is something to cut

    samples = getattr(dataset, split)
    if policy.kind not in BOX_FREE_KINDS and not dataset.has_boxes:
        raise ApplyError(f"policy kind '{policy.kind}' needs object boxes; {dataset.spec} has none")
    folders = class_folders(dataset.class_names)
    _prepare(out, folders)
    index = np.arange(len(samples))
    windows = policy.windows(samples.sizes, samples.boxes, training, seed, epoch, index)
    manifest = out / MANIFEST
    try:
        with manifest.open("w", newline="") as file, _bar(progress, len(samples)) as advance:
            writer = csv.writer(file)
            writer.writerow(COLUMNS)
            for start in range(0, len(samples), CHUNK):
                part = slice(start, start + CHUNK)
                crops = cut(
                    samples.images[part],
                    windows[part],
                    np.arange(len(index[part])),
                    policy.size,
                    policy.fit,
                    policy.interpolation,
                    samples.sizes[part],
                )
                for i, crop in zip(index[part], crops, strict=True):
                    label = int(samples.labels[i])
                    name = f"{folders[label]}/{split}-{i:06d}.png"
                    Image.fromarray(crop).save(out / name, compress_level=1)
                    writer.writerow(
                        [
                            name,
                            f"{split}/{i}",
                            dataset.class_names[label],
                            label,
                            *(_number(v) for v in samples.boxes[i]),
                            *(_number(v) for v in windows[i]),
                        ]
                    )
                advance(len(crops))
    except OSError as error:
        raise ApplyError(f"cannot write into {out}: {error.strerror}") from None
    return Applied(out, manifest, len(samples))


def _number(value: float) -> str:
    return f"{float(value):.4f}".rstrip("0").rstrip(".")


def _prepare(out: Path, folders: list[str]) -> None:
    if out.exists() and not out.is_dir():
        raise ApplyError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ApplyError(f"--out {out} is not empty (crops go to a new or empty folder)")
    try:
        for folder in folders:
            (out / folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ApplyError(f"cannot create {out}: {error.strerror}") from None


@contextmanager
def _bar(show: bool, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar (crops written / total); a no-op when ``show`` is False."""
    if not show:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("cropping"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as bar:
        task = bar.add_task("crops", total=total)
        yield lambda n: bar.advance(task, n)


def write_preview(
    policy: CropPolicy,
    dataset: Dataset,
    data: str,
    output: Path,
    modes: tuple[str, ...] = ("train", "eval"),
    n: int = 16,
    seed: int = 0,
) -> tuple[Path, int]:
    """Draw ``policy``'s crops (in ``modes``) of the first ``n`` validation samples into the
    PNG ``output``, without training; returns the file and the samples drawn. ``data``: the
    dataset's spec, as the user gave it."""
    from search.results.crop_grid import crop_grid
    from search.results.pictures import save_picture

    if len(dataset.val) == 0:
        raise ApplyError(f"--data '{data}' has no validation samples to show")
    if policy.kind not in BOX_FREE_KINDS and not dataset.has_boxes:
        usable = ", ".join(BOX_FREE_KINDS)
        raise ApplyError(f"--data '{data}' has no boxes for kind {policy.kind}; use {usable}")
    samples = dataset.val.take(slice(0, n))
    picture = crop_grid(policy, samples, dataset.class_names, seed=seed, modes=modes)
    try:
        path = save_picture(picture, output)
    except OSError as error:
        raise ApplyError(f"cannot write {output}: {error}") from None
    return path, len(samples)


def policy_with(fields: dict[str, Any], settings: Sequence[str]) -> CropPolicy:
    """``fields`` (a policy file's, maybe none) with each ``FIELD=VALUE`` of ``settings``
    (``--set``, values read as YAML) over them, as a checked policy; a bad setting is one
    line naming it."""
    for item in settings:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise ApplyError(f"--set '{clip(item)}': expected FIELD=VALUE, e.g. --set context=0.3")
        value = load_yaml_text(text, f"--set '{item}'")
        try:
            CropPolicy(**{name: value})  # check this field alone, to name the flag at fault
        except PolicyError as error:
            raise PolicyError(f"--set '{clip(item)}': {error}") from None
        fields = {**fields, name: value}
    return CropPolicy.from_dict(fields)
