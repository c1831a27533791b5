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


def test_box_iou_table() -> None:
    a = [[0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 2, 2], [1, 1, 1, 3]]
    b = [[0, 0, 4, 4], [2, 2, 6, 6], [5, 0, 9, 4], [0, 5, 4, 9], [2, 2, 4, 4], [1, 1, 1, 3]]
    # the same box; two 4x4 boxes sharing a 2x2 corner (4 / (16 + 16 - 4)); 1 px apart
    # sideways, then vertically; touching at a corner; two boxes without area
    expected = [1.0, 4 / 28, 0.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(box_iou(a, b), expected)
    # a ratio of areas: the same in hundredths of a pixel (unions below 1)
    np.testing.assert_allclose(box_iou(np.array(a) / 100, np.array(b) / 100), expected)


def test_disturbed_boxes_move_and_scale_within_the_noise() -> None:
    """The centre moves by at most ``noise`` x the box's width (height), each side scales by a
    factor in [exp(-noise), exp(noise)], both spread over their whole range around 0."""
    n, noise = 2000, 0.2
    boxes = np.tile([[400.0, 475.0, 500.0, 525.0]], (n, 1))  # 100 x 50, centre (450, 500)
    moved = noisy_boxes(boxes, np.full((n, 2), 1000), noise, 11)  # far from the image's edges
    shifts = [
        ((moved[:, 0] + moved[:, 2]) / 2 - 450) / 100,
        ((moved[:, 1] + moved[:, 3]) / 2 - 500) / 50,
    ]
    log_scales = [
        np.log((moved[:, 2] - moved[:, 0]) / 100),
        np.log((moved[:, 3] - moved[:, 1]) / 50),
    ]
    for values in (*shifts, *log_scales):
        assert np.abs(values).max() <= noise + 1e-9
        assert values.min() < -0.9 * noise and values.max() > 0.9 * noise
        assert abs(values.mean()) < 0.1 * noise  # centred on the box as given


def test_zero_noise_keeps_even_degenerate_boxes() -> None:
    boxes = np.array([[10.0, 10.0, 10.0, 40.0], [95.0, 5.0, 96.0, 5.0]])  # no width; no height
    assert np.array_equal(noisy_boxes(boxes, np.full((2, 2), 96), 0.0, 3), boxes)


def test_noise_for_iou_measures_what_noisy_boxes_give() -> None:
    boxes = np.array([[10.0, 10.0, 30.0, 40.0], [50.0, 5.0, 90.0, 25.0], [0.0, 0.0, 8.0, 8.0]])
    sizes = np.full((3, 2), 96)
    noise, measured = noise_for_iou(boxes, sizes, 0.75, 2)
    assert measured == pytest.approx(box_iou(boxes, noisy_boxes(boxes, sizes, noise, 2)).mean())
    assert abs(measured - 0.75) < 0.05
