"""The confirmation's statistics: estimates and paired t-intervals."""

from __future__ import annotations

import math

import pytest

from search.study.confirm.statistics import estimate, paired_interval, race_losers


def test_estimate_is_mean_and_sample_std() -> None:
    est = estimate([0.8, 0.9, 1.0])
    assert est.mean == pytest.approx(0.9)
    assert est.std == pytest.approx(0.1)
    assert est.n == 3
    assert estimate([0.5]).std == 0.0


def test_paired_interval_matches_the_t_distribution() -> None:
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653
    interval = paired_interval([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)
    assert interval.mean == pytest.approx(2.0)
    assert interval.low == pytest.approx(2.0 - half, abs=1e-5)
    assert interval.high == pytest.approx(2.0 + half, abs=1e-5)
    assert not interval.excludes_zero  # 2.0 - 2.48 < 0: three noisy pairs do not settle it
    assert paired_interval([3.0, 3.1, 3.2], [1.0, 1.0, 1.0]).excludes_zero
    wide = paired_interval([0.90, 0.80, 0.85], [0.85, 0.85, 0.85])
    assert not wide.excludes_zero
    single = paired_interval([0.9], [0.8])
    assert single.low == -math.inf and not single.excludes_zero


def test_race_losers_are_wholly_below_the_leader_over_enough_seeds() -> None:
    scores = {
        0: {1: 0.40, 2: 0.41, 3: 0.39},  # the baseline, far behind
        1: {1: 0.90, 2: 0.92, 3: 0.91},  # the leader
        2: {1: 0.91, 2: 0.88, 3: 0.92},  # behind on average, not wholly
        3: {1: 0.60, 2: 0.59},  # far behind on the seeds it has
    }
    assert race_losers(scores, [0, 1, 2, 3], min_seeds=2) == [0, 3]
    assert race_losers(scores, [0, 1, 2, 3], min_seeds=2, keep=[0]) == [3]
    assert race_losers(scores, [0, 1, 2, 3], min_seeds=3, keep=[0]) == []
    assert race_losers(scores, [2, 3], min_seeds=2) == [3], "the leader of those racing"
    assert race_losers({1: {1: 0.5}, 2: {1: 0.1}}, [1, 2], min_seeds=1) == [], (
        "one seed: no interval"
    )
    tied = {4: {1: 0.5, 2: 0.5}, 5: {1: 0.5, 2: 0.5}}
    assert race_losers(tied, [5, 4], min_seeds=2) == []
