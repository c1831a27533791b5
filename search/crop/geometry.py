"""Crop-window maths: pure, vectorised numpy functions (no TensorFlow).

A window is ``(x_min, y_min, x_max, y_max)`` in pixels, edges not centres: the whole image of
width W and height H is ``(0, 0, W, H)``. Train-mode randomness is a counter-based hash of
(seed, epoch, sample index, draw), so a sample's crop does not depend on which batch it is in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from search.crop.kinds import KINDS

if TYPE_CHECKING:
    from search.crop.policy import CropPolicy

# The numbers below are shared with the in-graph port (search/crop/layer.py): named once, here.

#: ``random_resized`` and ``object_random`` draw the aspect ratio log-uniformly in
#: [aspect_ratio / ASPECT_SPREAD, aspect_ratio * ASPECT_SPREAD], as torchvision does.
ASPECT_SPREAD = 4.0 / 3.0
#: Candidates tried per sample by ``object_random`` before it falls back to the object window.
OBJECT_RANDOM_ATTEMPTS = 32
#: Smallest side, in pixels, of a box or window that is measured, grown or disturbed: a
#: degenerate box still gives a window.
MIN_SIDE = 1.0
#: Value of pixels outside the image (``border=pad``) and of letterbox bars.
FILL_VALUE = 0.0
#: A sample within this many pixels beyond an image's first/last pixel centre counts as on it
#: (it is still well inside the image's outer half pixel): float noise in windows, such as a
#: shifted window at x = -1e-14, must not change how it is cut.
EDGE_TOLERANCE = 1e-3
#: ``crop_and_resize`` computes sample positions in float32 and treats any beyond ``H - 1`` as
#: outside (extrapolation value): a span ending exactly on the last pixel centre can overshoot by
#: an ulp and turn the last row into fill. Such ends are pulled in by this fraction of the canvas
#: (at most 0.002 px at 1024 px), which changes no rounded pixel value in practice.
END_INSET = 2e-6

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (wrapping uint64 arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniforms(seed: int, epoch: int, indices: np.ndarray, draw: int) -> np.ndarray:
    """Uniform floats in [0, 1), one per index, keyed by (seed, epoch, index, draw)."""
    with np.errstate(over="ignore"):
        key = np.array([seed % 2**64, epoch % 2**64, draw % 2**64], dtype=np.uint64)
        h = _mix(key[0:1] + _GOLDEN)
        h = _mix(h ^ (key[1:2] * _GOLDEN + np.uint64(1)))
        h = _mix(h ^ (key[2:3] * _GOLDEN + np.uint64(2)))
        h = _mix(h ^ (indices.astype(np.uint64) * _GOLDEN + np.uint64(3)))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


class _Draws:
    """Successive independent uniform draws for a batch of samples."""

    def __init__(self, seed: int, epoch: int, indices: np.ndarray) -> None:
        self.seed, self.epoch, self.indices, self.count = seed, epoch, indices, 0

    def __call__(self) -> np.ndarray:
        self.count += 1
        return uniforms(self.seed, self.epoch, self.indices, self.count)


def largest_window(
    width: np.ndarray, height: np.ndarray, aspect: float
) -> tuple[np.ndarray, np.ndarray]:
    """Width and height of the largest window of aspect ``aspect`` (w/h) inside each image."""
    wide = width / height > aspect
    w = np.where(wide, height * aspect, width)
    h = np.where(wide, height, width / aspect)
    return w, h


def grow_to_aspect(windows: np.ndarray, aspect: float | np.ndarray) -> np.ndarray:
    """Grow each window about its centre to aspect w/h, never cutting any of it."""
    x0, y0, x1, y1 = windows.T
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = np.maximum(x1 - x0, MIN_SIDE), np.maximum(y1 - y0, MIN_SIDE)
    w, h = np.maximum(w, h * aspect), np.maximum(h, w / aspect)
    return _centred(cx, cy, w, h)


def _centred(cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _placed(x0: np.ndarray, y0: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.stack([x0, y0, x0 + w, y0 + h], axis=1)


def shift_inside(windows: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Move each window inside its image; shrink it about its centre (keeping its aspect) only
    when it is larger than the image."""
    x0, y0, x1, y1 = windows.T
    w, h = x1 - x0, y1 - y0
    scale = np.minimum(1.0, np.minimum(width / w, height / h))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = w * scale, h * scale
    nx0 = np.clip(cx - w / 2, 0.0, width - w)
    ny0 = np.clip(cy - h / 2, 0.0, height - h)
    return _placed(nx0, ny0, w, h)


