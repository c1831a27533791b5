"""The confusion-matrix picture every completed trial logs."""

from __future__ import annotations

import numpy as np
import pytest

from search.results.confusion import BLUES, COUNTED_CLASSES, confusion_picture


def _cells(picture_array: np.ndarray, n: int) -> tuple[int, int, int]:
    """(left, top, cell) of the matrix: the block of non-white pixels right of the labels."""
    blue = (picture_array != 255).any(axis=2) & (picture_array[..., 2] > picture_array[..., 0])
    rows, cols = np.nonzero(blue)
    top, left = rows.min(), cols.min()
    return left, top, (cols.max() + 1 - left) // n


@pytest.mark.parametrize("n", [2, 6, 12, 40])
def test_cells_are_shaded_by_their_share_of_the_row_and_nothing_leaves_the_picture(n: int) -> None:
    matrix = np.zeros((n, n), dtype=np.int64)
    matrix[np.arange(n), np.arange(n)] = 7  # every row all on its diagonal...
    matrix[0] = 0
    matrix[0, 1] = matrix[0, 0] = 5  # ...but the first, half and half
    names = [f"class {i} with a name far too long to show" for i in range(n)]
    array = np.asarray(confusion_picture(names, matrix))
    edge = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    assert (edge == 255).all(), "something is drawn across the picture's edge"
    left, top, cell = _cells(array, n)
    corner = cell // 8  # a cell's corner: away from the count written in its middle

    def shade(row: int, col: int) -> np.ndarray:
        return array[top + row * cell + corner, left + col * cell + corner]

    assert (shade(n - 1, n - 1) == BLUES[-1]).all()
    assert (shade(n - 1, 0) == BLUES[0]).all()
    assert (shade(0, 0) == shade(0, 1)).all()
    assert BLUES[0].sum() > shade(0, 0).sum() > BLUES[-1].sum()
    y, x = top + cell // 2, left + cell // 2
    middle = array[y - 2 : y + 3, x - 2 : x + 3]
    written = len(np.unique(middle.reshape(-1, 3), axis=0)) > 1
    assert written == (n <= COUNTED_CLASSES), "counts are written up to 30 classes"


def test_the_picture_grows_with_the_classes_up_to_a_bound() -> None:
    sizes = [confusion_picture([str(i) for i in range(n)], np.eye(n)).size for n in (2, 10, 200)]
    assert sizes[0][0] < sizes[1][0] <= 1000 and sizes[2][0] <= 1300
