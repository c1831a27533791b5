"""The crop-sample picture every trial logs: windows and box in their colours, a sample with
no box cut and drawn as its full image, and every caption inside the picture."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import ImageColor

from search.crop.policy import CropPolicy
from search.results import crop_grid as grid
from search.results.crop_grid import crop_grid, crop_panels
from tests.test_results_figures import WINNER, _samples

#: Longer than a tile, so it wraps.
CLASSES = ["circle", "a rather long class name that will not fit on one line", "triangle"]


def _pixels(picture: object, color: str) -> int:
    """How many pixels of ``picture`` are exactly ``color``."""
    array = np.asarray(picture)
    return int((array == ImageColor.getrgb(color)).all(axis=-1).sum())


def test_the_box_and_both_windows_are_drawn_in_their_colors() -> None:
    picture = crop_grid(CropPolicy(kind="object", context=0.3), _samples(), CLASSES)
    for color in (grid.BOX_COLOR, grid.TRAIN_COLOR, grid.EVAL_COLOR):
        assert _pixels(picture, color) > 4 * 20, color


def test_a_sample_without_a_box_is_drawn_as_its_full_image_crop() -> None:
    """With no box at inference (--boxes none, a detector's miss), an object crop falls back
    to the full image, in the crop samples as in the scores; the other sample keeps its box,
    and no box is drawn for the miss."""
    samples = dataclasses.replace(
        _samples(2), boxes=np.array([[8.0, 6.0, 30.0, 28.0], [np.nan] * 4])
    )
    policy = CropPolicy(kind="object")
    panels = crop_panels(policy, samples, modes=("eval",))
    whole = CropPolicy(kind="full").windows(samples.sizes, np.array([[0, 0, 48, 40]] * 2), False)
    assert panels.windows["eval"][1] == pytest.approx(whole[1])
    boxed = panels.windows["eval"][0]
    assert boxed[2] - boxed[0] < 40, "the boxed sample is still cut around its box"
    with_box, without = (samples.take(slice(i, i + 1)) for i in (0, 1))
    assert _pixels(crop_grid(policy, with_box, CLASSES, modes=("eval",)), grid.BOX_COLOR) > 0
    assert _pixels(crop_grid(policy, without, CLASSES, modes=("eval",)), grid.BOX_COLOR) == 0


@pytest.mark.parametrize(
    ("count", "modes"), [(4, ("train", "eval")), (1, ("train",)), (3, ("eval",))]
)
def test_every_caption_and_the_title_stay_inside_the_picture(
    count: int, modes: tuple[str, ...]
) -> None:
    """A long policy label and a long class name wrap: no line is wider than its tile (the
    title: the picture), and nothing is drawn across the picture's edge."""
    picture = crop_grid(WINNER, _samples(count), CLASSES, modes=modes)
    array = np.asarray(picture)
    edge = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    assert (edge == 255).all(), "something is drawn across the picture's edge"
    font = grid.font()
    title = grid._wrap(WINNER.label(), picture.width - 2 * grid.GAP, font)
    name = grid._wrap(CLASSES[1], grid.TILE, font)
    assert len(title) >= 1 and len(name) >= 2
    assert all(font.getlength(line) <= grid.TILE for line in name)
    assert all(font.getlength(line) <= picture.width - 2 * grid.GAP for line in title)
    assert "".join(name).replace(" ", "") == CLASSES[1].replace(" ", "")


def test_a_word_wider_than_its_tile_is_broken_inside() -> None:
    font = grid.font()
    word = "x" * 80
    lines = grid._wrap(word, grid.TILE, font)
    assert len(lines) > 1 and "".join(lines) == word
    assert all(font.getlength(line) <= grid.TILE for line in lines)
