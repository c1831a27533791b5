"""The built-in ``shapes`` benchmark, the default data of every search, read back from its
pixels: each box is the target's exact pixel extent, each label its shape and its bar's
colour, and a seed gives the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

from search.data import load_dataset
from search.data.shapes import BAR, CLASS_NAMES, CUES, GAP, SHAPES

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
#: Share of its box a shape fills: circle pi/4, square 1, triangle 1/2 (pixelated, roughly).
FILL = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}


def _target_mask(image: np.ndarray, box: np.ndarray, margin: int) -> tuple[np.ndarray, int, int]:
    """Pixels of the target's colour (read at the box centre) in the box grown by ``margin``,
    and where that window starts (x, y)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    color = image[cy, cx]
    left, top = max(0, x0 - margin), max(0, y0 - margin)
    window = image[top : y1 + margin, left : x1 + margin]
    return (window == color).all(axis=-1), left, top


@pytest.mark.parametrize("distractors", [0, 4])
def test_boxes_are_the_target_s_exact_pixel_extent(distractors: int) -> None:
    data = load_dataset(f"shapes:train=40,val=1,test=1,distractors={distractors},seed=3")
    for image, box in zip(data.train.images, data.train.boxes, strict=True):
        assert box == pytest.approx(np.round(box)), "edges on whole pixels"
        mask, left, top = _target_mask(image, box, margin=3)
        ys, xs = np.nonzero(mask)
        found = (xs.min() + left, ys.min() + top, xs.max() + 1 + left, ys.max() + 1 + top)
        assert found == tuple(box), "the box is the tight box of the shape's pixels"


def test_the_label_is_the_shape_and_its_bar_s_colour() -> None:
    data = load_dataset("shapes:train=60,val=1,test=1,distractors=0,seed=5")
    seen = set()
    for image, box, label in zip(
        data.train.images, data.train.boxes, data.train.labels, strict=True
    ):
        shape, cue = CLASS_NAMES[label].split("-")
        assert (shape, cue) == (SHAPES[label // len(CUES)], CUES[label % len(CUES)])
        mask, _, _ = _target_mask(image, box, margin=0)
        fill = mask.mean()
        nearest = min(FILL, key=lambda name: abs(FILL[name] - fill))
        assert nearest == shape, f"fills {fill:.2f} of its box, like a {nearest}"
        # The bar lies just outside the box, in the cue's colour; the other colour is absent.
        x0, y0, x1, y1 = (int(v) for v in box)
        reach = int(np.ceil((GAP + BAR) * max(x1 - x0, y1 - y0))) + 2
        ring = image[max(0, y0 - reach) : y1 + reach, max(0, x0 - reach) : x1 + reach]
        white = int((ring == WHITE).all(axis=-1).sum())
        black = int((ring == BLACK).all(axis=-1).sum())
        # At least floor(thickness) whole rows (or columns) along a side of the box.
        rows = np.floor(max(2.0, BAR * max(x1 - x0, y1 - y0)))
        bar_area = rows * min(x1 - x0, y1 - y0)
        mine, other = (white, black) if cue == "white" else (black, white)
        assert mine >= bar_area and other <= 0.05 * bar_area, (cue, white, black)
        seen.add(label)
    assert seen == set(range(len(CLASS_NAMES))), "60 samples show every class"


def test_a_seed_gives_the_same_bytes_and_another_seed_others() -> None:
    spec = "shapes:train=16,val=8,test=8,canvas=48"
    first, again = load_dataset(f"{spec},seed=7"), load_dataset(f"{spec},seed=7")
    other = load_dataset(f"{spec},seed=8")
    for name in ("train", "val", "test"):
        a, b, c = (getattr(d, name) for d in (first, again, other))
        assert a.images.tobytes() == b.images.tobytes()
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
        assert a.images.tobytes() != c.images.tobytes()
    assert first.fingerprint == again.fingerprint != other.fingerprint
    # The splits are drawn from their own streams: no image repeats across them.
    assert first.train.images[0].tobytes() != first.val.images[0].tobytes()
