"""Decoding images once: modes, EXIF orientation, resizing, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import images as imaging
from search.data.images import ImageFault, Probe, decode, orient_boxes, probe

WIDTH, HEIGHT = 40, 24
MARK = (5, 3, 15, 9)  # x_min, y_min, x_max, y_max as pixel edges


def ink_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (pixel edges) of the pixels brighter than mid-gray."""
    ys, xs = np.nonzero(pixels.max(axis=-1) > 127)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def marked(width: int = WIDTH, height: int = HEIGHT, box: tuple[int, ...] = MARK) -> Image.Image:
    array = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    array[y0:y1, x0:x1] = 255
    return Image.fromarray(array)


def save_with_orientation(image: Image.Image, path: Path, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, exif=exif)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_moves_pixels_and_box_alike(tmp_path: Path, orientation: int) -> None:
    path = save_with_orientation(marked(), tmp_path / "o.png", orientation)
    found = probe(path)
    assert (found.width, found.height, found.orientation) == (WIDTH, HEIGHT, orientation)
    pixels, _ = decode(path, found, max_side=0)
    swapped = orientation in (5, 6, 7, 8)
    assert pixels.shape == ((WIDTH, HEIGHT, 3) if swapped else (HEIGHT, WIDTH, 3))
    expected = orient_boxes(np.array([MARK]), WIDTH, HEIGHT, orientation)[0]
    assert ink_box(pixels) == tuple(int(v) for v in expected)


def test_exif_rotation_in_a_jpeg(tmp_path: Path) -> None:
    image = marked(64, 32, (8, 4, 24, 12))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored pixels must be turned 90 degrees clockwise
    path = tmp_path / "photo.jpg"
    image.save(path, exif=exif, quality=100)
    pixels, _ = decode(path, probe(path), max_side=0)
    assert pixels.shape == (64, 32, 3)
    expected = orient_boxes(np.array([[8, 4, 24, 12]]), 64, 32, 6)[0]
    assert tuple(expected) == (20, 8, 28, 24)
    assert ink_box(pixels) == (20, 8, 28, 24)


def test_resize_keeps_the_longest_side_and_never_upscales(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    marked(400, 200, (100, 50, 200, 150)).save(path)
    found = probe(path)
    assert found.target_size(100) == (100, 50)
    assert found.target_size(1000) == (400, 200)
    assert found.target_size(0) == (400, 200)
    pixels, _ = decode(path, found, max_side=100)
    assert pixels.shape == (50, 100, 3)
    assert ink_box(pixels) == (25, 12, 50, 38)  # the box scaled by 1/4, give or take the filter


def test_oriented_size_and_target_swap() -> None:
    assert Probe(40, 20, 6).oriented_size == (20, 40)
    assert Probe(40, 20, 3).oriented_size == (40, 20)
    assert Probe(400, 200, 8).target_size(100) == (50, 100)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        ("L", [100, 100, 100]),
        ("1", [255, 255, 255]),
        ("P", [10, 20, 30]),
        ("P-transparent", [0, 0, 0]),
        ("RGBA-half", [100, 50, 0]),
        ("LA-clear", [0, 0, 0]),
        ("I;16", [128, 128, 128]),
        ("CMYK", [255, 0, 0]),
    ],
)
def test_modes_become_rgb_uint8(tmp_path: Path, make: str, expected: list[int]) -> None:
    path = tmp_path / f"{make}.png"
    if make == "L":
        Image.new("L", (6, 4), 100).save(path)
    elif make == "1":
        Image.new("1", (6, 4), 1).save(path)
    elif make.startswith("P"):
        image = Image.new("P", (6, 4), 1)
        image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
        image.save(path, transparency=1) if make == "P-transparent" else image.save(path)
        assert Image.open(path).mode == "P"
    elif make == "RGBA-half":
        Image.new("RGBA", (6, 4), (200, 100, 0, 128)).save(path)
    elif make == "LA-clear":
        Image.new("LA", (6, 4), (200, 0)).save(path)
    elif make == "I;16":
        Image.fromarray(np.full((4, 6), 32896, dtype=np.uint16)).save(path)  # 128 * 257
        assert Image.open(path).mode == "I;16"
    elif make == "CMYK":
        path = tmp_path / "cmyk.jpg"
        Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(path, quality=100)
    pixels, _ = decode(path, probe(path), max_side=0)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (4, 6, 3)
    assert np.abs(pixels.astype(int) - expected).max() <= 2


def test_missing_file_is_a_fault(tmp_path: Path) -> None:
    with pytest.raises(ImageFault) as caught:
        probe(tmp_path / "nothing.jpg")
    assert caught.value.reason == imaging.MISSING_FILE


def test_a_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n")
    with pytest.raises(ImageFault) as caught:
        probe(path)
    assert caught.value.reason == imaging.NOT_AN_IMAGE


def test_a_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    found = probe(path)  # the header is intact
    with pytest.raises(ImageFault) as caught:
        decode(path, found, max_side=0)
    assert caught.value.reason == imaging.CORRUPT_IMAGE


def test_garbage_after_a_valid_header_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    noise = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64  # smash the compressed pixel data
    path.write_bytes(bytes(data))
    found = probe(path)
    with pytest.raises(ImageFault) as caught:
        decode(path, found, max_side=0)
    assert caught.value.reason == imaging.CORRUPT_IMAGE
