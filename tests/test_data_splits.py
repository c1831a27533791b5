"""Stratified allocation and group splits, without images."""

from __future__ import annotations

import numpy as np
import pytest

from search.data.splits import TEST, TRAIN, VAL, allocate, split_groups, stratified_pick


@pytest.mark.parametrize(
    ("counts", "total", "caps", "expected"),
    [
        ([50, 30, 20], 10, None, [5, 3, 2]),
        ([1, 1, 1], 2, None, [1, 1, 0]),  # remainders tie: first classes first
        ([7, 2, 1], 3, None, [2, 1, 0]),  # 2.1, 0.6, 0.3: largest remainder gets the extra
        ([3, 3], 4, [1, 1], [1, 1]),  # caps win over the total
        ([5, 0], 2, None, [2, 0]),
        ([4, 4], 0, None, [0, 0]),
    ],
)
def test_allocate(
    counts: list[int], total: int, caps: list[int] | None, expected: list[int]
) -> None:
    shares = allocate(np.array(counts), total, None if caps is None else np.array(caps))
    assert shares.tolist() == expected


def test_stratified_pick_keeps_proportions() -> None:
    labels = np.repeat(np.arange(4), [400, 300, 200, 100])
    rng = np.random.default_rng(0)
    picked = stratified_pick(labels, 100, rng)
    assert len(np.unique(picked)) == 100
    assert np.bincount(labels[picked]).tolist() == [40, 30, 20, 10]
    assert np.array_equal(picked, stratified_pick(labels, 100, np.random.default_rng(0)))


def test_split_groups_is_stratified_and_keeps_train() -> None:
    labels = np.repeat(np.arange(3), [20, 10, 2])
    codes = split_groups(labels, 0.2, 0.2, np.random.default_rng(1))
    counts = {
        code: np.bincount(labels[codes == code], minlength=3).tolist()
        for code in (TRAIN, VAL, TEST)
    }
    assert sum(counts[VAL]) == round(32 * 0.2) and sum(counts[TEST]) == round(32 * 0.2)
    assert counts[VAL][0] == 4 and counts[TEST][0] == 4
    assert all(n >= 1 for n in counts[TRAIN])  # every class keeps one group in train
    again = split_groups(labels, 0.2, 0.2, np.random.default_rng(1))
    assert np.array_equal(codes, again)


def test_split_groups_of_singletons_stay_in_train() -> None:
    codes = split_groups(np.arange(5), 0.5, 0.3, np.random.default_rng(0))
    assert (codes == TRAIN).all()
