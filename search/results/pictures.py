"""What the pictures a trial logs share: Pillow's font, centred text and light PNG writing.

A trial logs its pictures while it trains or right after (the crop samples, the confusion
matrix), so they are composed with Pillow rather than drawn as matplotlib figures: a tenth of
the CPU, taken from the training beside them on 2 cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

#: Font size of captions and labels, pixels.
TEXT = 11


@cache
def font(size: int = TEXT) -> Font:
    """Pillow's own font (no file to find; a bitmap font of fixed size without FreeType)."""
    return ImageFont.load_default(size=size)


def line_height(face: Font) -> int:
    """Pixels from one line of ``face`` to the next."""
    top, bottom = face.getbbox("Hgjy|")[1::2]
    return int(bottom - top) + 3


def centred_text(
    draw: ImageDraw.ImageDraw,
    lines: Sequence[str],
    center: float,
    top: float,
    face: Font,
    line: int,
    fill: str = "black",
) -> None:
    """``lines`` centred on ``center``, the first at ``top``."""
    for k, text in enumerate(lines):
        left = center - face.getlength(text) / 2
        draw.text((left, top + k * line), text, fill=fill, font=face)


def turned_text(
    picture: Image.Image, text: str, corner: tuple[float, float], length: int, face: Font, line: int
) -> None:
    """``text`` in black, read upwards, in a column ``line`` wide and ``length`` tall whose
    top-left corner is ``corner``; it ends 4 pixels below the column's top."""
    band = Image.new("L", (length, line), 0)
    ImageDraw.Draw(band).text((length - 4 - face.getlength(text), 0), text, 255, face)
    picture.paste("black", (int(corner[0]), int(corner[1])), band.rotate(90, expand=True))


def save_picture(picture: Image.Image, path: str | Path) -> Path:
    """Write ``picture`` as PNG (light compression: a trial writes them while it trains)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="PNG", compress_level=1)
    return path
