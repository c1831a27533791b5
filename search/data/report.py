"""What a loaded dataset holds, for people: a text report and a preview grid (Pillow only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from search.data.dataset import Dataset, Samples
from search.data.splits import SPLITS

BOX_COLOR = (0, 230, 0)
TILE = 128


def format_report(dataset: Dataset) -> str:
    """Samples per class and split, box sizes (image sizes for box-free data), skipped samples
    with reasons, clipped boxes, and how the data was read; one fact per line, ending in a
    newline."""
    splits = {name: getattr(dataset, name) for name in SPLITS}
    lines = [f"data: {dataset.spec}", f"fingerprint: {dataset.fingerprint}"]
    totals = ", ".join(f"{name} {len(samples)}" for name, samples in splits.items())
    lines.append(f"samples: {totals}; {dataset.n_classes} classes")
    height, width = dataset.train.images.shape[1:3]
    lines.append(f"canvas: {height}x{width} (images zero-padded to the largest)")
    lines += _class_table(dataset, splits)
    lines += _box_lines(splits, dataset.has_boxes)
    report = dataset.report
    lines.append(f"skipped: {report.n_skipped}")
    for reason, count in sorted(report.skipped.items(), key=lambda item: (-item[1], item[0])):
        examples = report.examples.get(reason, [])
        suffix = f"  e.g. {'; '.join(examples)}" if examples else ""
        lines.append(f"  {reason}: {count}{suffix}")
    if dataset.has_boxes:
        lines.append(f"clipped boxes: {report.clipped_boxes} (partly outside the image, clipped)")
    lines += report.notes
    return "\n".join(lines) + "\n"


def _class_table(dataset: Dataset, splits: dict[str, Samples]) -> list[str]:
    counts = np.zeros((dataset.n_classes, len(SPLITS)), dtype=np.int64)
    for column, samples in enumerate(splits.values()):
        counts[:, column] = np.bincount(samples.labels, minlength=dataset.n_classes)[
            : dataset.n_classes
        ]
    names = [*dataset.class_names, "total"]
    width = max(8, *(len(name) for name in names))
    rows = [*counts, counts.sum(axis=0)]
    lines = ["samples per class:", f"  {'class':<{width}} " + "".join(f"{s:>8}" for s in SPLITS)]
    for name, row in zip(names, rows, strict=True):
        lines.append(f"  {name:<{width}} " + "".join(f"{int(v):>8}" for v in row))
    return lines


def _box_lines(splits: dict[str, Samples], has_boxes: bool) -> list[str]:
    boxes = np.concatenate([samples.boxes for samples in splits.values()]).reshape(-1, 4)
    if len(boxes) == 0:
        return ["box sides: no boxes"]
    sides = {
        "width": boxes[:, 2] - boxes[:, 0],
        "height": boxes[:, 3] - boxes[:, 1],
    }
    sides["shorter side"] = np.minimum(sides["width"], sides["height"])
    title = "box sides" if has_boxes else "boxes: none (box-free data); image sides"
    lines = [f"{title} in canvas pixels (min / median / max):"]
    for name, values in sides.items():
        low, mid, high = np.min(values), np.median(values), np.max(values)
        lines.append(f"  {name}: {low:.1f} / {mid:.1f} / {high:.1f}")
    return lines


def preview_grid(dataset: Dataset, path: str | Path, n: int = 16, split: str = "train") -> Path:
    """Draw ``n`` samples of ``split`` (spread evenly over it) with their boxes (none for
    box-free data) and labels into a PNG grid at ``path``; return the path."""
    samples: Samples = getattr(dataset, split)
    chosen = np.unique(np.linspace(0, len(samples) - 1, num=min(n, len(samples))).astype(int))
    columns = max(1, min(4, len(chosen)))
    rows = max(1, -(-len(chosen) // columns))
    caption = 14
    grid = Image.new("RGB", (columns * TILE, rows * (TILE + caption)), (40, 40, 40))
    draw = ImageDraw.Draw(grid)
    for slot, i in enumerate(chosen):
        height, width = (int(v) for v in samples.sizes[i])
        scale = TILE / max(height, width)
        image = Image.fromarray(samples.images[i, :height, :width])
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(
            size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR
        )
        left, top = (slot % columns) * TILE, (slot // columns) * (TILE + caption)
        grid.paste(image, (left, top))
        if samples.has_boxes:
            x0, y0, x1, y1 = (float(v) * scale for v in samples.boxes[i])
            draw.rectangle(
                (left + x0, top + y0, left + max(x0, x1 - 1), top + max(y0, y1 - 1)),
                outline=BOX_COLOR,
            )
        label = dataset.class_names[int(samples.labels[i])]
        draw.text((left + 2, top + TILE + 1), label[:20], fill=(255, 255, 255))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out, format="PNG")
    return out
