"""The crop policy in-graph: its windows and its cutting as TensorFlow ops, pixel for pixel as
``cut.py``; the Keras crop layer and the ``tf.data`` map are built on them.

It is a port, not a second design: the window maths of
``geometry.py`` in float64 (train-mode randomness is the same splitmix64 hash of (seed, epoch,
sample index, draw), on uint64 tensors), and the sampling of ``cut.cut``: sample positions
computed in float32 exactly as ``tf.image.crop_and_resize`` computes them, samples beyond an
image's edge pixel centres clamped to the edge, samples whose centre lies outside the image set
to the fill value. The parity tests are the crop-layer tests; ``docs/crop-design.md``
says why training keeps the numpy path.

One difference of form: ``cut.cut`` normalises sample positions by the canvas it is given,
this module by each image's own size, so a crop never depends on what else is in the batch.
On a canvas larger than the image the two can differ by float32 rounding (at most one grey
level, bilinear). Inside a ``tf.function`` (a ``tf.data`` map, a traced model) graph
optimisation can tip a rounding tie too: measured on ``shapes`` (96x96 -> 48x48, ``full``),
10% of pixel values one grey level off; eager, none (``docs/crop-design.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Literal, NamedTuple, get_args

import numpy as np
import tensorflow as tf

from search.crop.geometry import (
    ASPECT_SPREAD,
    EDGE_TOLERANCE,
    END_INSET,
    FILL_VALUE,
    MIN_SIDE,
    OBJECT_RANDOM_ATTEMPTS,
)
from search.crop.kinds import KINDS
from search.crop.policy import CropPolicy

BoxFormat = Literal["xyxy", "rel_yxyx"]
#: ``xyxy``: pixels ``(x_min, y_min, x_max, y_max)``, the project's public form (Pascal VOC).
#: ``rel_yxyx``: ``[y_min, x_min, y_max, x_max]`` as fractions of the image's height and width,
#: the form of ``tf.image.crop_and_resize`` and the TF Object Detection API (Keras calls it so).
BOX_FORMATS: tuple[str, ...] = get_args(BoxFormat)

_F64 = tf.float64
_GOLDEN = 0x9E3779B97F4A7C15


# -- randomness: geometry.uniforms on uint64 tensors -------------------------------------------
def _u64(value: int | tf.Tensor) -> tf.Tensor:
    if isinstance(value, int):
        return tf.constant(value % 2**64, tf.uint64)
    return tf.cast(value, tf.uint64)


def _mix(x: tf.Tensor) -> tf.Tensor:
    """splitmix64 finaliser (uint64 arithmetic wraps)."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u64(30)))
    x = x * _u64(0xBF58476D1CE4E5B9)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u64(27)))
    x = x * _u64(0x94D049BB133111EB)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u64(31)))


def uniforms(
    seed: int | tf.Tensor, epoch: int | tf.Tensor, indices: tf.Tensor, draw: int | tf.Tensor
) -> tf.Tensor:
    """Uniform float64 in [0, 1) keyed by (seed, epoch, index, draw): bit for bit
    :func:`search.crop.geometry.uniforms`; ``indices`` and ``draw`` broadcast."""
    golden = _u64(_GOLDEN)
    h = _mix(_u64(seed) + golden)
    h = _mix(tf.bitwise.bitwise_xor(h, _u64(epoch) * golden + _u64(1)))
    h = _mix(tf.bitwise.bitwise_xor(h, _u64(draw) * golden + _u64(2)))
    h = _mix(tf.bitwise.bitwise_xor(h, _u64(indices) * golden + _u64(3)))
    return tf.cast(tf.bitwise.right_shift(h, _u64(11)), _F64) * 2.0**-53


