"""Cutting pixels: crop windows -> resized crops, one batched ``crop_and_resize`` per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from search.windows import crop_and_resize_boxes, letterbox_frames

if TYPE_CHECKING:
    from search.policy import CropPolicy

#: Value of pixels outside the image (``border=pad``) and of letterbox bars.
FILL_VALUE = 0.0
#: Crops cut per ``crop_and_resize`` call, bounding the float32 buffer.
CHUNK = 1024


def stack_images(images: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Images of any sizes -> (zero-padded uint8 canvas batch (N, H, W, 3), sizes (N, 2) as (h, w))."""
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
) -> np.ndarray:
    """Cut ``windows[i]`` from ``canvas[image_index[i]]`` and resize to ``size`` -> uint8 (M, h, w, 3).

    ``canvas`` holds the images top-left aligned and zero-padded; pixels outside an image read
    as :data:`FILL_VALUE`.
    """
    canvas_tensor = tf.convert_to_tensor(canvas)
    canvas_hw = (int(canvas_tensor.shape[1]), int(canvas_tensor.shape[2]))
    frames = None
    if fit == "letterbox":
        windows, frames = letterbox_frames(windows, size)
    boxes = crop_and_resize_boxes(windows, canvas_hw, size)
    out = np.empty((len(windows), *size, 3), dtype=np.uint8)
    for start in range(0, len(windows), CHUNK):
        stop = start + CHUNK
        crops = tf.image.crop_and_resize(
            canvas_tensor,
            boxes[start:stop],
            np.asarray(image_index[start:stop], dtype=np.int32),
            size,
            method=interpolation,
            extrapolation_value=FILL_VALUE,
        )
        if frames is not None:
            crops = crops * _frame_mask(frames[start:stop], size)
        out[start:stop] = tf.cast(tf.round(tf.clip_by_value(crops, 0.0, 255.0)), tf.uint8).numpy()
    return out


def _frame_mask(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """1 inside each sample's letterbox frame, 0 on the bars: (M, h, w, 1) float32."""
    h, w = size
    rows = (np.arange(h) + 0.5) / h
    cols = (np.arange(w) + 0.5) / w
    in_rows = (rows[None] >= frames[:, 1:2]) & (rows[None] <= frames[:, 3:4])
    in_cols = (cols[None] >= frames[:, 0:1]) & (cols[None] <= frames[:, 2:3])
    return (in_rows[:, :, None] & in_cols[:, None, :])[..., None].astype(np.float32)


def apply_policy(
    policy: CropPolicy,
    images: np.ndarray | Sequence[np.ndarray],
    boxes: np.ndarray | Sequence[Sequence[float]] | None,
    training: bool = False,
    seed: int | None = None,
    epoch: int = 0,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    """Crop a batch with ``policy``: see :meth:`search.policy.CropPolicy.apply`."""
    canvas, sizes = stack_images(images)
    windows = policy.windows(sizes, boxes, training=training, seed=seed, epoch=epoch, indices=indices)
    return cut(canvas, windows, np.arange(len(sizes)), policy.size, policy.fit, policy.interpolation)
