"""Cutting pixels: crop windows -> resized crops, batched ``crop_and_resize`` calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from search.crop.geometry import (
    EDGE_TOLERANCE,
    FILL_VALUE,
    crop_windows,
    letterbox_frames,
    sample_spans,
    spans_to_boxes,
)

if TYPE_CHECKING:
    from search.crop.policy import CropPolicy
    from search.data import Samples

#: Bytes of float32 crops cut per ``crop_and_resize`` call. Buffers above glibc's mmap
#: threshold (32 MB) are fresh pages on every call, and faulting them in cost more than the
#: cropping itself (96x96 crops: 2,660/s with 1,024-crop chunks, 5,500/s with 128).
CHUNK_BYTES = 8 * 2**20
#: Bytes of a numpy canvas converted to a tensor at once, for the same reason: converting
#: 2,000 images of 256x256 took 0.5-1.5 s in one piece and 0.03 s in 25 MB pieces.
CANVAS_BYTES = 16 * 2**20


def stack_images(images: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Images of any sizes -> (zero-padded uint8 canvas (N, H, W, 3), sizes (N, 2) as (h, w))."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        n, h, w = images.shape[:3]
        return images, np.tile(np.array([[h, w]]), (n, 1))
    arrays = [np.asarray(image) for image in images]
    sizes = np.array([a.shape[:2] for a in arrays], dtype=np.int64).reshape(-1, 2)
    canvas = np.zeros((len(arrays), *sizes.max(axis=0), 3), dtype=np.uint8)
    for i, a in enumerate(arrays):
        canvas[i, : a.shape[0], : a.shape[1]] = a if a.ndim == 3 else a[..., None]
    return canvas, sizes


def cut(
    canvas: tf.Tensor | np.ndarray,
    windows: np.ndarray,
    image_index: np.ndarray,
    size: tuple[int, int],
    fit: str = "stretch",
    interpolation: str = "bilinear",
    sizes: np.ndarray | None = None,
) -> np.ndarray:
    """Cut ``windows[i]`` from ``canvas[image_index[i]]``, resize to ``size`` -> uint8 (M, h, w, 3).

    ``canvas`` holds the images top-left aligned and zero-padded, ``sizes`` their true (height,
    width) (default: the canvas size). An output pixel whose centre falls outside its image is
    :data:`~search.crop.geometry.FILL_VALUE`; one inside it is interpolated from the image
    alone, the edge pixels reaching to the image's border (as in Pillow and
    ``tf.image.resize``). A ``tf.Tensor`` canvas stays resident (the trainer's path); a numpy
    canvas is converted piece by piece, only the images each chunk of crops reads.
    """
    resident = isinstance(canvas, tf.Tensor)
    source = canvas if resident else np.asarray(canvas)
    canvas_hw = (int(source.shape[1]), int(source.shape[2]))
    image_index = np.asarray(image_index, dtype=np.int32).reshape(-1)
    frames = None
    if fit == "letterbox":
        windows, frames = letterbox_frames(windows, size)
    spans = sample_spans(windows, size)
    if sizes is None:
        image_hw = np.tile(np.array(canvas_hw, dtype=np.float64), (len(image_index), 1))
    else:
        image_hw = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)[image_index]
    first = np.minimum(spans[:, :2], spans[:, 2:])
    last = np.maximum(spans[:, :2], spans[:, 2:])
    leaves = ((first < -EDGE_TOLERANCE) | (last > image_hw - 1 + EDGE_TOLERANCE)).any(axis=1)

    chunk = max(1, CHUNK_BYTES // (size[0] * size[1] * 3 * 4))
    if not resident:
        image_bytes = int(np.prod(source.shape[1:])) * source.dtype.itemsize
        chunk = min(chunk, max(1, CANVAS_BYTES // max(1, image_bytes)))
    out = np.empty((len(windows), *size, 3), dtype=np.uint8)
    for start in range(0, len(windows), chunk):
        picked = slice(start, start + chunk)
        if resident:
            images, index = source, image_index[picked]
        else:
            images, index = _piece(source, image_index[picked])
        crops = tf.image.crop_and_resize(
            images,
            spans_to_boxes(spans[picked], canvas_hw),
            index,
            size,
            method=interpolation,
            extrapolation_value=FILL_VALUE,
        )
        # Round half to even (as tf.round), fix borders, mask, clip and cast, in numpy.
        rounded = np.rint(crops.numpy())
        keep = None if frames is None else _frame_mask(frames[picked], size)
        border = np.flatnonzero(leaves[picked])
        if len(border):
            inside = _clamp_to_images(
                rounded,
                border,
                images,
                index[border],
                spans[picked][border],
                image_hw[picked][border],
                canvas_hw,
                interpolation,
            )
            keep = np.ones((len(rounded), *size, 1), bool) if keep is None else keep
            keep[border] &= inside
        if keep is not None:
            np.copyto(rounded, FILL_VALUE, where=~keep)
        np.clip(rounded, 0.0, 255.0, out=rounded)
        np.copyto(out[picked], rounded, casting="unsafe")
    return out


def _piece(canvas: np.ndarray, index: np.ndarray) -> tuple[tf.Tensor, np.ndarray]:
    """The images ``index`` reads, as a tensor, and ``index`` renumbered into it."""
    used, renumbered = np.unique(index, return_inverse=True)
    run = used[-1] - used[0] + 1 == len(used)  # a contiguous run is a view: no numpy copy
    images = canvas[used[0] : used[-1] + 1] if run else canvas[used]
    return tf.convert_to_tensor(images), renumbered.astype(np.int32)


def _clamp_to_images(
    crops: np.ndarray,
    border: np.ndarray,
    images: tf.Tensor,
    index: np.ndarray,
    spans: np.ndarray,
    image_hw: np.ndarray,
    canvas_hw: tuple[int, int],
    interpolation: str,
) -> np.ndarray:
    """Fix ``crops[border]``, whose samples leave their image; return where they are inside.

    ``crop_and_resize`` reads a sample beyond the canvas's first/last pixel *centre* as the
    extrapolation value (and, on a zero-padded canvas, blends one beyond a smaller image's last
    pixel centre with the padding), although the image reaches half a pixel further. Such
    samples get the value at the nearest edge row/column instead: ``crop_and_resize`` lines
    along the image's edges at the same sample positions, their ends set to the corner pixels.
    Only those rows and columns are written. Returns the (K, h, w, 1) mask of samples whose
    centre lies inside the image.
    """
    h, w = crops.shape[1:3]
    ys = _sample_positions(spans[:, 0], spans[:, 2], h)
    xs = _sample_positions(spans[:, 1], spans[:, 3], w)
    last_y, last_x = image_hw[:, 0] - 1, image_hw[:, 1] - 1
    zero = np.zeros_like(last_y)
    # Samples on an edge pixel centre count as beyond it too: TF's float32 positions can put
    # them an ulp outside, where they would read the extrapolation value.
    tol = EDGE_TOLERANCE
    before_y, after_y = ys < tol, ys > last_y[:, None] - tol
    before_x, after_x = xs < tol, xs > last_x[:, None] - tol
    rows_in = (ys >= -0.5) & (ys < last_y[:, None] + 0.5)
    cols_in = (xs >= -0.5) & (xs < last_x[:, None] + 0.5)
    inside = (rows_in[:, :, None] & cols_in[:, None, :])[..., None]
    # only samples inside the image need a value; the others become FILL_VALUE
    fix_rows = (before_y & rows_in, after_y & rows_in)  # first/last row of the image
    fix_cols = (before_x & cols_in, after_x & cols_in)  # first/last column of the image
    if not any(mask.any() for mask in fix_rows + fix_cols):
        return inside

    # corner pixels 0-3: top-left, top-right, bottom-left, bottom-right
    corner_y = np.stack([zero, zero, last_y, last_y], axis=1).ravel()
    corner_x = np.stack([zero, last_x, zero, last_x], axis=1).ravel()
    at = np.stack([np.repeat(index, 4), corner_y, corner_x], axis=1).astype(np.int32)
    corners = tf.cast(tf.gather_nd(images, at), tf.float32).numpy().reshape(len(index), 4, -1)

    def lines(
        y0: np.ndarray, x0: np.ndarray, y1: np.ndarray, x1: np.ndarray, shape: tuple[int, int]
    ) -> np.ndarray:
        """Both edge lines of every crop (first edges, then second) in one call."""
        boxes = spans_to_boxes(np.stack([y0, x0, y1, x1], axis=1), canvas_hw)
        values = tf.image.crop_and_resize(
            images, boxes, np.tile(index, 2), shape, method=interpolation
        )
        return np.rint(values.numpy()).reshape(2, len(index), -1, crops.shape[3])

    if any(mask.any() for mask in fix_rows):  # edge rows at the crop's column positions
        both = lines(
            np.concatenate([zero, last_y]),
            np.tile(spans[:, 1], 2),
            np.concatenate([zero, last_y]),
            np.tile(spans[:, 3], 2),
            (1, w),
        )
        for mask, values, low_corner in zip(fix_rows, both, (0, 2), strict=True):
            values = np.where(before_x[..., None], corners[:, low_corner, None], values)
            values = np.where(after_x[..., None], corners[:, low_corner + 1, None], values)
            k, i = np.nonzero(mask)
            crops[border[k], i] = values[k]
    if any(mask.any() for mask in fix_cols):  # edge columns at the crop's row positions
        both = lines(
            np.tile(spans[:, 0], 2),
            np.concatenate([zero, last_x]),
            np.tile(spans[:, 2], 2),
            np.concatenate([zero, last_x]),
            (h, 1),
        )
        for mask, values, low_corner in zip(fix_cols, both, (0, 1), strict=True):
            values = np.where(before_y[..., None], corners[:, low_corner, None], values)
            values = np.where(after_y[..., None], corners[:, low_corner + 2, None], values)
            k, j = np.nonzero(mask)
            crops[border[k], :, j] = values[k]
    return inside


def _sample_positions(first: np.ndarray, last: np.ndarray, count: int) -> np.ndarray:
    """(M, count) sample positions from ``first`` to ``last``, as ``crop_and_resize`` places
    them (a single sample sits midway)."""
    if count == 1:
        return ((first + last) / 2)[:, None]
    return first[:, None] + (last - first)[:, None] * np.arange(count) / (count - 1)


def _frame_mask(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """True inside each sample's letterbox frame, False on the bars: (M, h, w, 1) bool."""
    h, w = size
    rows = (np.arange(h) + 0.5) / h
    cols = (np.arange(w) + 0.5) / w
    in_rows = (rows[None] >= frames[:, 1:2]) & (rows[None] <= frames[:, 3:4])
    in_cols = (cols[None] >= frames[:, 0:1]) & (cols[None] <= frames[:, 2:3])
    return (in_rows[:, :, None] & in_cols[:, None, :])[..., None]


def apply_policy(
    policy: CropPolicy,
    images: np.ndarray | Sequence[np.ndarray],
    boxes: np.ndarray | Sequence[Sequence[float]] | None,
    training: bool = False,
    seed: int | None = None,
    epoch: int = 0,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    """Crop a batch with ``policy``: see :meth:`search.crop.policy.CropPolicy.apply`."""
    canvas, sizes = stack_images(images)
    windows = crop_windows(policy, sizes, boxes, training, seed, epoch, indices)
    index = np.arange(len(sizes))
    return cut(canvas, windows, index, policy.size, policy.fit, policy.interpolation, sizes)


def crop_samples(
    policy: CropPolicy,
    samples: Samples,
    training: bool = False,
    seed: int = 0,
    epoch: int = 0,
    canvas: tf.Tensor | None = None,
) -> np.ndarray:
    """Crop every sample of a split, keyed by its index in the split -> uint8 (N, h, w, 3).

    ``canvas`` may hold ``samples.images`` as a resident tensor, converted once per trial.
    """
    index = np.arange(len(samples))
    windows = crop_windows(policy, samples.sizes, samples.boxes, training, seed, epoch, index)
    source = samples.images if canvas is None else canvas
    return cut(source, windows, index, policy.size, policy.fit, policy.interpolation, samples.sizes)