def object_windows(boxes: np.ndarray, context: float, aspect: float) -> np.ndarray:
    """Each box grown by ``context`` x its size on every side, then grown to ``aspect``."""
    x0, y0, x1, y1 = boxes.T
    bw, bh = np.maximum(x1 - x0, MIN_SIDE), np.maximum(y1 - y0, MIN_SIDE)
    grown = np.stack(
        [x0 - context * bw, y0 - context * bh, x1 + context * bw, y1 + context * bh], 1
    )
    return grow_to_aspect(grown, aspect)


def _log_uniform_aspect(u: np.ndarray, aspect: float) -> np.ndarray:
    return np.exp(np.log(aspect) + (2.0 * u - 1.0) * np.log(ASPECT_SPREAD))


def _random_area_windows(
    draws: _Draws, width: np.ndarray, height: np.ndarray, min_area: float, aspect: float
) -> np.ndarray:
    """Windows of area in [min_area, 1] x image area, aspect log-uniform around ``aspect``,
    uniformly placed inside the image (shrunk to fit when the draw does not fit)."""
    area = (min_area + draws() * (1.0 - min_area)) * width * height
    ratio = _log_uniform_aspect(draws(), aspect)
    w, h = np.sqrt(area * ratio), np.sqrt(area / ratio)
    scale = np.minimum(1.0, np.minimum(width / w, height / h))
    w, h = w * scale, h * scale
    return _placed(draws() * (width - w), draws() * (height - h), w, h)


def disturb_boxes(
    boxes: np.ndarray, image_sizes: np.ndarray, noise: float, draws: _Draws
) -> np.ndarray:
    """Boxes moved and rescaled as a detector's would be, clipped to their images.

    The centre moves by ``noise`` x the box's width/height times a uniform draw in [-1, 1];
    width and height scale by ``exp(noise x u)`` with u uniform in [-1, 1]. ``noise=0`` returns
    the boxes unchanged.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if noise <= 0:
        return boxes
    sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    x0, y0, x1, y1 = boxes.T
    w, h = np.maximum(x1 - x0, MIN_SIDE), np.maximum(y1 - y0, MIN_SIDE)
    cx = (x0 + x1) / 2 + (2.0 * draws() - 1.0) * noise * w
    cy = (y0 + y1) / 2 + (2.0 * draws() - 1.0) * noise * h
    w = w * np.exp((2.0 * draws() - 1.0) * noise)
    h = h * np.exp((2.0 * draws() - 1.0) * noise)
    moved = _centred(cx, cy, w, h)
    height, width = sizes[:, 0], sizes[:, 1]
    moved[:, 0] = np.clip(moved[:, 0], 0.0, width - MIN_SIDE)
    moved[:, 1] = np.clip(moved[:, 1], 0.0, height - MIN_SIDE)
    moved[:, 2] = np.clip(moved[:, 2], moved[:, 0] + MIN_SIDE, width)
    moved[:, 3] = np.clip(moved[:, 3], moved[:, 1] + MIN_SIDE, height)
    return moved


def noisy_boxes(boxes: np.ndarray, image_sizes: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """:func:`disturb_boxes` keyed by (``seed``, sample index): the same boxes every call."""
    ids = np.arange(len(np.asarray(boxes).reshape(-1, 4)))
    return disturb_boxes(boxes, image_sizes, noise, _Draws(seed, 0, ids))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of each box in ``a`` with the box at the same row of ``b``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def noise_for_iou(
    boxes: np.ndarray, image_sizes: np.ndarray, target: float, seed: int
) -> tuple[float, float]:
    """The :func:`noisy_boxes` noise whose mean IoU with ``boxes`` is closest to ``target``,
    found by bisection; returns (noise, measured mean IoU)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)

    def mean_iou(noise: float) -> float:
        return float(box_iou(boxes, noisy_boxes(boxes, image_sizes, noise, seed)).mean())

    low, high = 0.0, 4.0
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_iou(mid) > target else (low, mid)
    noise = (low + high) / 2
    return noise, mean_iou(noise)


