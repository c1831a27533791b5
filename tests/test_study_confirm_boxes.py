"""Test-time box levels: disturbed boxes hit their mean IoU, stay inside their images, and
are described."""

from __future__ import annotations

import numpy as np
import pytest

from search.crop.geometry import box_iou, crop_windows, noise_for_iou, noisy_boxes
from search.crop.policy import CropPolicy
from search.data import load_dataset
from search.study.confirm.boxes import BOX_LEVELS, box_levels


def test_box_noise_zero_leaves_boxes_and_windows_alone() -> None:
    boxes = np.array([[10.0, 10.0, 30.0, 40.0], [50.0, 5.0, 90.0, 25.0]])
    sizes = np.array([[96, 96], [96, 96]])
    assert np.array_equal(noisy_boxes(boxes, sizes, 0.0, 3), boxes)
    plain = CropPolicy(kind="object", context=0.25)
    noisy = CropPolicy(kind="object", context=0.25, box_noise=0.3)
    assert np.allclose(
        crop_windows(plain, sizes, boxes, training=True, seed=1),
        crop_windows(noisy, sizes, boxes, training=False, seed=1),
    )  # eval never disturbs the box
    moved = crop_windows(noisy, sizes, boxes, training=True, seed=1)
    assert not np.allclose(moved, crop_windows(plain, sizes, boxes, training=True, seed=1))
    assert np.array_equal(moved, crop_windows(noisy, sizes, boxes, training=True, seed=1))
    assert not np.array_equal(moved, crop_windows(noisy, sizes, boxes, training=True, seed=2))


def test_disturbed_boxes_stay_inside_their_images() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 70, (500, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 26, (500, 2))], axis=1)
    sizes = np.full((500, 2), 96)
    moved = noisy_boxes(boxes, sizes, 0.5, 7)
    assert (moved[:, :2] >= 0).all() and (moved[:, 2:] <= 96).all()
    assert (moved[:, 2:] > moved[:, :2]).all()
    assert box_iou(boxes, boxes) == pytest.approx(np.ones(500))


@pytest.mark.parametrize("target", [0.9, 0.75, 0.5])
def test_noise_levels_hit_their_mean_iou(target: float) -> None:
    data = load_dataset("shapes:train=24,val=24,test=200")
    noise, measured = noise_for_iou(data.test.boxes, data.test.sizes, target, 5)
    assert noise > 0
    iou = box_iou(data.test.boxes, noisy_boxes(data.test.boxes, data.test.sizes, noise, 5))
    assert iou.mean() == pytest.approx(measured)
    assert abs(measured - target) <= 0.05


def test_box_levels_describe_what_they_measured() -> None:
    data = load_dataset("shapes:train=24,val=24,test=100")
    boxes, described = box_levels(data, seed=0)
    assert set(boxes) == set(BOX_LEVELS)
    assert boxes["none"] is None
    for name, target in BOX_LEVELS.items():
        if target is not None:
            assert abs((described[name]["mean_iou"] or 0) - target) <= 0.05
    assert described["exact"]["mean_iou"] == 1.0
