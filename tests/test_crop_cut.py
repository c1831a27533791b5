"""Pixels: ``policy.apply`` / ``search.crop.cut.cut`` against an independent reference (Pillow).

Where the two resamplers agree, and so what is compared:

- NEAREST, scale >= 1 (window side / output side): both pick the input pixel that contains the
  output pixel's centre, ``floor(x_min + (j + 0.5) * scale)``, so they are compared exactly.
  Windows are chosen so no centre lies within 1e-3 px of a pixel edge (a rounding tie).
- BILINEAR: Pillow antialiases when downscaling (its triangle filter widens to ``scale``
  pixels) and ``crop_and_resize`` samples 4 pixels, and when upscaling crops clamp their
  samples to the window's first/last pixel centres (see ``crop_and_resize_boxes``) where Pillow
  keeps half-pixel positions. So bilinear is compared on a smooth image with a tolerance
  derived from its derivatives (see ``SMOOTH_TOLERANCE``), plus a check that a 2 px shift of
  the window breaks the tolerance, so the comparison can fail.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from search.crop import cut as crops
from search.crop.cut import cut, stack_images
from search.crop.geometry import crop_and_resize_boxes
from search.crop.kinds import KINDS, RANDOM_KINDS
from search.crop.policy import CropPolicy

H, W = 90, 120
BOX = (30.0, 20.0, 70.0, 60.0)
NOISE = np.random.default_rng(0).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
#: Image values that are never 0, so the fill value (0) is unambiguous.
BRIGHT = np.random.default_rng(1).integers(50, 251, size=(H, W, 3), dtype=np.uint8)


def _smooth_image() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    base = 128 + 60 * np.sin(2 * np.pi * xx / 96 + 1) * np.cos(2 * np.pi * yy / 80)
    return np.clip(base[..., None] + np.array([0.0, 20.0, -20.0]), 0, 255).astype(np.uint8)


SMOOTH = _smooth_image()
#: The smooth image has |df/dx| <= 60 * 2pi / 96 = 3.9 and |df/dy| <= 60 * 2pi / 80 = 4.7 grey
#: levels per px, |f''| <= 60 * (2pi / 80)^2 = 0.37 per px^2. Downscaling by s <= 3, Pillow's
#: triangle filter of half-width s moves the value by about f'' * s^2 / 6 <= 0.6 from the point
#: sample, bilinear interpolation errs by <= f'' / 8 = 0.05, and both round to uint8 (0.5 each):
#: <= 1.7, so 2. Upscaling (s >= 1/3 here) Pillow does not widen its filter, but the sample
#: positions differ by <= (1 - s) / 2 <= 1/3 px: <= 4.7 / 3 + 0.1 + 1 = 2.7, so 3.
SMOOTH_TOLERANCE = {"down": 2, "up": 3}


def _pillow(
    image: np.ndarray, window: np.ndarray, size: tuple[int, int], method: Image.Resampling
) -> np.ndarray:
    resized = Image.fromarray(image).resize(
        (size[1], size[0]), method, box=tuple(window), reducing_gap=None
    )
    return np.asarray(resized)


def _assert_no_ties(window: np.ndarray, size: tuple[int, int]) -> None:
    """Guard of the NEAREST rows: no output centre within 1e-3 px of an input pixel edge."""
    x0, y0, x1, y1 = window
    for start, length, n in ((x0, x1 - x0, size[1]), (y0, y1 - y0, size[0])):
        centres = start + (np.arange(n) + 0.5) * length / n
        distance = np.abs(centres - np.round(centres))
        assert distance.min() > 1e-3, "test row has a rounding tie; pick another size"


# (policy fields, output size) rows whose eval windows lie inside the 120x90 image and are
# downscaled (scale >= 1) on both axes.
NEAREST_ROWS: list[tuple[dict[str, Any], tuple[int, int]]] = [
    ({"kind": "full"}, (30, 40)),  # scale 3 both ways
    ({"kind": "full"}, (48, 64)),  # 1.875
    ({"kind": "full"}, (40, 40)),  # 3 across, 2.25 down: stretched
    ({"kind": "center", "fraction": 0.7}, (24, 24)),  # 63x63 window, scale 2.625
    ({"kind": "center", "aspect_ratio": 2.0}, (16, 24)),  # 120x60 window
    ({"kind": "random", "fraction": 0.5, "aspect_ratio": 0.75}, (20, 16)),
    ({"kind": "random_resized", "fraction": 0.3}, (24, 24)),
    ({"kind": "object", "context": 0.33}, (24, 24)),  # 66.4 px window, fractional edges
    ({"kind": "object", "context": 0.2, "aspect_ratio": 1.5}, (16, 20)),
    ({"kind": "object_random", "context": 0.1, "fraction": 0.4}, (16, 16)),
]


@pytest.mark.parametrize(
    ("fields", "size"), NEAREST_ROWS, ids=[f"{f['kind']}-{s[0]}x{s[1]}" for f, s in NEAREST_ROWS]
)
def test_nearest_matches_pillow(fields: dict[str, Any], size: tuple[int, int]) -> None:
    policy = CropPolicy(**fields, size=size, interpolation="nearest")
    window = policy.windows([[H, W]], [BOX])[0]
    assert window[0] >= 0 and window[1] >= 0 and window[2] <= W and window[3] <= H
    assert (window[2] - window[0]) / size[1] >= 1 and (window[3] - window[1]) / size[0] >= 1
    _assert_no_ties(window, size)
    got = policy.apply(NOISE[None], [BOX])[0]
    np.testing.assert_array_equal(got, _pillow(NOISE, window, size, Image.Resampling.NEAREST))


# (window, output size, "down" or "up"): windows given directly, so scales are exact.
BILINEAR_ROWS = [
    ((0.0, 0.0, 120.0, 90.0), (72, 96), "down"),  # 1.25
    ((0.0, 0.0, 120.0, 90.0), (48, 64), "down"),  # 1.875
    ((0.0, 0.0, 120.0, 90.0), (30, 40), "down"),  # 3
    ((10.3, 5.7, 85.1, 80.2), (40, 40), "down"),  # fractional edges
    ((20.0, 10.0, 40.0, 30.0), (60, 60), "up"),  # 3x upscale
    ((20.0, 10.0, 60.0, 30.0), (30, 30), "up"),  # 1.33 down across, 1.5 up down: mixed
]


@pytest.mark.parametrize(("window", "size", "direction"), BILINEAR_ROWS)
def test_bilinear_matches_pillow_on_a_smooth_image(
    window: tuple[float, ...], size: tuple[int, int], direction: str
) -> None:
    tolerance = SMOOTH_TOLERANCE[direction]
    got = cut(SMOOTH[None], np.array([window]), np.array([0]), size).astype(int)
    reference = _pillow(SMOOTH, np.array(window), size, Image.Resampling.BILINEAR).astype(int)
    assert np.abs(got - reference).max() <= tolerance
    shifted = np.array(window) + np.array([2.0, 0.0, 2.0, 0.0])  # the comparison can fail
    if shifted[2] <= W:
        wrong = _pillow(SMOOTH, shifted, size, Image.Resampling.BILINEAR).astype(int)
        assert np.abs(got - wrong).max() > tolerance


def test_policy_apply_bilinear_matches_pillow_for_deterministic_kinds() -> None:
    for fields in (
        {"kind": "full"},
        {"kind": "center", "fraction": 0.8},
        {"kind": "object", "context": 0.4},
    ):
        policy = CropPolicy(**fields, size=(40, 40))
        window = policy.windows([[H, W]], [BOX])[0]
        got = policy.apply(SMOOTH[None], [BOX])[0].astype(int)
        reference = _pillow(SMOOTH, window, (40, 40), Image.Resampling.BILINEAR).astype(int)
        assert np.abs(got - reference).max() <= SMOOTH_TOLERANCE["down"], fields


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_full_at_the_image_size_returns_the_image(interpolation: str) -> None:
    policy = CropPolicy(kind="full", size=(H, W), interpolation=interpolation)
    np.testing.assert_array_equal(policy.apply(NOISE[None])[0], NOISE)
    # in a list with a larger image, on a zero-padded canvas, nothing of the padding leaks in
    larger = np.random.default_rng(2).integers(0, 256, size=(H + 30, W + 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(policy.apply([NOISE, larger])[0], NOISE)


def test_pad_fills_outside_pixels_with_zero() -> None:
    # box 10x10 in the corner, context 1 -> window (-10, -10, 20, 20), cut at 30x30: scale 1,
    # output pixel (i, j) is input pixel (i - 10, j - 10).
    for interpolation in ("bilinear", "nearest"):
        policy = CropPolicy(
            kind="object", context=1.0, border="pad", size=30, interpolation=interpolation
        )
        out = policy.apply(BRIGHT[None], [[0, 0, 10, 10]])[0]
        assert (out[:10] == 0).all() and (out[:, :10] == 0).all()
        np.testing.assert_array_equal(out[10:, 10:], BRIGHT[:20, :20])
        # the same at the bottom-right corner: window (110, 80, 140, 110)
        out = policy.apply(BRIGHT[None], [[W - 10, H - 10, W, H]])[0]
        assert (out[20:] == 0).all() and (out[:, 20:] == 0).all()
        np.testing.assert_array_equal(out[:20, :20], BRIGHT[H - 20 :, W - 20 :])


@pytest.mark.parametrize(
    ("box", "context", "size"),
    [
        ((3.0, 4.0, 30.0, 25.0), 1.5, (19, 23)),  # downscaled, corner
        ((0.0, 0.0, 10.0, 10.0), 0.97, (28, 28)),  # window at -9.7: a centre at 0.275, in pixel 0
        ((W - 12.0, H - 9.0, W, H), 0.6, (15, 14)),  # the bottom-right corner
    ],
)
def test_pad_matches_pillow_on_a_zero_padded_image(
    box: tuple[float, ...], context: float, size: tuple[int, int]
) -> None:
    # Reference: the image padded with zeros by hand, the window shifted by the padding. NEAREST
    # takes the pixel containing each output centre: the image's where the centre is inside it,
    # the fill value (0) outside.
    margin = 60
    padded = np.pad(BRIGHT, ((margin, margin), (margin, margin), (0, 0)))
    policy = CropPolicy(
        kind="object", context=context, border="pad", size=size, interpolation="nearest"
    )
    window = policy.windows([[H, W]], [box])[0]
    assert window[0] < 0 or window[1] < 0 or window[2] > W or window[3] > H
    _assert_no_ties(window + margin, size)
    reference = _pillow(padded, window + margin, size, Image.Resampling.NEAREST)
    for images in (BRIGHT[None], [BRIGHT, np.zeros((H + 9, W + 5, 3), np.uint8)]):
        got = policy.apply(images, [box, box][: len(images)])[0]
        np.testing.assert_array_equal(got, reference)
    assert (reference == 0).any() and (reference > 0).any()


def test_letterbox_bars_are_zero_and_content_keeps_its_aspect() -> None:
    wide = BRIGHT[:30, :60]  # 60x30, aspect 2, into 32x32: content 32x16 (scale 1.875)
    policy = CropPolicy(kind="full", size=32, fit="letterbox", interpolation="nearest")
    out = policy.apply(wide[None])[0]
    assert (out[:8] == 0).all() and (out[24:] == 0).all()
    np.testing.assert_array_equal(
        out[8:24], _pillow(wide, np.array([0, 0, 60, 30]), (16, 32), Image.Resampling.NEAREST)
    )
    tall = BRIGHT[:60, :30]  # the same on its side: bars left and right
    out = policy.apply(tall[None])[0]
    assert (out[:, :8] == 0).all() and (out[:, 24:] == 0).all()
    np.testing.assert_array_equal(
        out[:, 8:24], _pillow(tall, np.array([0, 0, 30, 60]), (32, 16), Image.Resampling.NEAREST)
    )
    # bilinear, object window of aspect 0.5 into 40x40: exactly 20 content columns (40 * 0.5)
    policy = CropPolicy(kind="object", aspect_ratio=0.5, context=0.2, size=40, fit="letterbox")
    out = policy.apply(BRIGHT[None], [BOX])[0]
    content = (out > 0).all(axis=(0, 2))
    assert content.sum() == 20 and content[10:30].all()
    assert (out[:, ~content] == 0).all()


def test_output_shape_is_always_size() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        sizes = rng.integers(8, 150, size=(int(rng.integers(1, 6)), 2))
        images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in sizes]
        boxes = [[w * 0.2, h * 0.3, w * 0.6, h * 0.9] for h, w in sizes]
        policy = CropPolicy(
            kind=str(rng.choice(list(KINDS))),
            size=[int(v) for v in rng.integers(8, 80, size=2)],
            border=str(rng.choice(["shift", "pad"])),
            fit=str(rng.choice(["stretch", "letterbox"])),
            interpolation=str(rng.choice(["bilinear", "nearest"])),
            fraction=0.5,
            context=0.3,
            jitter=0.1,
        )
        for training in (False, True):
            out = policy.apply(images, boxes, training=training, seed=1)
            assert out.shape == (len(images), *policy.size, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("kind", [*RANDOM_KINDS, "object"])
def test_train_crops_follow_seed_and_epoch(kind: str) -> None:
    policy = CropPolicy(
        kind=kind, size=24, fraction=0.3, jitter=0.2, context=0.2, min_object_covered=0.0
    )
    images, boxes = np.stack([NOISE] * 8), [BOX] * 8
    first = policy.apply(images, boxes, training=True, seed=4, epoch=0)
    np.testing.assert_array_equal(policy.apply(images, boxes, training=True, seed=4), first)
    assert not np.array_equal(policy.apply(images, boxes, training=True, seed=4, epoch=1), first)
    evals = policy.apply(images, boxes, training=False, seed=4)
    np.testing.assert_array_equal(policy.apply(images, boxes, training=False, seed=9), evals)


def test_crops_do_not_depend_on_the_canvas() -> None:
    # On a zero-padded canvas (a list of images of different sizes) a crop reads only its own
    # image. Boxes are normalised by the canvas size, so float32 sample positions differ in the
    # last bits: a value on a .5 boundary may round the other way (1 grey level). Such ties are
    # common where samples fall on quarter pixels, so only the size of the difference is bound.
    larger = np.zeros((H + 40, W + 40, 3), np.uint8)
    for fields in (
        {"kind": "center", "fraction": 0.9},
        {"kind": "object", "context": 0.5},
        {"kind": "random_resized", "fraction": 0.2},
        {"kind": "object", "context": 1.0, "border": "pad"},
        {"kind": "full", "fit": "letterbox"},
    ):
        for size in (16, 200):
            policy = CropPolicy(**fields, size=size)
            alone = policy.apply(BRIGHT[None], [BOX], training=True, seed=1)[0].astype(int)
            together = policy.apply([BRIGHT, larger], [BOX, BOX], training=True, seed=1)[0]
            assert np.abs(alone - together).max() <= 1, (fields, size)
            np.testing.assert_array_equal(alone == 0, together == 0)  # same fill layout


def test_no_blank_edges_at_any_scale() -> None:
    # A constant image must give a constant crop: no row or column may read the fill value
    # because float32 put its sample an ulp beyond the image's last pixel centre.
    rng = np.random.default_rng(6)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(8, 400, size=2))
        size = [int(v) for v in rng.integers(8, 200, size=2)]
        image = np.full((1, h, w, 3), 200, np.uint8)
        for interpolation in ("bilinear", "nearest"):
            policy = CropPolicy(kind="full", size=size, interpolation=interpolation)
            assert (policy.apply(image) == 200).all(), (h, w, size, interpolation)


def test_samples_in_the_outer_half_pixel_read_the_image() -> None:
    # A 20x20 window shifted 0.3 px left of a 20x20 image at scale 1: output pixel 0's centre
    # is at x = 0.2, inside image pixel 0, so it is that pixel (as Pillow does), not the fill.
    image = BRIGHT[:20, :20]
    for interpolation in ("bilinear", "nearest"):
        for shift, column, source in ((-0.3, 0, 0), (0.3, -1, -1)):
            window = np.array([[shift, 0.0, 20.0 + shift, 20.0]])
            own = cut(image[None], window, np.array([0]), (20, 20), interpolation=interpolation)
            padded = np.zeros((1, 32, 32, 3), np.uint8)
            padded[0, :20, :20] = image
            on_padding = cut(
                padded,
                window,
                np.array([0]),
                (20, 20),
                interpolation=interpolation,
                sizes=np.array([[20, 20]]),
            )
            for got in (own[0], on_padding[0]):
                np.testing.assert_array_equal(got[:, column], image[:, source])


def test_letterbox_keeps_every_content_row_when_upscaling() -> None:
    # 60x30 image into 64x64: content 64x32, rows 16..47. The first and last content rows sample
    # within the image's outer half pixels and must not read the fill value.
    wide = np.full((1, 30, 60, 3), 200, np.uint8)
    for size in (64, 100, 32):
        out = CropPolicy(kind="full", size=size, fit="letterbox").apply(wide)[0, :, :, 0]
        content = (out == 200).all(axis=1)
        assert content.sum() == size // 2 and (out[~content] == 0).all(), size


def test_cut_is_the_same_for_every_chunking_and_canvas_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(7, 40, 50, 3), dtype=np.uint8)
    index = np.array([3, 0, 0, 6, 2, 2, 5, 1, 4, 3, 6])  # out of order, repeated
    windows = np.stack(
        [
            rng.uniform(-10, 20, len(index)),
            rng.uniform(-10, 15, len(index)),
            rng.uniform(25, 60, len(index)),
            rng.uniform(20, 50, len(index)),
        ],
        1,
    )
    for fit in ("stretch", "letterbox"):
        expected = np.concatenate(
            [
                cut(images[i : i + 1], windows[k : k + 1], np.array([0]), (12, 16), fit)
                for k, i in enumerate(index)
            ]
        )
        for chunk_bytes, canvas_bytes in (
            (crops.CHUNK_BYTES, crops.CANVAS_BYTES),
            (1, 1),
            (3 * 12 * 16 * 4, 2 * images[0].nbytes),
        ):
            monkeypatch.setattr(crops, "CHUNK_BYTES", chunk_bytes)
            monkeypatch.setattr(crops, "CANVAS_BYTES", canvas_bytes)
            for canvas in (images, tf.convert_to_tensor(images)):
                got = cut(canvas, windows, index, (12, 16), fit)
                np.testing.assert_array_equal(got, expected)


def test_crop_and_resize_samples_where_the_boxes_say() -> None:
    # On a float ramp (value = x), crop_and_resize returns its sample positions: downscaling
    # they are the output pixel centres, x_min + (j + 0.5) * scale - 0.5; upscaling they run
    # from the window's first to its last pixel centre.
    ramp = tf.constant(np.tile(np.arange(W, dtype=np.float32), (1, H, 1))[..., None])
    windows = np.array([[10.0, 0.0, 90.0, 20.0], [10.0, 0.0, 20.0, 20.0]])
    boxes = crop_and_resize_boxes(windows, (H, W), (4, 16))
    got = tf.image.crop_and_resize(ramp, boxes, [0, 0], (4, 16)).numpy()[:, 0, :, 0]
    j = np.arange(16)
    np.testing.assert_allclose(got[0], 10 + (j + 0.5) * 5 - 0.5, atol=1e-3)
    np.testing.assert_allclose(got[1], np.linspace(10, 19, 16), atol=1e-3)


def test_stack_images_pads_and_accepts_grey() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    canvas, sizes = stack_images([grey, np.ones((5, 2, 3), np.uint8)])
    assert canvas.shape == (2, 5, 4, 3) and sizes.tolist() == [[3, 4], [5, 2]]
    assert (canvas[0, :3, :4] == grey[..., None]).all() and (canvas[0, 3:] == 0).all()
    grey = np.arange(96, dtype=np.uint8).reshape(8, 12)
    out = CropPolicy(kind="full", size=(8, 12)).apply([grey, np.ones((20, 20, 3), np.uint8)])[0]
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))
