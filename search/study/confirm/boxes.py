"""Test-time box levels: the test split's boxes disturbed like a detector's (to a target mean
IoU with the true box), or none (the full image)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from search.crop.geometry import noise_for_iou, noisy_boxes
from search.settings import derive_seed

if TYPE_CHECKING:
    import numpy as np

    from search.data import Dataset

#: Test-time box levels: target mean IoU with the true box (None: no box, full image).
BOX_LEVELS: dict[str, float | None] = {"iou0.9": 0.9, "iou0.75": 0.75, "iou0.5": 0.5, "none": None}


def box_levels(data: Dataset, seed: int) -> tuple[dict[str, np.ndarray | None], dict[str, Any]]:
    """Test-time boxes per level (disturbed to a target mean IoU, or none) and what each
    level is: ``{name: {"target_iou", "noise", "mean_iou"}}``."""
    boxes, sizes = data.test.boxes, data.test.sizes
    level_seed = derive_seed(seed, "boxes")
    test_boxes: dict[str, np.ndarray | None] = {}
    described: dict[str, dict[str, float | None]] = {
        "exact": {"target_iou": 1.0, "noise": 0.0, "mean_iou": 1.0}
    }
    for name, target in BOX_LEVELS.items():
        if target is None:
            test_boxes[name] = None
            described[name] = {"target_iou": None, "noise": None, "mean_iou": None}
            continue
        noise, measured = noise_for_iou(boxes, sizes, target, level_seed)
        test_boxes[name] = noisy_boxes(boxes, sizes, noise, level_seed)
        described[name] = {"target_iou": target, "noise": noise, "mean_iou": measured}
    return test_boxes, described