# -- windows: geometry.crop_windows in float64 -----------------------------------------------
class _Draws:
    """``geometry._Draws`` in-graph: successive uniform draws, numbered as the numpy geometry
    numbers them, so both paths draw the same numbers for the same sample."""

    def __init__(self, seed: int | tf.Tensor, epoch: int | tf.Tensor, ids: tf.Tensor) -> None:
        self.seed, self.epoch, self.ids, self.count = seed, epoch, ids, 0

    def __call__(self) -> tf.Tensor:
        self.count += 1
        return uniforms(self.seed, self.epoch, self.ids, self.count)

    def per_attempt(self, attempts: int, draws_each: int) -> Callable[[], tf.Tensor]:
        """Draws for ``attempts`` loop iterations at once, each call (A, N): the k-th call gives
        every attempt its k-th draw, numbered as the numpy loop, which takes ``draws_each``
        draws per attempt, numbers them."""
        first = self.count + 1
        offsets = tf.range(attempts, dtype=tf.int64)[:, None] * draws_each
        calls = count()
        self.count += attempts * draws_each

        def draw() -> tf.Tensor:
            return uniforms(self.seed, self.epoch, self.ids, offsets + (first + next(calls)))

        return draw


def _centred(cx: tf.Tensor, cy: tf.Tensor, w: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
    return tf.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def _placed(x0: tf.Tensor, y0: tf.Tensor, w: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
    return tf.stack([x0, y0, x0 + w, y0 + h], axis=-1)


def _largest(width: tf.Tensor, height: tf.Tensor, aspect: float) -> tuple[tf.Tensor, tf.Tensor]:
    wide = width / height > aspect
    return tf.where(wide, height * aspect, width), tf.where(wide, height, width / aspect)


def _grow_to_aspect(windows: tf.Tensor, aspect: float) -> tf.Tensor:
    x0, y0, x1, y1 = tf.unstack(windows, axis=-1)
    w, h = tf.maximum(x1 - x0, MIN_SIDE), tf.maximum(y1 - y0, MIN_SIDE)
    w, h = tf.maximum(w, h * aspect), tf.maximum(h, w / aspect)
    return _centred((x0 + x1) / 2, (y0 + y1) / 2, w, h)


def _shift_inside(windows: tf.Tensor, width: tf.Tensor, height: tf.Tensor) -> tf.Tensor:
    x0, y0, x1, y1 = tf.unstack(windows, axis=-1)
    w, h = x1 - x0, y1 - y0
    scale = tf.minimum(tf.constant(1.0, _F64), tf.minimum(width / w, height / h))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = w * scale, h * scale
    nx0 = tf.minimum(tf.maximum(cx - w / 2, 0.0), width - w)
    ny0 = tf.minimum(tf.maximum(cy - h / 2, 0.0), height - h)
    return _placed(nx0, ny0, w, h)


def _object_windows(boxes: tf.Tensor, context: float, aspect: float) -> tf.Tensor:
    x0, y0, x1, y1 = tf.unstack(boxes, axis=-1)
    bw, bh = tf.maximum(x1 - x0, MIN_SIDE), tf.maximum(y1 - y0, MIN_SIDE)
    grown = tf.stack(
        [x0 - context * bw, y0 - context * bh, x1 + context * bw, y1 + context * bh], axis=-1
    )
    return _grow_to_aspect(grown, aspect)


def _random_area_windows(
    draw: Callable[[], tf.Tensor],
    width: tf.Tensor,
    height: tf.Tensor,
    min_area: float,
    aspect: float,
) -> tf.Tensor:
    """``geometry._random_area_windows``: four draws."""
    area = (min_area + draw() * (1.0 - min_area)) * width * height
    ratio = tf.exp(float(np.log(aspect)) + (2.0 * draw() - 1.0) * np.log(ASPECT_SPREAD))
    w, h = tf.sqrt(area * ratio), tf.sqrt(area / ratio)
    scale = tf.minimum(tf.constant(1.0, _F64), tf.minimum(width / w, height / h))
    w, h = w * scale, h * scale
    return _placed(draw() * (width - w), draw() * (height - h), w, h)


def _disturb_boxes(
    boxes: tf.Tensor, width: tf.Tensor, height: tf.Tensor, noise: float, draw: _Draws
) -> tf.Tensor:
    """``geometry.disturb_boxes``: four draws."""
    x0, y0, x1, y1 = tf.unstack(boxes, axis=-1)
    w, h = tf.maximum(x1 - x0, MIN_SIDE), tf.maximum(y1 - y0, MIN_SIDE)
    cx = (x0 + x1) / 2 + (2.0 * draw() - 1.0) * noise * w
    cy = (y0 + y1) / 2 + (2.0 * draw() - 1.0) * noise * h
    w = w * tf.exp((2.0 * draw() - 1.0) * noise)
    h = h * tf.exp((2.0 * draw() - 1.0) * noise)
    mx0, my0, mx1, my1 = tf.unstack(_centred(cx, cy, w, h), axis=-1)
    mx0 = tf.minimum(tf.maximum(mx0, 0.0), width - MIN_SIDE)
    my0 = tf.minimum(tf.maximum(my0, 0.0), height - MIN_SIDE)
    mx1 = tf.minimum(tf.maximum(mx1, mx0 + MIN_SIDE), width)
    my1 = tf.minimum(tf.maximum(my1, my0 + MIN_SIDE), height)
    return tf.stack([mx0, my0, mx1, my1], axis=-1)


def _coverage(windows: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    wx0, wy0, wx1, wy1 = tf.unstack(windows, axis=-1)
    bx0, by0, bx1, by1 = tf.unstack(boxes, axis=-1)
    ix = tf.maximum(tf.minimum(wx1, bx1) - tf.maximum(wx0, bx0), 0.0)
    iy = tf.maximum(tf.minimum(wy1, by1) - tf.maximum(wy0, by0), 0.0)
    area = tf.maximum(bx1 - bx0, 0.0) * tf.maximum(by1 - by0, 0.0)
    has_area = area > 0
    return tf.where(
        has_area, ix * iy / tf.where(has_area, area, _full(area, 1.0)), _full(area, 0.0)
    )


@dataclass(frozen=True)
class WindowInputs:
    """``geometry.WindowInputs`` as float64 tensors."""

    width: tf.Tensor
    height: tf.Tensor
    boxes: tf.Tensor
    draws: _Draws


#: A kind's in-graph window function: the policy and the samples -> float64 (N, 4) windows.
WindowFunction = Callable[[CropPolicy, WindowInputs], tf.Tensor]


class KindWindows(NamedTuple):
    """A kind's in-graph train and eval window functions."""

    train: WindowFunction
    eval: WindowFunction


def _whole_image(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    zero = tf.zeros_like(batch.width)
    return tf.stack([zero, zero, batch.width, batch.height], axis=-1)


def _fraction_of_largest(policy: CropPolicy, batch: WindowInputs) -> tuple[tf.Tensor, tf.Tensor]:
    w, h = _largest(batch.width, batch.height, policy.aspect_ratio)
    return w * policy.fraction, h * policy.fraction


def _centre_window(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    w, h = _fraction_of_largest(policy, batch)
    return _centred(batch.width / 2, batch.height / 2, w, h)


def _randomly_placed_window(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    w, h = _fraction_of_largest(policy, batch)
    draws = batch.draws
    return _placed(draws() * (batch.width - w), draws() * (batch.height - h), w, h)


def _random_area_window(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    return _random_area_windows(
        batch.draws, batch.width, batch.height, policy.fraction, policy.aspect_ratio
    )


def _mean_area_window(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    width, height = batch.width, batch.height
    w, h = _largest(width, height, policy.aspect_ratio)
    mean_area = (1.0 + policy.fraction) / 2.0 * width * height
    scale = tf.minimum(tf.constant(1.0, _F64), tf.sqrt(mean_area / (w * h)))
    return _centred(width / 2, height / 2, w * scale, h * scale)


def _train_boxes(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    if policy.box_noise <= 0:
        return batch.boxes
    return _disturb_boxes(batch.boxes, batch.width, batch.height, policy.box_noise, batch.draws)


def _within_border(policy: CropPolicy, windows: tf.Tensor, batch: WindowInputs) -> tf.Tensor:
    if policy.border == "shift":
        return _shift_inside(windows, batch.width, batch.height)
    return windows


def _object_window(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    windows = _object_windows(batch.boxes, policy.context, policy.aspect_ratio)
    return _within_border(policy, windows, batch)


def _jittered_object_window(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    windows = _object_windows(_train_boxes(policy, batch), policy.context, policy.aspect_ratio)
    if policy.jitter > 0:
        draws = batch.draws
        x0, y0, x1, y1 = tf.unstack(windows, axis=-1)
        w, h = x1 - x0, y1 - y0
        scale = tf.exp((2.0 * draws() - 1.0) * float(np.log1p(policy.jitter)))
        cx = (x0 + x1) / 2 + (2.0 * draws() - 1.0) * policy.jitter * w
        cy = (y0 + y1) / 2 + (2.0 * draws() - 1.0) * policy.jitter * h
        windows = _centred(cx, cy, w * scale, h * scale)
    return _within_border(policy, windows, batch)


def _object_covering_window(policy: CropPolicy, batch: WindowInputs) -> tf.Tensor:
    """The first attempt that covers enough of the box: all attempts at once, (A, N, 4)."""
    boxes = _train_boxes(policy, batch)
    fallback = _within_border(
        policy, _object_windows(boxes, policy.context, policy.aspect_ratio), batch
    )
    candidates = _random_area_windows(
        batch.draws.per_attempt(OBJECT_RANDOM_ATTEMPTS, 4),
        batch.width,
        batch.height,
        policy.fraction,
        policy.aspect_ratio,
    )
    ok = _coverage(candidates, boxes[None]) >= policy.min_object_covered
    pick = tf.argmax(tf.cast(ok, tf.int32), axis=0)
    chosen = tf.gather(tf.transpose(candidates, [1, 0, 2]), pick, axis=1, batch_dims=1)
    return tf.where(tf.reduce_any(ok, axis=0)[:, None], chosen, fallback)


#: Each kind's in-graph window functions, by the names of :data:`search.crop.kinds.KINDS`.
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
    sizes: tf.Tensor,
    boxes: tf.Tensor | None,
    training: bool = False,
    seed: int | tf.Tensor = 0,
    epoch: int | tf.Tensor = 0,
    indices: tf.Tensor | None = None,
) -> tf.Tensor:
    """Float64 (N, 4) pixel windows: :func:`search.crop.geometry.crop_windows` in-graph.

    Args:
        policy: the crop policy.
        sizes: (N, 2) image (height, width).
        boxes: (N, 4) pixel ``(x_min, y_min, x_max, y_max)``; needed by the object kinds.
        training: train-mode windows (keyed by seed, epoch and ``indices``) or eval windows.
        seed: seed of the train-mode randomness.
        epoch: epoch number (an int or an integer tensor).
        indices: (N,) sample ids keying the randomness (default ``0..N-1``).
    """
    sizes = tf.cast(sizes, _F64)
    height, width = sizes[:, 0], sizes[:, 1]
    if boxes is None:
        if KINDS[policy.kind].needs_box:
            raise ValueError(f"crop kind '{policy.kind}' needs object boxes")
        zero = tf.zeros_like(width)
        boxes = tf.stack([zero, zero, width, height], axis=-1)
    ids = tf.range(tf.shape(sizes)[0], dtype=tf.int64) if indices is None else indices
    batch = WindowInputs(width, height, tf.cast(boxes, _F64), _Draws(seed, epoch, ids))
    windows = WINDOWS[policy.kind]
    return (windows.train if training else windows.eval)(policy, batch)


# -- pixels: cut.cut in-graph -------------------------------------------------------------
def _letterbox(windows: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """``geometry.letterbox_frames``: the grown windows and the content frame fractions."""
    out_h, out_w = size
    grown = _grow_to_aspect(windows, out_w / out_h)
    gw, gh = grown[:, 2] - grown[:, 0], grown[:, 3] - grown[:, 1]
    w = tf.maximum(windows[:, 2] - windows[:, 0], MIN_SIDE)
    h = tf.maximum(windows[:, 3] - windows[:, 1], MIN_SIDE)
    fx, fy = w / gw, h / gh
    return grown, tf.stack([(1 - fx) / 2, (1 - fy) / 2, (1 + fx) / 2, (1 + fy) / 2], axis=1)


def _axis_samples(
    first: tf.Tensor, last: tf.Tensor, extent: tf.Tensor, count: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One axis of every crop: float32 sample positions as ``crop_and_resize`` computes them
    (the image's own extent as canvas), float64 positions, and whether the crop leaves it.

    Args:
        first: (N,) float64 first sample position (pixel-index coordinates).
        last: (N,) float64 last sample position.
        extent: (N,) float64 image height or width.
        count: samples on this axis.
    Returns:
        (N, count) float32 positions, (N, count) float64 positions, (N,) bool ``leaves``.
    """
    end = extent - 1.0
    scale = tf.maximum(end, 1.0)
    # geometry.spans_to_boxes, with the image as canvas
    low = tf.where((first < 0) & (first >= -EDGE_TOLERANCE), _full(first, 0.0), first / scale)
    high = tf.where(
        tf.abs(last - end) <= EDGE_TOLERANCE, _full(last, 1.0 - END_INSET), last / scale
    )
    low32, high32 = tf.cast(low, tf.float32), tf.cast(high, tf.float32)
    end32 = tf.cast(end, tf.float32)
    if count > 1:
        step = (high32 - low32) * end32 / float(count - 1)
        steps = tf.range(count, dtype=tf.float32)
        at32 = (low32 * end32)[:, None] + steps[None] * step[:, None]
        at64 = first[:, None] + (last - first)[:, None] * tf.range(count, dtype=_F64) / (count - 1)
    else:
        at32 = tf.cast(0.5 * tf.cast(low32 + high32, _F64) * tf.cast(end32, _F64), tf.float32)
        at32 = at32[:, None]
        at64 = ((first + last) / 2)[:, None]
    leaves = (tf.minimum(first, last) < -EDGE_TOLERANCE) | (
        tf.maximum(first, last) > end + EDGE_TOLERANCE
    )
    return at32, at64, leaves


def _clamped(
    at32: tf.Tensor, at64: tf.Tensor, leaves: tf.Tensor, extent: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Positions clamped to the edge pixel centres, and where the sample's centre is inside
    the image.

    For crops that leave the image, samples within ``EDGE_TOLERANCE`` of an edge centre or
    beyond it move onto that edge line, as ``cut._clamp_to_images`` does; it cuts the last
    line with ``crop_and_resize`` too, from a box whose end is pulled in by ``END_INSET``, so
    the same float32 position is used here (a 1e-4 px blend that can tip a rounding tie).
    """
    end64 = (extent - 1.0)[:, None]
    end32 = tf.cast(end64, tf.float32)
    line = tf.cast(end64 / tf.maximum(end64, 1.0), tf.float32) + tf.constant(
        1.0 - END_INSET, tf.float32
    )
    last_line = tf.cast(0.5 * tf.cast(line, _F64) * end64, tf.float32)
    snap = leaves[:, None]
    at32 = tf.where(snap & (at64 < EDGE_TOLERANCE), _full(at32, 0.0), at32)
    at32 = tf.where(snap & (at64 > end64 - EDGE_TOLERANCE), last_line, at32)
    at32 = tf.minimum(tf.maximum(at32, 0.0), end32)
    inside = (at64 >= -0.5) & (at64 < end64 + 0.5)
    return at32, inside


def _full(like: tf.Tensor, value: float) -> tf.Tensor:
    return tf.fill(tf.shape(like), tf.constant(value, like.dtype))


def _gather(pixels: tf.Tensor, shape: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """``canvas[n, rows[n, i], cols[n, j]]`` -> float32 (N, h, w, C), from the canvas's
    pixels as rows of ``pixels`` (N * H * W, C) and its ``shape``."""
    image = tf.range(shape[0])[:, None, None] * shape[1]
    flat = (image + rows[:, :, None]) * shape[2] + cols[:, None, :]
    return tf.cast(tf.gather(pixels, flat), tf.float32)


def cut(
    canvas: tf.Tensor,
    sizes: tf.Tensor,
    windows: tf.Tensor,
    size: tuple[int, int],
    fit: str = "stretch",
    interpolation: str = "bilinear",
) -> tf.Tensor:
    """Cut ``windows[i]`` from ``canvas[i]`` (image i is ``canvas[i, :h_i, :w_i]``, ``sizes``
    its (h, w)) and resize to ``size``: float32 (N, h, w, C) of whole grey levels 0..255.

    As :func:`search.crop.cut.cut`: samples at output pixel centres, edge pixels reaching to the
    image's border, samples whose centre is outside the image (``border=pad``) and letterbox
    bars :data:`~search.crop.cut.FILL_VALUE`.
    """
    sizes = tf.cast(sizes, _F64)
    windows = tf.cast(windows, _F64)
    out_h, out_w = size
    frames = None
    if fit == "letterbox":
        windows, frames = _letterbox(windows, size)
    x0, y0, x1, y1 = tf.unstack(windows, axis=1)
    # geometry.sample_spans
    inset_x = tf.maximum((x1 - x0) / out_w / 2 - 0.5, 0.0)
    inset_y = tf.maximum((y1 - y0) / out_h / 2 - 0.5, 0.0)
    height, width = sizes[:, 0], sizes[:, 1]
    ys32, ys64, leaves_y = _axis_samples(y0 + inset_y, y1 - 1.0 - inset_y, height, out_h)
    xs32, xs64, leaves_x = _axis_samples(x0 + inset_x, x1 - 1.0 - inset_x, width, out_w)
    leaves = leaves_y | leaves_x
    ys, rows_in = _clamped(ys32, ys64, leaves, height)
    xs, cols_in = _clamped(xs32, xs64, leaves, width)

    shape = tf.shape(canvas)
    pixels = tf.reshape(canvas, [-1, shape[3]])
    if interpolation == "nearest":  # crop_and_resize rounds half away from zero (roundf)
        rows = tf.floor(ys) + tf.cast(ys - tf.floor(ys) >= 0.5, tf.float32)
        cols = tf.floor(xs) + tf.cast(xs - tf.floor(xs) >= 0.5, tf.float32)
        crops = _gather(pixels, shape, tf.cast(rows, tf.int32), tf.cast(cols, tf.int32))
    else:
        top, left = tf.floor(ys), tf.floor(xs)
        bottom, right = tf.math.ceil(ys), tf.math.ceil(xs)
        y_lerp = (ys - top)[:, :, None, None]
        x_lerp = (xs - left)[:, None, :, None]
        rows = (tf.cast(top, tf.int32), tf.cast(bottom, tf.int32))
        cols = (tf.cast(left, tf.int32), tf.cast(right, tf.int32))
        top_left, top_right = (_gather(pixels, shape, rows[0], col) for col in cols)
        low_left, low_right = (_gather(pixels, shape, rows[1], col) for col in cols)
        upper = top_left + (top_right - top_left) * x_lerp
        lower = low_left + (low_right - low_left) * x_lerp
        crops = upper + (lower - upper) * y_lerp

    keep = rows_in[:, :, None] & cols_in[:, None, :]
    if frames is not None:
        centres_y = (tf.range(out_h, dtype=_F64) + 0.5) / out_h
        centres_x = (tf.range(out_w, dtype=_F64) + 0.5) / out_w
        in_rows = (centres_y[None] >= frames[:, 1:2]) & (centres_y[None] <= frames[:, 3:4])
        in_cols = (centres_x[None] >= frames[:, 0:1]) & (centres_x[None] <= frames[:, 2:3])
        keep &= in_rows[:, :, None] & in_cols[:, None, :]
    crops = tf.where(keep[..., None], tf.round(crops), _full(crops, FILL_VALUE))
    return tf.clip_by_value(crops, 0.0, 255.0)


# -- batches of images and boxes --------------------------------------------------------------
def as_canvas(
    images: tf.Tensor | tf.RaggedTensor, image_sizes: tf.Tensor | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Images -> (top-left aligned canvas (N, H, W, C), int32 true sizes (N, 2) as (h, w)).

    ``images`` is a dense batch (all of its size, or padded with their true ``image_sizes``)
    or a ``tf.RaggedTensor`` (N, None, None, C), padded here.
    """
    if isinstance(images, tf.RaggedTensor):
        heights = tf.cast(images.row_lengths(axis=1), tf.int32)
        if images.ragged_rank >= 2:
            widths = tf.cast(tf.reduce_max(images.row_lengths(axis=2), axis=1), tf.int32)
        else:
            widths = tf.fill(tf.shape(heights), tf.shape(images.flat_values)[1])
        canvas = images.to_tensor()
        if image_sizes is None:
            image_sizes = tf.stack([heights, widths], axis=1)
        return canvas, tf.cast(image_sizes, tf.int32)
    images = tf.convert_to_tensor(images)
    if image_sizes is None:
        shape = tf.shape(images)
        image_sizes = tf.tile(shape[None, 1:3], [shape[0], 1])
    return images, tf.cast(image_sizes, tf.int32)


def pixel_boxes(boxes: tf.Tensor, sizes: tf.Tensor, box_format: str) -> tf.Tensor:
    """Boxes in ``box_format`` -> float64 pixel ``(x_min, y_min, x_max, y_max)``."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format '{box_format}' must be one of {', '.join(BOX_FORMATS)}")
    boxes = tf.cast(boxes, _F64)
    if box_format == "xyxy":
        return boxes
    sizes = tf.cast(sizes, _F64)
    h, w = sizes[:, 0], sizes[:, 1]
    return tf.stack([boxes[:, 1] * w, boxes[:, 0] * h, boxes[:, 3] * w, boxes[:, 2] * h], axis=1)


# Plain ops without Python control flow on tensors: autograph would only slow tracing (4.5 s
# for a tf.data map, 0.3 s without it).
@tf.autograph.experimental.do_not_convert
def crop_batch(
    policy: CropPolicy,
    images: tf.Tensor | tf.RaggedTensor,
    boxes: tf.Tensor | None = None,
    image_sizes: tf.Tensor | None = None,
    box_format: str = "xyxy",
    training: bool = False,
    seed: int | tf.Tensor | None = None,
    epoch: int | tf.Tensor = 0,
    indices: tf.Tensor | None = None,
) -> tf.Tensor:
    """Crop a batch in-graph -> float32 (N, h, w, C) of whole grey levels: ``policy.apply``.

    Args:
        policy: the crop policy.
        images: (N, H, W, C) pixels 0..255, dense or ragged; see :func:`as_canvas`.
        boxes: (N, 4) object boxes in ``box_format``; needed by the object kinds.
        image_sizes: (N, 2) true (height, width) of padded dense images.
        box_format: ``xyxy`` (pixels) or ``rel_yxyx`` (TF's normalized form).
        training: train-mode (random) windows, keyed by (seed, epoch, ``indices``).
        seed: seed of the train-mode randomness; None means 0.
        epoch: epoch number.
        indices: (N,) sample ids (default ``0..N-1``).
    """
    canvas, sizes = as_canvas(images, image_sizes)
    pixels = None if boxes is None else pixel_boxes(boxes, sizes, box_format)
    if indices is not None:
        indices = tf.reshape(tf.cast(indices, tf.int64), [-1])
    windows = crop_windows(
        policy, sizes, pixels, training, 0 if seed is None else seed, epoch, indices
    )
    return cut(canvas, sizes, windows, policy.size, policy.fit, policy.interpolation)
