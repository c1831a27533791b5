"""Per-class test accuracy and the confusion matrix of a trained run (numpy only)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
