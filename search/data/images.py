"""Decoding images once: EXIF orientation applied, RGB uint8, longest side at most ``max_side``.

Two steps per file, both with Pillow: :func:`probe` reads the header only (size and EXIF
orientation: enough to check boxes and estimate memory before any pixel is decoded), then
:func:`decode` produces the pixels and says which orientation it applied (the one
:func:`PIL.ImageOps.exif_transpose` found once the file was read, which can differ from the
header's for a PNG whose EXIF chunk follows its pixel data). Either takes a file path or the
encoded bytes themselves (an image held inside a TFRecord). Problems with one file raise
:class:`ImageFault`, whose ``reason`` is one of the closed set below; the caller skips the
file's samples and counts them.

Modes: grayscale, palette (with or without transparency), RGBA/LA, CMYK and 16-bit (``I;16``,
``I``) inputs all become RGB uint8. Transparent pixels are composited over black (the colour
of the canvas padding); 16-bit values are scaled by 255/65535.

Boxes are pixel edges ``(x_min, y_min, x_max, y_max)`` in the file's stored pixel frame (the
frame Pillow reports before orientation); :func:`orient_boxes` moves them with the EXIF
transposition, and the resize scales them with the image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Reasons an image's samples are skipped.
MISSING_FILE = "missing file"
NOT_AN_IMAGE = "not an image"
CORRUPT_IMAGE = "corrupt image"
IMAGE_TOO_LARGE = "image too large"

_ORIENTATION_TAG = 0x0112
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_WITH_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")

#: An image file, or its encoded bytes.
Source = Path | bytes


class ImageFault(Exception):
    """A problem with one image file: its samples are skipped for ``reason``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Probe:
    """What an image header says: the stored pixel size and the EXIF orientation (1..8)."""

    width: int
    height: int
    orientation: int = 1

    @property
    def oriented_size(self) -> tuple[int, int]:
        """(width, height) after the EXIF orientation is applied."""
        swaps = self.orientation in (5, 6, 7, 8)
        return (self.height, self.width) if swaps else (self.width, self.height)

    def target_size(self, max_side: int) -> tuple[int, int]:
        """(width, height) at the working resolution: longest side at most ``max_side``
        (0 keeps the original size); never upscaled."""
        width, height = self.oriented_size
        longest = max(width, height)
        if max_side <= 0 or longest <= max_side:
            return width, height
        scale = max_side / longest
        return max(1, round(width * scale)), max(1, round(height * scale))


def _file(source: Source) -> Path | BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source


def probe(source: Source) -> Probe:
    """Read the header of ``source``; raise :class:`ImageFault` when it is not a usable image."""
    try:
        with Image.open(_file(source)) as image:
            width, height = image.size
            # The base method reads only what opening found: PngImageFile.getexif would decode
            # the whole image to look for EXIF after the pixel data.
            orientation = _orientation(Image.Image.getexif(image))
    except FileNotFoundError:
        raise ImageFault(MISSING_FILE) from None
    except IsADirectoryError:
        raise ImageFault(NOT_AN_IMAGE, "a folder") from None
    except UnidentifiedImageError:
        raise ImageFault(NOT_AN_IMAGE) from None
    except Image.DecompressionBombError as error:
        raise ImageFault(IMAGE_TOO_LARGE, str(error)) from None
    except Exception as error:  # Pillow raises many types for broken headers
        raise ImageFault(CORRUPT_IMAGE, f"{type(error).__name__}: {error}") from None
    if width < 1 or height < 1:
        raise ImageFault(CORRUPT_IMAGE, f"size {width}x{height}")
    return Probe(width, height, orientation)


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def decode(source: Source, expected: Probe, max_side: int) -> tuple[np.ndarray, Probe]:
    """Pixels of ``source`` as uint8 (h, w, 3): oriented, converted to RGB and resized so the
    longest side is at most ``max_side``; and the probe with the orientation applied.

    Raises :class:`ImageFault` on any decoding error.
    """
    planned = expected.target_size(max_side)
    try:
        with Image.open(_file(source)) as image:
            if (image.width, image.height) != (expected.width, expected.height):
                raise ImageFault(CORRUPT_IMAGE, "changed since it was probed")
            swaps = expected.orientation in (5, 6, 7, 8)
            image.draft(None, (planned[1], planned[0]) if swaps else planned)
            image.load()
            applied = Probe(expected.width, expected.height, _orientation(image.getexif()))
            target = applied.target_size(max_side)
            if applied.orientation != 1:
                ImageOps.exif_transpose(image, in_place=True)
            rgb = to_rgb(image)
            if rgb.size != target:
                rgb = rgb.resize(target, Image.Resampling.BILINEAR)
            pixels = np.asarray(rgb, dtype=np.uint8)
    except ImageFault:
        raise
    except FileNotFoundError:
        raise ImageFault(MISSING_FILE) from None
    except Image.DecompressionBombError as error:
        raise ImageFault(IMAGE_TOO_LARGE, str(error)) from None
    except Exception as error:  # truncated data, bad chunks, decoder errors
        raise ImageFault(CORRUPT_IMAGE, f"{type(error).__name__}: {error}") from None
    if pixels.shape != (target[1], target[0], 3):
        raise ImageFault(CORRUPT_IMAGE, f"decoded to {pixels.shape}, expected {target}")
    return pixels, applied


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB: alpha composited over black, 16-bit and float values scaled."""
    mode = image.mode
    if mode in (*_SIXTEEN_BIT, "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode in _SIXTEEN_BIT or (mode == "I" and values.size and values.max() > 255):
            values = values * (255.0 / 65535.0)
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _WITH_ALPHA:
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return image if mode == "RGB" else image.convert("RGB")


def orient_boxes(boxes: np.ndarray, width: int, height: int, orientation: int) -> np.ndarray:
    """Boxes ``(k, 4)`` in the stored frame of a ``width`` x ``height`` image -> the same boxes
    after the EXIF ``orientation`` is applied (as :func:`PIL.ImageOps.exif_transpose` does)."""
    x0, y0, x1, y1 = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).T
    w, h = float(width), float(height)
    table = {
        1: (x0, y0, x1, y1),
        2: (w - x1, y0, w - x0, y1),  # mirror left-right
        3: (w - x1, h - y1, w - x0, h - y0),  # rotate 180
        4: (x0, h - y1, x1, h - y0),  # mirror top-bottom
        5: (y0, x0, y1, x1),  # transpose
        6: (h - y1, x0, h - y0, x1),  # rotate 90 clockwise
        7: (h - y1, w - x1, h - y0, w - x0),  # transverse
        8: (y0, w - x1, y1, w - x0),  # rotate 90 counter-clockwise
    }
    return np.stack(table.get(orientation, table[1]), axis=1)


def place_boxes(
    boxes: np.ndarray, width: int, height: int, orientation: int, working: tuple[int, int]
) -> np.ndarray:
    """Boxes in a ``width`` x ``height`` file's stored frame -> the decoded image's frame:
    the EXIF ``orientation`` applied, then scaled to the ``working`` (height, width)."""
    oriented = orient_boxes(boxes, width, height, orientation)
    full_width, full_height = Probe(width, height, orientation).oriented_size
    scale = np.array([working[1] / full_width, working[0] / full_height] * 2)
    result: np.ndarray = (oriented * scale).reshape(-1, 4)
    return result[0] if np.ndim(boxes) == 1 else result
