"""Crop-window maths and policy validation: pure numpy, no TensorFlow.

Windows are pixel edges ``(x_min, y_min, x_max, y_max)``: an image of width W and height H is
``(0, 0, W, H)``. Image sizes are given as (height, width). Expected windows in the tables were
worked out by hand from the semantics table in DESIGN.md; each row says how.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from search.crop.geometry import (
    ASPECT_SPREAD,
    EDGE_TOLERANCE,
    box_coverage,
    crop_and_resize_boxes,
    letterbox_frames,
    normalized_to_pixels,
    pixels_to_normalized,
    sample_spans,
    spans_to_boxes,
    uniforms,
)
from search.crop.kinds import KINDS, OBJECT_KINDS, RANDOM_KINDS
from search.crop.policy import BOUNDS, CropPolicy

TOL = 1e-9

# (id, policy fields, image (h, w), box or None, expected eval window). Deterministic kinds
# (full, center, object without jitter) must give the same window in train mode.
WINDOW_TABLE: list[
    tuple[
        str,
        dict[str, Any],
        tuple[int, int],
        tuple[float, ...] | None,
        tuple[float, float, float, float],
    ]
] = [
    # full: the whole image, edges not centres: (0, 0, W, H).
    ("full", {"kind": "full"}, (60, 80), None, (0, 0, 80, 60)),
    # full ignores border and fit (fit shapes pixels, not the window).
    (
        "full-pad-letterbox",
        {"kind": "full", "border": "pad", "fit": "letterbox"},
        (60, 80),
        (1, 2, 3, 4),
        (0, 0, 80, 60),
    ),
    # center, 80x60 image, aspect 1: the largest square is 60x60, centred at (40, 30).
    ("center", {"kind": "center"}, (60, 80), None, (10, 0, 70, 60)),
    # fraction 0.5 halves both sides: 30x30 about (40, 30).
    ("center-half", {"kind": "center", "fraction": 0.5}, (60, 80), None, (25, 15, 55, 45)),
    # aspect 2 > image aspect 4/3: full width 80, height 80 / 2 = 40, centred vertically.
    ("center-wide", {"kind": "center", "aspect_ratio": 2.0}, (60, 80), None, (0, 10, 80, 50)),
    # aspect 0.5 < 4/3: full height 60, width 30; x0.5 -> 15x30 about (40, 30).
    (
        "center-tall",
        {"kind": "center", "aspect_ratio": 0.5, "fraction": 0.5},
        (60, 80),
        None,
        (32.5, 15, 47.5, 45),
    ),
    # tall 50x100 image: largest square 50x50, x0.8 -> 40x40 about (25, 50).
    ("center-tall-image", {"kind": "center", "fraction": 0.8}, (100, 50), None, (5, 30, 45, 70)),
    # border and fit do not move image-level windows.
    (
        "center-pad-letterbox",
        {"kind": "center", "border": "pad", "fit": "letterbox"},
        (60, 80),
        None,
        (10, 0, 70, 60),
    ),
    # random: eval window = center's window (30x30 about (40, 30)).
    ("random", {"kind": "random", "fraction": 0.5}, (60, 80), None, (25, 15, 55, 45)),
    (
        "random-pad-letterbox",
        {"kind": "random", "fraction": 0.5, "border": "pad", "fit": "letterbox"},
        (60, 80),
        None,
        (25, 15, 55, 45),
    ),
    # random_resized eval: centred window of the policy's aspect whose area is the mean train
    # area (1 + fraction) / 2 x image area, at most the largest such window. 80x60, fraction
    # 0.5: mean area 0.75 * 4800 = 3600 = the largest square 60x60.
    (
        "random_resized",
        {"kind": "random_resized", "fraction": 0.5},
        (60, 80),
        None,
        (10, 0, 70, 60),
    ),
    # 100x100, fraction 0.08: mean area 0.54 * 10000 = 5400, side sqrt(5400) about (50, 50).
    (
        "random_resized-small",
        {"kind": "random_resized", "fraction": 0.08},
        (100, 100),
        None,
        (
            50 - math.sqrt(5400) / 2,
            50 - math.sqrt(5400) / 2,
            50 + math.sqrt(5400) / 2,
            50 + math.sqrt(5400) / 2,
        ),
    ),
    # fraction 1: mean area 4800 > the largest square 3600, so capped at 60x60.
    (
        "random_resized-capped",
        {"kind": "random_resized", "fraction": 1.0, "border": "pad", "fit": "letterbox"},
        (60, 80),
        None,
        (10, 0, 70, 60),
    ),
    # object, box 20x40 at (20, 30): context 0 -> the box; aspect 1 grows the width to 40
    # about the centre (30, 50).
    ("object", {"kind": "object"}, (100, 100), (20, 30, 40, 70), (10, 30, 50, 70)),
    # context 0.5 adds 0.5 * 20 = 10 left/right and 0.5 * 40 = 20 top/bottom: (10, 10, 50, 90)
    # 40x80; aspect 1 -> 80x80 about (30, 50) = (-10, 10, 70, 90); shift moves it right by 10.
    (
        "object-context-shift",
        {"kind": "object", "context": 0.5},
        (100, 100),
        (20, 30, 40, 70),
        (0, 10, 80, 90),
    ),
    # the same with border=pad keeps the window where it is.
    (
        "object-context-pad",
        {"kind": "object", "context": 0.5, "border": "pad"},
        (100, 100),
        (20, 30, 40, 70),
        (-10, 10, 70, 90),
    ),
    # aspect 0.5: the 40x80 grown box already has w/h = 0.5, so nothing more is added.
    (
        "object-tall",
        {"kind": "object", "context": 0.5, "aspect_ratio": 0.5},
        (100, 100),
        (20, 30, 40, 70),
        (10, 10, 50, 90),
    ),
    # context -0.25 shrinks by 5 left/right and 10 top/bottom: (25, 40, 35, 60) 10x20; aspect 1
    # -> 20x20 about (30, 50).
    (
        "object-negative-context",
        {"kind": "object", "context": -0.25},
        (100, 100),
        (20, 30, 40, 70),
        (20, 40, 40, 60),
    ),
    # 100x50 image, box 80x40 at (10, 5), context 0.25 -> (-10, -5, 110, 55) 120x60; aspect 1
    # -> 120x120 about (50, 25). It cannot fit: shift shrinks it by min(100, 50) / 120 to 50x50
    # about (50, 25), which fits as it is.
    (
        "object-shrink-shift",
        {"kind": "object", "context": 0.25},
        (50, 100),
        (10, 5, 90, 45),
        (25, 0, 75, 50),
    ),
    (
        "object-shrink-pad",
        {"kind": "object", "context": 0.25, "border": "pad"},
        (50, 100),
        (10, 5, 90, 45),
        (-10, -35, 110, 85),
    ),
    # box 10x10 in the corner, context 1 -> (-10, -10, 20, 20); shift moves it to (0, 0).
    (
        "object-corner-shift",
        {"kind": "object", "context": 1.0, "fit": "letterbox"},
        (100, 100),
        (0, 0, 10, 10),
        (0, 0, 30, 30),
    ),
    (
        "object-corner-pad",
        {"kind": "object", "context": 1.0, "border": "pad", "fit": "letterbox"},
        (100, 100),
        (0, 0, 10, 10),
        (-10, -10, 20, 20),
    ),
    # 120x80 image, box 20x20 at the right edge, aspect 2 -> 40x20 about (110, 40) =
    # (90, 30, 130, 50); shift moves it left by 10.
    (
        "object-wide-edge",
        {"kind": "object", "aspect_ratio": 2.0},
        (80, 120),
        (100, 30, 120, 50),
        (80, 30, 120, 50),
    ),
    # object_random eval = the object window: as object-context-shift / -pad.
    (
        "object_random-shift",
        {"kind": "object_random", "context": 0.5, "fraction": 0.3},
        (100, 100),
        (20, 30, 40, 70),
        (0, 10, 80, 90),
    ),
    (
        "object_random-pad",
        {"kind": "object_random", "context": 0.5, "border": "pad", "fit": "letterbox"},
        (100, 100),
        (20, 30, 40, 70),
        (-10, 10, 70, 90),
    ),
]


def _windows(policy: CropPolicy, size: tuple[int, int], box: Any, **kwargs: Any) -> np.ndarray:
    boxes = None if box is None else [box]
    return policy.windows([size], boxes, **kwargs)


@pytest.mark.parametrize(
    ("fields", "size", "box", "expected"),
    [row[1:] for row in WINDOW_TABLE],
    ids=[row[0] for row in WINDOW_TABLE],
)
def test_eval_window_table(
    fields: dict[str, Any], size: tuple[int, int], box: Any, expected: tuple[float, ...]
) -> None:
    policy = CropPolicy(**fields)
    np.testing.assert_allclose(_windows(policy, size, box)[0], expected, atol=TOL)
    deterministic = policy.kind not in RANDOM_KINDS and policy.jitter == 0
    if deterministic:
        np.testing.assert_allclose(
            _windows(policy, size, box, training=True, seed=3, epoch=2)[0], expected, atol=TOL
        )


def test_every_kind_border_and_fit_has_table_rows() -> None:
    policies = [CropPolicy(**row[1]) for row in WINDOW_TABLE]
    assert {p.kind for p in policies} >= set(KINDS)
    assert {p.border for p in policies} == {"shift", "pad"}
    assert {p.fit for p in policies} == {"stretch", "letterbox"}
    for border in ("shift", "pad"):
        assert {p.kind for p in policies if p.border == border} >= set(OBJECT_KINDS)


# (id, window, output (h, w), expected grown window, expected frame (left, top, right, bottom)).
LETTERBOX_TABLE = [
    # 80x60 window into a square: grown to 80x80 about (40, 30); it fills the full width and
    # 60/80 = 0.75 of the height, centred: bars of 0.125 top and bottom.
    ("wide-into-square", (0, 0, 80, 60), (32, 32), (0, -10, 80, 70), (0, 0.125, 1, 0.875)),
    # 30x60 window into a square: grown to 60x60 about (15, 30); it fills half the width.
    ("tall-into-square", (0, 0, 30, 60), (16, 16), (-15, 0, 45, 60), (0.25, 0, 0.75, 1)),
    # a window that already has the output's aspect (2:1 into 24x48) has no bars.
    ("same-aspect", (10, 10, 50, 30), (24, 48), (10, 10, 50, 30), (0, 0, 1, 1)),
    # the wide window away from the origin: grown to 80x80 about its centre (50, 50).
    ("wide-off-origin", (10, 20, 90, 80), (32, 32), (10, 10, 90, 90), (0, 0.125, 1, 0.875)),
]


@pytest.mark.parametrize(
    ("window", "out", "grown", "frame"),
    [row[1:] for row in LETTERBOX_TABLE],
    ids=[r[0] for r in LETTERBOX_TABLE],
)
def test_letterbox_frames_table(
    window: tuple[float, ...],
    out: tuple[int, int],
    grown: tuple[float, ...],
    frame: tuple[float, ...],
) -> None:
    got_grown, got_frame = letterbox_frames(np.array([window], float), out)
    np.testing.assert_allclose(got_grown[0], grown, atol=TOL)
    np.testing.assert_allclose(got_frame[0], frame, atol=TOL)


# --- train-mode invariants of the random kinds -------------------------------------------


def _sides(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return windows[:, 2] - windows[:, 0], windows[:, 3] - windows[:, 1]


def _inside(windows: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    h, w = sizes[:, 0], sizes[:, 1]
    return (
        (windows[:, 0] >= -TOL)
        & (windows[:, 1] >= -TOL)
        & (windows[:, 2] <= w + 1e-6)
        & (windows[:, 3] <= h + 1e-6)
    )


def _random_images(rng: np.random.Generator, n: int, low: int = 8, high: int = 600) -> np.ndarray:
    return rng.integers(low, high, size=(n, 2))


def _random_boxes(rng: np.random.Generator, sizes: np.ndarray) -> np.ndarray:
    """Boxes inside each image, from degenerate (zero width) to the whole image."""
    h, w = sizes[:, 0].astype(float), sizes[:, 1].astype(float)
    bw, bh = rng.uniform(0, 1, len(sizes)) * w, rng.uniform(0, 1, len(sizes)) * h
    x0, y0 = rng.uniform(0, 1, len(sizes)) * (w - bw), rng.uniform(0, 1, len(sizes)) * (h - bh)
    return np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)


def test_random_train_windows_keep_size_and_stay_inside() -> None:
    rng = np.random.default_rng(0)
    sizes = _random_images(rng, 500)
    for aspect, fraction in ((1.0, 0.5), (0.4, 1.0), (3.0, 0.2)):
        policy = CropPolicy(kind="random", fraction=fraction, aspect_ratio=aspect)
        train = policy.windows(sizes, training=True, seed=1)
        center = CropPolicy(kind="center", fraction=fraction, aspect_ratio=aspect).windows(sizes)
        # same size as the centre window, anywhere inside the image
        np.testing.assert_allclose(_sides(train), _sides(center), rtol=1e-12)
        assert _inside(train, sizes).all()
        assert not np.allclose(train, center)


def _check_random_area(
    windows: np.ndarray, sizes: np.ndarray, fraction: float, aspect: float
) -> None:
    w, h = _sides(windows)
    image_h, image_w = sizes[:, 0], sizes[:, 1]
    ratio = w / h
    assert (ratio >= aspect / ASPECT_SPREAD * (1 - 1e-9)).all()
    assert (ratio <= aspect * ASPECT_SPREAD * (1 + 1e-9)).all()
    assert _inside(windows, sizes).all()
    area = w * h / (image_w * image_h)
    assert (area <= 1 + 1e-9).all()
    # A draw too large for the image is shrunk (keeping its aspect) until it fits: then it
    # spans the full width or height and may fall below the area range.
    shrunk = np.isclose(w, image_w) | np.isclose(h, image_h)
    assert ((area >= fraction * (1 - 1e-9)) | shrunk).all()


@pytest.mark.parametrize(("fraction", "aspect"), [(0.08, 1.0), (0.5, 0.5), (0.9, 2.5)])
def test_random_resized_train_invariants(fraction: float, aspect: float) -> None:
    rng = np.random.default_rng(1)
    sizes = _random_images(rng, 2000)
    policy = CropPolicy(kind="random_resized", fraction=fraction, aspect_ratio=aspect)
    _check_random_area(policy.windows(sizes, training=True, seed=5), sizes, fraction, aspect)


def test_random_resized_draws_spread_over_the_ranges() -> None:
    sizes = np.full((4000, 2), 400)
    policy = CropPolicy(kind="random_resized", fraction=0.08)
    w, h = _sides(policy.windows(sizes, training=True, seed=0))
    area = w * h / 400**2
    assert area.min() < 0.1 and np.median(area) > 0.3
    log_ratio = np.log(w / h)
    assert abs(log_ratio.mean()) < 0.02
    assert log_ratio.max() > 0.9 * math.log(ASPECT_SPREAD)


def test_object_random_train_invariants() -> None:
    rng = np.random.default_rng(2)
    sizes = _random_images(rng, 2000, low=32)
    boxes = _random_boxes(rng, sizes)
    policy = CropPolicy(kind="object_random", fraction=0.3, min_object_covered=0.6, context=0.2)
    train = policy.windows(sizes, boxes, training=True, seed=4)
    fallback = np.all(np.isclose(train, policy.windows(sizes, boxes)), axis=1)
    drawn = ~fallback
    assert drawn.mean() > 0.5
    _check_random_area(train[drawn], sizes[drawn], 0.3, 1.0)
    assert (box_coverage(train[drawn], boxes[drawn]) >= 0.6 - 1e-9).all()


def test_object_random_falls_back_to_the_object_window() -> None:
    # A 200x50 box filling a wide image: windows of aspect <= 0.25 * 4/3 are at most 16.7 px
    # wide and cover < 10% of it, so every sample falls back to the eval window. That is the
    # box grown to aspect 0.25 (200x800 about (100, 25)), shrunk by 50 / 800 to fit: 12.5x50.
    policy = CropPolicy(kind="object_random", aspect_ratio=0.25, min_object_covered=0.5)
    sizes, boxes = np.array([[50, 200]] * 5), np.array([[0, 0, 200, 50]] * 5)
    train = policy.windows(sizes, boxes, training=True, seed=0)
    np.testing.assert_allclose(train, [[93.75, 0, 106.25, 50]] * 5, atol=TOL)


def test_object_jitter_moves_and_scales_by_at_most_jitter() -> None:
    rng = np.random.default_rng(3)
    sizes = _random_images(rng, 2000, low=32)
    boxes = _random_boxes(rng, sizes)
    jitter = 0.2
    policy = CropPolicy(kind="object", context=0.3, jitter=jitter, border="pad", aspect_ratio=1.5)
    evals = policy.windows(sizes, boxes)
    train = policy.windows(sizes, boxes, training=True, seed=9)
    (w, h), (ew, eh) = _sides(train), _sides(evals)
    np.testing.assert_allclose(w / h, 1.5, rtol=1e-9)
    scale = w / ew
    assert (scale >= 1 / (1 + jitter) - 1e-9).all() and (scale <= 1 + jitter + 1e-9).all()
    shift_x = (train[:, 0] + train[:, 2] - evals[:, 0] - evals[:, 2]) / 2
    shift_y = (train[:, 1] + train[:, 3] - evals[:, 1] - evals[:, 3]) / 2
    assert (np.abs(shift_x) <= jitter * ew + 1e-9).all()
    assert (np.abs(shift_y) <= jitter * eh + 1e-9).all()
    assert np.abs(scale - 1).max() > 0.1 and np.abs(shift_x / ew).max() > 0.1


# --- properties over many random images and boxes ----------------------------------------


def _random_policy(rng: np.random.Generator, kind: str, **fixed: Any) -> CropPolicy:
    fields: dict[str, Any] = {
        "kind": kind,
        "fraction": rng.uniform(*BOUNDS["fraction"]),
        "aspect_ratio": math.exp(rng.uniform(*np.log(BOUNDS["aspect_ratio"]))),
        "context": rng.uniform(*BOUNDS["context"]),
        "jitter": rng.uniform(*BOUNDS["jitter"]) if rng.uniform() < 0.5 else 0.0,
        "min_object_covered": rng.uniform(*BOUNDS["min_object_covered"]),
        "border": rng.choice(["shift", "pad"]),
        "fit": rng.choice(["stretch", "letterbox"]),
    }
    fields.update(fixed)
    return CropPolicy(**fields)


def test_windows_are_finite_and_have_area_for_every_kind() -> None:
    rng = np.random.default_rng(4)
    for _ in range(60):
        sizes = _random_images(rng, 50, low=1)
        boxes = _random_boxes(rng, sizes)
        for kind in KINDS:
            policy = _random_policy(rng, kind)
            for training in (False, True):
                windows = policy.windows(sizes, boxes, training=training, seed=1)
                assert windows.shape == (50, 4)
                assert np.isfinite(windows).all()
                w, h = _sides(windows)
                assert (w > 0).all() and (h > 0).all()


def test_pad_object_window_contains_the_box() -> None:
    rng = np.random.default_rng(5)
    for _ in range(100):
        sizes = _random_images(rng, 40)
        boxes = _random_boxes(rng, sizes)
        policy = _random_policy(
            rng, "object", border="pad", jitter=0.0, context=rng.uniform(0, BOUNDS["context"][1])
        )
        for training in (False, True):
            windows = policy.windows(sizes, boxes, training=training, seed=2)
            assert (windows[:, :2] <= boxes[:, :2] + 1e-9).all()
            assert (windows[:, 2:] >= boxes[:, 2:] - 1e-9).all()
        eval_random = CropPolicy(**{**policy.to_dict(), "kind": "object_random"})
        np.testing.assert_allclose(eval_random.windows(sizes, boxes), policy.windows(sizes, boxes))


def test_shift_window_lies_inside_and_shrinks_only_when_it_cannot_fit() -> None:
    rng = np.random.default_rng(6)
    for _ in range(100):
        sizes = _random_images(rng, 40)
        boxes = _random_boxes(rng, sizes)
        policy = _random_policy(rng, "object", border="shift")
        padded = CropPolicy(**{**policy.to_dict(), "border": "pad"})
        for training in (False, True):
            shifted = policy.windows(sizes, boxes, training=training, seed=3, epoch=1)
            wanted = padded.windows(sizes, boxes, training=training, seed=3, epoch=1)
            assert _inside(shifted, sizes).all()
            (w, h), (pw, ph) = _sides(shifted), _sides(wanted)
            fits = (pw <= sizes[:, 1]) & (ph <= sizes[:, 0])
            np.testing.assert_allclose(w[fits], pw[fits], rtol=1e-9)
            np.testing.assert_allclose(h[fits], ph[fits], rtol=1e-9)
            scale = np.minimum(sizes[:, 1] / pw, sizes[:, 0] / ph)
            np.testing.assert_allclose(w[~fits], (pw * scale)[~fits], rtol=1e-9)


@pytest.mark.parametrize("kind", ["center", "random", "object"])
def test_window_has_the_policy_aspect(kind: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        sizes = _random_images(rng, 40)
        boxes = _random_boxes(rng, sizes)
        policy = _random_policy(rng, kind)
        for training in (False, True):
            w, h = _sides(policy.windows(sizes, boxes, training=training, seed=4))
            np.testing.assert_allclose(w / h, policy.aspect_ratio, rtol=1e-9)


def _randomised(kind: str) -> CropPolicy:
    """A policy of ``kind`` whose train windows are random."""
    if kind == "object":
        return CropPolicy(kind="object", jitter=0.2, context=0.2)
    return CropPolicy(kind=kind, fraction=0.3, min_object_covered=0.0, aspect_ratio=0.8)


@pytest.mark.parametrize("kind", list(KINDS))
def test_eval_windows_are_deterministic(kind: str) -> None:
    rng = np.random.default_rng(8)
    sizes = _random_images(rng, 64)
    boxes = _random_boxes(rng, sizes)
    policy = _randomised(kind)
    first = policy.windows(sizes, boxes, training=False, seed=1, epoch=0)
    for seed, epoch in ((1, 0), (2, 5), (None, 3)):
        assert np.array_equal(policy.windows(sizes, boxes, False, seed, epoch), first)


@pytest.mark.parametrize("kind", [*RANDOM_KINDS, "object"])
def test_train_windows_follow_seed_and_epoch(kind: str) -> None:
    rng = np.random.default_rng(9)
    sizes = _random_images(rng, 64, low=64)
    boxes = _random_boxes(rng, sizes)
    policy = _randomised(kind)
    first = policy.windows(sizes, boxes, training=True, seed=1, epoch=0)
    assert np.array_equal(policy.windows(sizes, boxes, training=True, seed=1, epoch=0), first)
    for seed, epoch in ((1, 1), (2, 0)):
        other = policy.windows(sizes, boxes, training=True, seed=seed, epoch=epoch)
        changed = ~np.all(np.isclose(other, first), axis=1)
        assert changed.mean() > 0.9, (seed, epoch)


@pytest.mark.parametrize("kind", list(KINDS))
def test_train_window_does_not_depend_on_the_batch(kind: str) -> None:
    rng = np.random.default_rng(10)
    sizes = _random_images(rng, 100, low=32)
    boxes = _random_boxes(rng, sizes)
    policy = _randomised(kind)
    everything = policy.windows(sizes, boxes, training=True, seed=7, epoch=3)
    for pick in (np.array([5]), np.arange(10, 40), rng.permutation(100)[:37]):
        part = policy.windows(
            sizes[pick], boxes[pick], training=True, seed=7, epoch=3, indices=pick
        )
        np.testing.assert_array_equal(part, everything[pick])


def test_windows_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match="needs object boxes"):
        CropPolicy(kind="object").windows([[10, 10]])
    with pytest.raises(ValueError, match="2 image sizes but 1 boxes"):
        CropPolicy(kind="object").windows([[10, 10], [10, 10]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="3 image sizes but 1 indices"):
        CropPolicy(kind="random").windows([[10, 10]] * 3, training=True, indices=np.array([4]))


def test_uniforms_are_uniform_and_keyed() -> None:
    ids = np.arange(100_000)
    u = uniforms(1, 2, ids, 3)
    assert u.min() >= 0 and u.max() < 1
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.abs(counts - 10_000).max() < 500  # ~5 standard deviations
    assert np.array_equal(uniforms(1, 2, ids[::-7], 3), u[::-7])
    for key in ((2, 2, 3), (1, 3, 3), (1, 2, 4)):
        assert abs(np.corrcoef(uniforms(*key[:2], ids, key[2]), u)[0, 1]) < 0.02


# --- box conversions ---------------------------------------------------------------------


def test_normalized_to_pixels_table() -> None:
    # TF's normalized [y_min, x_min, y_max, x_max] on a 200 wide x 100 high image:
    # x = 0.2 * 200 = 40, y = 0.1 * 100 = 10, x = 0.6 * 200 = 120, y = 0.5 * 100 = 50.
    pixels = normalized_to_pixels(np.array([[0.1, 0.2, 0.5, 0.6]]), np.array([[100, 200]]))
    np.testing.assert_allclose(pixels, [[40, 10, 120, 50]])
    back = pixels_to_normalized(pixels, np.array([[100, 200]]))
    np.testing.assert_allclose(back, [[0.1, 0.2, 0.5, 0.6]])


def test_pixel_normalized_round_trip() -> None:
    rng = np.random.default_rng(11)
    sizes = _random_images(rng, 1000, low=1)
    boxes = _random_boxes(rng, sizes)
    normalized = pixels_to_normalized(boxes, sizes)
    np.testing.assert_allclose(normalized_to_pixels(normalized, sizes), boxes, rtol=1e-12)
    assert ((normalized >= 0) & (normalized <= 1)).all()


# (id, window, canvas (h, w), output (h, w), expected normalized [y1, x1, y2, x2]).
CROP_BOX_TABLE = [
    # the whole 50x40 canvas at its own size: samples at pixel centres 0..H-1 -> [0, 0, 1, 1],
    # the ends pulled in by 2e-6 so TF's float32 cannot overshoot the last pixel centre.
    ("identity", (0, 0, 40, 50), (50, 40), (50, 40), (0, 0, 1 - 2e-6, 1 - 2e-6)),
    # halving 100x100: output pixel j covers input [2j, 2j+2), centre index 2j + 0.5; the
    # first and last samples are 0.5 and 98.5, over H - 1 = 99.
    ("half", (0, 0, 100, 100), (100, 100), (50, 50), (0.5 / 99, 0.5 / 99, 98.5 / 99, 98.5 / 99)),
    # upscaling a 10 wide x 20 high window at (10, 20) of a 200x100 canvas to 40x40: half-pixel
    # samples would start before the window's first pixel centre, so they are clamped to the
    # first and last pixel centres: x 10..19 over 199, y 20..39 over 99.
    ("upscale", (10, 20, 20, 40), (100, 200), (40, 40), (20 / 99, 10 / 199, 39 / 99, 19 / 199)),
    # a window partly outside the canvas keeps its (negative) coordinates: x -10 + 0.5 = -9.5.
    ("outside", (-10, 0, 10, 20), (20, 20), (10, 10), (0.5 / 19, -9.5 / 19, 18.5 / 19, 8.5 / 19)),
    # a 2x2 canvas (W - 1 = 1): a 1 px wide window straddling its two columns samples at x 0.5.
    ("two-pixels", (0.5, 0, 1.5, 2), (2, 2), (2, 2), (0, 0.5, 1 - 2e-6, 0.5)),
]


@pytest.mark.parametrize(
    ("window", "canvas", "out", "expected"),
    [row[1:] for row in CROP_BOX_TABLE],
    ids=[r[0] for r in CROP_BOX_TABLE],
)
def test_crop_and_resize_boxes_table(
    window: tuple[float, ...],
    canvas: tuple[int, int],
    out: tuple[int, int],
    expected: tuple[float, ...],
) -> None:
    got = crop_and_resize_boxes(np.array([window], float), canvas, out)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[0], expected, rtol=1e-6, atol=1e-7)


def test_sample_spans_and_end_inset() -> None:
    # 100 px window from x = 10 into 20 px: scale 5, first sample at 10 + 2.5 - 0.5 = 12, last
    # at 110 - 2.5 - 0.5 = 107; upscaling 10 px into 40: the window's first/last pixel centres.
    spans = sample_spans(np.array([[10, 0, 110, 10], [10, 0, 20, 10]], float), (40, 20))
    np.testing.assert_allclose(spans[0], [0, 12, 9, 107])
    np.testing.assert_allclose(spans[1], [0, 10, 9, 19])
    # only ends within EDGE_TOLERANCE of the canvas's last pixel centre are pulled in, and
    # starts just below 0 (float noise) are set to 0
    near = np.array([[-1e-9, -0.5, 99 + 1e-9, 99 - 0.1]])
    boxes = spans_to_boxes(near, (100, 100))
    np.testing.assert_allclose(boxes[0], [0, -0.5 / 99, 1 - 2e-6, 98.9 / 99], rtol=1e-6)
    assert EDGE_TOLERANCE < 0.01


def test_crop_and_resize_boxes_sample_pixel_centres_when_downscaling() -> None:
    # crop_and_resize samples y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (h - 1). Downscaling,
    # sample i must be at the centre of output pixel i: y_min + (i + 0.5) * scale - 0.5.
    rng = np.random.default_rng(12)
    canvas = (300, 400)
    for _ in range(200):
        out = (int(rng.integers(8, 64)), int(rng.integers(8, 64)))
        w, h = rng.uniform(out[1], 300), rng.uniform(out[0], 250)
        x0, y0 = rng.uniform(-50, 400 - w + 50), rng.uniform(-50, 300 - h + 50)
        box = crop_and_resize_boxes(np.array([[x0, y0, x0 + w, y0 + h]]), canvas, out)[0]
        i = np.arange(out[0])
        sampled = box[0] * 299 + i * (box[2] - box[0]) * 299 / (out[0] - 1)
        np.testing.assert_allclose(sampled, y0 + (i + 0.5) * h / out[0] - 0.5, atol=2e-3)
        j = np.arange(out[1])
        sampled = box[1] * 399 + j * (box[3] - box[1]) * 399 / (out[1] - 1)
        np.testing.assert_allclose(sampled, x0 + (j + 0.5) * w / out[1] - 0.5, atol=2e-3)


def test_box_coverage_table() -> None:
    """The share of each box's area inside its window (the box's area, not the window's)."""
    windows = np.array([[0, 0, 10, 10]] * 5 + [[0, 0, 10, 4]], float)
    boxes = np.array(
        [
            [5, 5, 15, 15],  # a 5x5 corner of a 10x10 box: 25 / 100
            [20, 0, 30, 10],  # beside the window
            [0, 20, 10, 30],  # below it
            [2, 3, 4, 7],  # inside it
            [3, 3, 3, 8],  # no area: nothing to cover
            [6, 1, 16, 3],  # a 10x2 box poking out to the right: 4x2 of it inside
        ],
        float,
    )
    np.testing.assert_allclose(box_coverage(windows, boxes), [0.25, 0, 0, 1, 0, 0.4])