def box_coverage(windows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Fraction of each box's area that lies inside its window."""
    ix = np.clip(
        np.minimum(windows[:, 2], boxes[:, 2]) - np.maximum(windows[:, 0], boxes[:, 0]), 0, None
    )
    iy = np.clip(
        np.minimum(windows[:, 3], boxes[:, 3]) - np.maximum(windows[:, 1], boxes[:, 1]), 0, None
    )
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    return np.where(area > 0, ix * iy / np.where(area > 0, area, 1.0), 0.0)


@dataclass(frozen=True)
class WindowInputs:
    """What a kind's window function reads besides the policy: one row per sample."""

    width: np.ndarray
    height: np.ndarray
    #: (N, 4) object boxes in pixels; the whole image where the caller gave none.
    boxes: np.ndarray
    #: Successive train-mode draws keyed by (seed, epoch, sample index, draw number).
    draws: _Draws


#: A kind's window function: the policy and the samples -> (N, 4) pixel windows.
WindowFunction = Callable[["CropPolicy", WindowInputs], np.ndarray]


class KindWindows(NamedTuple):
    """A kind's train and eval window functions."""

    train: WindowFunction
    eval: WindowFunction


def _whole_image(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    zero = np.zeros(len(batch.width))
    return np.stack([zero, zero, batch.width, batch.height], axis=1)


def _fraction_of_largest(policy: CropPolicy, batch: WindowInputs) -> tuple[np.ndarray, np.ndarray]:
    w, h = largest_window(batch.width, batch.height, policy.aspect_ratio)
    return w * policy.fraction, h * policy.fraction


def _centre_window(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    w, h = _fraction_of_largest(policy, batch)
    return _centred(batch.width / 2, batch.height / 2, w, h)


def _randomly_placed_window(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    w, h = _fraction_of_largest(policy, batch)
    draws = batch.draws
    return _placed(draws() * (batch.width - w), draws() * (batch.height - h), w, h)


def _random_area_window(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    return _random_area_windows(
        batch.draws, batch.width, batch.height, policy.fraction, policy.aspect_ratio
    )


def _mean_area_window(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    """The centred window whose area is the mean train-time area (same average zoom)."""
    width, height = batch.width, batch.height
    w, h = largest_window(width, height, policy.aspect_ratio)
    mean_area = (1.0 + policy.fraction) / 2.0 * width * height
    scale = np.minimum(1.0, np.sqrt(mean_area / (w * h)))
    return _centred(width / 2, height / 2, w * scale, h * scale)


def _train_boxes(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    """The object boxes as training sees them: disturbed by ``box_noise``."""
    if policy.box_noise <= 0:
        return batch.boxes
    sizes = np.stack([batch.height, batch.width], axis=1)
    return disturb_boxes(batch.boxes, sizes, policy.box_noise, batch.draws)


def _within_border(policy: CropPolicy, windows: np.ndarray, batch: WindowInputs) -> np.ndarray:
    if policy.border == "shift":
        return shift_inside(windows, batch.width, batch.height)
    return windows


def _object_window(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    windows = object_windows(batch.boxes, policy.context, policy.aspect_ratio)
    return _within_border(policy, windows, batch)


def _jittered_object_window(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    windows = object_windows(_train_boxes(policy, batch), policy.context, policy.aspect_ratio)
    if policy.jitter > 0:
        draws = batch.draws
        x0, y0, x1, y1 = windows.T
        w, h = x1 - x0, y1 - y0
        scale = np.exp((2.0 * draws() - 1.0) * np.log1p(policy.jitter))
        cx = (x0 + x1) / 2 + (2.0 * draws() - 1.0) * policy.jitter * w
        cy = (y0 + y1) / 2 + (2.0 * draws() - 1.0) * policy.jitter * h
        windows = _centred(cx, cy, w * scale, h * scale)
    return _within_border(policy, windows, batch)


def _object_covering_window(policy: CropPolicy, batch: WindowInputs) -> np.ndarray:
    """The first of several random windows that covers enough of the (disturbed) box, else
    the object window."""
    boxes = _train_boxes(policy, batch)
    chosen = _within_border(
        policy, object_windows(boxes, policy.context, policy.aspect_ratio), batch
    )
    pending = np.ones(len(boxes), dtype=bool)
    for _ in range(OBJECT_RANDOM_ATTEMPTS):
        candidates = _random_area_window(policy, batch)
        ok = pending & (box_coverage(candidates, boxes) >= policy.min_object_covered)
        chosen[ok] = candidates[ok]
        pending &= ~ok
        if not pending.any():
            break
    return chosen


#: Each kind's window functions, by the names of :data:`search.crop.kinds.KINDS`.
WINDOWS: dict[str, KindWindows] = {
    "full": KindWindows(train=_whole_image, eval=_whole_image),
    "center": KindWindows(train=_centre_window, eval=_centre_window),
    "random": KindWindows(train=_randomly_placed_window, eval=_centre_window),
    "random_resized": KindWindows(train=_random_area_window, eval=_mean_area_window),
    "object": KindWindows(train=_jittered_object_window, eval=_object_window),
    "object_random": KindWindows(train=_object_covering_window, eval=_object_window),
}


def crop_windows(
    policy: CropPolicy,
    image_sizes: np.ndarray | Sequence[Sequence[int]],
    boxes: np.ndarray | Sequence[Sequence[float]] | None,
    training: bool = False,
    seed: int | None = None,
    epoch: int = 0,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    """The windows ``policy`` cuts from images of (height, width) ``image_sizes``; see
    :meth:`search.crop.policy.CropPolicy.windows`."""
    sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    height, width = sizes[:, 0], sizes[:, 1]
    n = len(sizes)
    if boxes is None:
        if KINDS[policy.kind].needs_box:
            raise ValueError(f"crop kind '{policy.kind}' needs object boxes")
        box_array = np.stack([np.zeros(n), np.zeros(n), width, height], axis=1)
    else:
        box_array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(box_array) != n:
            raise ValueError(f"got {n} image sizes but {len(box_array)} boxes")
    ids = np.arange(n) if indices is None else np.asarray(indices).reshape(-1)
    if len(ids) != n:  # one index would broadcast: every sample would get the same draws
        raise ValueError(f"got {n} image sizes but {len(ids)} indices")
    batch = WindowInputs(width, height, box_array, _Draws(0 if seed is None else seed, epoch, ids))
    windows = WINDOWS[policy.kind]
    return (windows.train if training else windows.eval)(policy, batch)


def sample_spans(windows: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Where each window's first and last output samples fall, in pixel-index coordinates
    (pixel i's centre is at i): ``(y_first, x_first, y_last, x_last)``, shape (N, 4).

    Samples sit at output pixel centres (the half-pixel convention of ``tf.image.resize`` and
    Pillow): downscaling, the first is half an output pixel inside the window. Upscaling, that
    would fall before the window's first pixel centre, so the samples run from its first to its
    last pixel centre instead.
    """
    out_h, out_w = out_size
    x0, y0, x1, y1 = np.asarray(windows, dtype=np.float64).reshape(-1, 4).T
    inset_x = np.maximum((x1 - x0) / out_w / 2 - 0.5, 0.0)
    inset_y = np.maximum((y1 - y0) / out_h / 2 - 0.5, 0.0)
    return np.stack([y0 + inset_y, x0 + inset_x, y1 - 1.0 - inset_y, x1 - 1.0 - inset_x], axis=1)


def spans_to_boxes(spans: np.ndarray, canvas_size: tuple[int, int]) -> np.ndarray:
    """Sample spans -> normalised ``[y1, x1, y2, x2]`` float32 boxes for ``crop_and_resize``,
    which samples from ``y1 * (H - 1)`` to ``y2 * (H - 1)`` inclusive on an (H, W) canvas."""
    last = np.array([canvas_size[0] - 1, canvas_size[1] - 1], dtype=np.float64)
    scale = np.maximum(np.concatenate([last, last]), 1.0)
    boxes = spans / scale
    ends_on_canvas = np.abs(spans[:, 2:] - last) <= EDGE_TOLERANCE
    boxes[:, 2:] = np.where(ends_on_canvas, 1.0 - END_INSET, boxes[:, 2:])
    starts_on_canvas = (spans[:, :2] < 0) & (spans[:, :2] >= -EDGE_TOLERANCE)
    boxes[:, :2] = np.where(starts_on_canvas, 0.0, boxes[:, :2])
    return boxes.astype(np.float32)


def crop_and_resize_boxes(
    windows: np.ndarray, canvas_size: tuple[int, int], out_size: tuple[int, int]
) -> np.ndarray:
    """Pixel windows -> normalised ``[y1, x1, y2, x2]`` boxes for ``tf.image.crop_and_resize``:
    :func:`sample_spans` normalised by :func:`spans_to_boxes`."""
    return spans_to_boxes(sample_spans(windows, out_size), canvas_size)


def normalized_to_pixels(boxes: np.ndarray, image_sizes: np.ndarray) -> np.ndarray:
    """Normalised ``[y_min, x_min, y_max, x_max]`` (TF's form) -> pixel ``(x_min, y_min, x_max,
    y_max)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    h, w = sizes[:, 0], sizes[:, 1]
    return np.stack([boxes[:, 1] * w, boxes[:, 0] * h, boxes[:, 3] * w, boxes[:, 2] * h], axis=1)


def pixels_to_normalized(boxes: np.ndarray, image_sizes: np.ndarray) -> np.ndarray:
    """Pixel ``(x_min, y_min, x_max, y_max)`` -> normalised ``[y_min, x_min, y_max, x_max]``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    h, w = sizes[:, 0], sizes[:, 1]
    return np.stack([boxes[:, 1] / h, boxes[:, 0] / w, boxes[:, 3] / h, boxes[:, 2] / w], axis=1)


def letterbox_frames(
    windows: np.ndarray, out_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """For ``fit=letterbox``: the window grown to the output aspect, and where the original
    window lands in the output as fractions ``(left, top, right, bottom)`` of its width/height."""
    out_h, out_w = out_size
    grown = grow_to_aspect(windows, out_w / out_h)
    gw, gh = grown[:, 2] - grown[:, 0], grown[:, 3] - grown[:, 1]
    w = np.maximum(windows[:, 2] - windows[:, 0], MIN_SIDE)
    h = np.maximum(windows[:, 3] - windows[:, 1], MIN_SIDE)
    fx, fy = w / gw, h / gh
    frame = np.stack([(1 - fx) / 2, (1 - fy) / 2, (1 + fx) / 2, (1 + fy) / 2], axis=1)
    return grown, frame
