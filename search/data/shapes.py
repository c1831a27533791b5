"""The built-in ``shapes`` benchmark: procedural, offline, deterministic for a seed.

Each RGB canvas has a textured background, one target shape with its exact pixel box, and
smaller distractor shapes. The class is the target's shape *and* the colour (white or black)
of a short bar lying just outside its box, on a random side (above, below, left or right): a
gap of ``GAP`` x the object's size, then ``BAR`` x its size thick. So

- a tight box crop (context 0) sees the shape but not the bar: at best half the classes;
- a box grown only to a tall or wide aspect ratio sees the bar on two of the four sides;
- the full image sees everything but small, among distractors that carry bars of their own;
- an object crop with context >= about ``GAP + BAR`` on every side sees shape and bar, large:
  the best crop.

Distractors stay clear of the target's surroundings (its box grown by ``CLEAR`` x its size).
"""

from __future__ import annotations

import numpy as np

from search.data.dataset import Dataset, Samples
from search.data.decoded import check_memory
from search.data.specs import DataSpec, check_options, option

SHAPES = ("circle", "square", "triangle")
CUES = ("white", "black")
CLASS_NAMES = tuple(f"{shape}-{cue}" for shape in SHAPES for cue in CUES)
_CUE_COLORS = np.array([[255, 255, 255], [0, 0, 0]], dtype=np.float32)
GAP, BAR, CLEAR = 0.10, 0.14, 0.6
OPTIONS = ("train", "val", "test", "canvas", "distractors", "seed", "max_memory")
#: Option bounds, checked before anything is drawn. Below 24 pixels a shape can vanish.
MAX_SAMPLES, CANVAS, MAX_DISTRACTORS, MAX_SEED = 1_000_000, (32, 1024), 50, 2**32 - 1
MEMORY_HINT = "lower train=/val=/test= or canvas="
_PALETTE = np.array(
    [
        [230, 60, 50],
        [60, 180, 75],
        [60, 100, 230],
        [240, 200, 40],
        [200, 70, 200],
        [70, 210, 220],
        [245, 130, 40],
    ],
    dtype=np.float32,
)


def _shape_mask(
    shape: int, yy: np.ndarray, xx: np.ndarray, cx: float, cy: float, r: float
) -> np.ndarray:
    if SHAPES[shape] == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    if SHAPES[shape] == "square":
        side = r * 0.85
        return (np.abs(xx - cx) <= side) & (np.abs(yy - cy) <= side)
    top, bottom = cy - r, cy + r
    half_width = (yy - top) / (bottom - top) * r
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half_width)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(40, 150, size=3).astype(np.float32)
    texture = np.zeros((size, size), np.float32)
    for _ in range(3):
        fx, fy, phase = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 2 * np.pi)
        texture += np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
    image = base + 12 * texture[..., None] + rng.normal(0, 10, size=(size, size, 3))
    return image.astype(np.float32)


def _draw(image: np.ndarray, mask: np.ndarray, color: np.ndarray) -> None:
    image[mask] = color


def _object_with_bar(
    image: np.ndarray,
    rng: np.random.Generator,
    yy: np.ndarray,
    xx: np.ndarray,
    shape: int,
    cue: int,
    cx: float,
    cy: float,
    r: float,
) -> tuple[float, float, float, float]:
    """Draw a shape and its bar (colour ``cue``, random side); return the shape's exact box."""
    color = _PALETTE[rng.integers(len(_PALETTE))]
    mask = _shape_mask(shape, yy, xx, cx, cy, r)
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    extent = max(box[2] - box[0], box[3] - box[1])
    gap, thick = max(1.0, GAP * extent), max(2.0, BAR * extent)
    side = int(rng.integers(4))
    if side < 2:  # above or below
        y0 = box[1] - gap - thick if side == 0 else box[3] + gap
        bar = (yy >= y0) & (yy < y0 + thick) & (xx >= box[0]) & (xx < box[2])
    else:  # left or right
        x0 = box[0] - gap - thick if side == 2 else box[2] + gap
        bar = (xx >= x0) & (xx < x0 + thick) & (yy >= box[1]) & (yy < box[3])
    _draw(image, mask, color)
    _draw(image, bar, _CUE_COLORS[cue])
    return box


def render(
    rng: np.random.Generator, n: int, canvas: int = 96, distractors: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` canvases -> (images uint8 (n, canvas, canvas, 3), boxes (n, 4), labels (n,))."""
    images = np.empty((n, canvas, canvas, 3), np.uint8)
    boxes = np.empty((n, 4), np.float64)
    labels = rng.integers(len(CLASS_NAMES), size=n)
    yy, xx = np.mgrid[0:canvas, 0:canvas].astype(np.float32)
    for i in range(n):
        image = _background(rng, canvas)
        shape, cue = divmod(int(labels[i]), len(CUES))
        r = rng.uniform(0.10, 0.16) * canvas
        margin = r * (1 + 2 * (GAP + BAR)) + 2
        cx, cy = rng.uniform(margin, canvas - margin, size=2)
        clear = r * (1 + 2 * CLEAR)
        for _ in range(distractors):
            dr = rng.uniform(0.04, 0.07) * canvas
            for _attempt in range(20):
                dx, dy = rng.uniform(dr + 2, canvas - dr - 2, size=2)
                if abs(dx - cx) > clear + dr or abs(dy - cy) > clear + dr:
                    break
            else:
                continue
            _object_with_bar(
                image,
                rng,
                yy,
                xx,
                int(rng.integers(len(SHAPES))),
                int(rng.integers(len(CUES))),
                dx,
                dy,
                dr,
            )
        boxes[i] = _object_with_bar(image, rng, yy, xx, shape, cue, cx, cy, r)
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
    return images, boxes, labels


def load_shapes(spec: DataSpec) -> Dataset:
    """Generate the benchmark a ``shapes[:KEY=VALUE,...]`` spec describes.

    Keys: ``train``, ``val``, ``test`` (canvases; default 1500/400/400), ``canvas`` (side in
    pixels, 96, in [32, 1024]), ``distractors`` (4), ``seed`` (0), ``max_memory`` (GiB, see
    :func:`search.data.decoded.memory_limit`). Sizes are checked against the memory limit
    before anything is drawn.
    """
    check_options(spec, OPTIONS)
    canvas = option(spec, "canvas", 96, int, *CANVAS)
    distractors = option(spec, "distractors", 4, int, 0, MAX_DISTRACTORS)
    seed = option(spec, "seed", 0, int, 0, MAX_SEED)
    defaults = {"train": 1500, "val": 400, "test": 400}
    counts = {name: option(spec, name, n, int, 1, MAX_SAMPLES) for name, n in defaults.items()}
    check_memory(spec, sum(counts.values()), canvas, canvas, MEMORY_HINT)
    splits = []
    for number, n in enumerate(counts.values()):
        rng = np.random.default_rng([seed, number])
        images, boxes, labels = render(rng, n, canvas, distractors)
        sizes = np.tile(np.array([[canvas, canvas]]), (n, 1))
        splits.append(Samples(images, sizes, boxes, labels))
    train, val, test = splits
    return Dataset(str(spec), CLASS_NAMES, train, val, test)
