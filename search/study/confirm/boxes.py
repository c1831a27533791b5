"""Test-time box levels: the test split's annotated boxes disturbed like a detector's (to a
target mean IoU with them), none (the full image), and the boxes the study chose for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from search.data.boxes import LEVELS, BoxSource, InferenceBoxes, level_seeds
from search.settings import DEFAULT_BOXES

if TYPE_CHECKING:
    import numpy as np

    from search.data import Dataset

#: Test-time box levels: target mean IoU with the true box (None: no box, full image).
BOX_LEVELS: dict[str, float | None] = {
    level.name: level.iou for level in LEVELS if level.kind in ("iou", "none")
}


def box_levels(
    data: Dataset, seed: int, boxes: str = DEFAULT_BOXES, others: Sequence[InferenceBoxes] = ()
) -> tuple[dict[str, np.ndarray | None], dict[str, Any]]:
    """Test-time boxes per level and what each level is: ``{name: {"target_iou", "noise",
    "mean_iou"}}``. With exact boxes the test score is the ``exact`` level; otherwise it is
    the ``boxes`` level (``data`` is scored with them), and ``exact`` is one more level.
    ``others``: the other box sources of a multi-objective study, each a level too."""
    import numpy as np

    from search.crop.geometry import box_iou, noise_for_iou, noisy_boxes

    source = BoxSource.parse(boxes)
    annotated, sizes = data.test.annotated_boxes, data.test.sizes
    level_seed = level_seeds(seed)["test"]
    test_boxes: dict[str, np.ndarray | None] = {}
    described: dict[str, dict[str, float | None]] = {
        "exact": {"target_iou": 1.0, "noise": 0.0, "mean_iou": 1.0}
    }
    if not source.exact:
        test_boxes["exact"] = annotated
    for name, target in BOX_LEVELS.items():
        if target is None:
            test_boxes[name] = None
            described[name] = {"target_iou": None, "noise": None, "mean_iou": None}
            continue
        noise, measured = noise_for_iou(annotated, sizes, target, level_seed)
        test_boxes[name] = noisy_boxes(annotated, sizes, noise, level_seed)
        described[name] = {"target_iou": target, "noise": noise, "mean_iou": measured}
    found = [(source, data.test.boxes), *((b.source, b.test) for b in others)]
    for level, found_boxes in found:
        if level.name in described:
            continue  # an iou:X of another X, or a detector's boxes, is a level of its own
        hit = np.isfinite(found_boxes).all(axis=1)
        mean = float(box_iou(annotated[hit], found_boxes[hit]).mean()) if hit.any() else None
        test_boxes[level.name] = found_boxes
        described[level.name] = {"target_iou": level.iou, "noise": None, "mean_iou": mean}
    return test_boxes, described
