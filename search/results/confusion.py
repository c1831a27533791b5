"""Per-class test accuracy and the confusion matrix of a trained run, and its picture."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from search.results.pictures import centred_text, font, line_height, turned_text

#: matplotlib's "Blues" at 9 even steps: a cell's colour by its share of the row.
BLUES = np.array(
    [
        [247, 251, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
        [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107],
    ],
    dtype=np.float64,
)  # fmt: skip
#: Characters of a class name shown beside the matrix.
LABEL_CHARACTERS = 12
#: Counts are written in the cells up to this many classes.
COUNTED_CLASSES = 30
GAP = 8


@dataclass(frozen=True)
class ClassReport:
    """Rows are true classes, columns predicted ones, in ``classes`` order."""

    classes: list[str]
    matrix: np.ndarray

    @classmethod
    def of(cls, predictions: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> ClassReport:
        """Count each (true, predicted) pair."""
        matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
        return cls(list(classes), matrix)

    def accuracies(self) -> dict[str, float]:
        """Each class's share of its samples predicted right (classes without samples left out)."""
        totals = self.matrix.sum(axis=1)
        return {
            name: float(self.matrix[i, i] / totals[i])
            for i, name in enumerate(self.classes)
            if totals[i] > 0
        }

    def metrics(self) -> dict[str, float]:
        """``test_accuracy.class.<name>`` per class, named as MLflow allows."""
        return {f"test_accuracy.class.{metric_name(k)}": v for k, v in self.accuracies().items()}

    def to_json(self) -> str:
        """Classes, matrix (true x predicted counts) and per-class accuracy."""
        document = {
            "classes": self.classes,
            "rows": "true class",
            "columns": "predicted class",
            "matrix": self.matrix.tolist(),
            "accuracy": self.accuracies(),
        }
        return json.dumps(document, indent=1) + "\n"


def metric_name(name: str) -> str:
    """``name`` with the characters an MLflow metric key may not hold replaced by ``_``."""
    return re.sub(r"[^\w\-. /]", "_", name) or "_"


def confusion_picture(classes: Sequence[str], matrix: np.ndarray) -> Image.Image:
    """The confusion matrix as a picture: rows true classes, columns predicted, each cell
    shaded by its share of the row and holding its count (up to 30 classes); class names
    (their first 12 characters) on the left and, turned, below."""
    n = len(classes)
    cell = max(6, min(28, 840 // max(n, 1)))
    face = font()
    line = line_height(face)
    labels = [str(c)[:LABEL_CHARACTERS] for c in classes]
    label_width = int(max((face.getlength(t) for t in labels), default=0)) + 4
    left = GAP + line + label_width  # the "true" title, then the names
    side = n * cell
    width, height = left + side + GAP, GAP + side + label_width + line + GAP
    totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    shares = matrix / totals
    steps = np.linspace(0.0, 1.0, len(BLUES))
    colours = np.stack(
        [np.interp(shares, steps, BLUES[:, channel]) for channel in range(3)], axis=-1
    )
    cells = np.repeat(np.repeat(np.rint(colours).astype(np.uint8), cell, 0), cell, 1)
    picture = Image.new("RGB", (width, height), "white")
    picture.paste(Image.fromarray(cells), (left, GAP))
    draw = ImageDraw.Draw(picture)
    for i, text in enumerate(labels):
        middle = GAP + i * cell + cell / 2
        draw.text((left - 4 - face.getlength(text), middle - line / 2), text, "black", face)
        below = (left + i * cell + cell / 2 - line / 2, GAP + side)
        turned_text(picture, text, below, label_width, face, line)
    if n <= COUNTED_CLASSES:
        for (row, col), count in np.ndenumerate(matrix):
            colour = "white" if shares[row, col] > 0.5 else "black"
            centre = left + col * cell + cell / 2
            centred_text(draw, [str(count)], centre, GAP + row * cell + cell / 2 - line / 2,
                         face, line, colour)  # fmt: skip
    centred_text(draw, ["predicted"], left + side / 2, GAP + side + label_width, face, line)
    length = int(face.getlength("true")) + 4
    turned_text(picture, "true", (GAP, GAP + side / 2 - length / 2), length, face, line)
    return picture
