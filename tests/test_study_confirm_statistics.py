"""The confirmation's statistics: estimates and paired t-intervals."""

from __future__ import annotations

import math

import pytest

from search.study.confirm.statistics import (
    Estimate,
    Interval,
    estimate,
    paired_interval,
    race_losers,
)


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


def test_a_race_drops_on_the_one_sided_bound() -> None:
    # Behind by 0.34 and 0.26 on two seeds: the two-sided 95% interval reaches above 0
    # (t = 12.7 with one degree of freedom), the one-sided 95% bound (t = 6.3) does not.
    leader, behind = [0.9975, 0.995], [0.66, 0.74]
    assert not paired_interval(behind, leader).excludes_zero
    assert paired_interval(behind, leader, level=0.90).high < 0
    scores = {1: dict(enumerate(leader)), 2: dict(enumerate(behind))}
    assert race_losers(scores, [1, 2], min_seeds=2) == [2]


def test_two_values_have_a_sample_std_and_two_pairs_a_finite_interval() -> None:
    assert estimate([0.8, 1.0]).std == pytest.approx(math.sqrt(0.02))  # n - 1 = 1 in the divisor
    # differences 1 and 3: mean 2, sd sqrt(2); t(0.975, 1) = 12.706205, so half = 12.706205
    interval = paired_interval([2.0, 5.0], [1.0, 2.0])
    assert (interval.mean, interval.n) == (pytest.approx(2.0), 2)
    assert interval.low == pytest.approx(2.0 - 12.706205, abs=1e-5)
    assert interval.high == pytest.approx(2.0 + 12.706205, abs=1e-5)
    assert paired_interval([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]).n == 3


def test_one_pair_keeps_its_difference_as_the_mean() -> None:
    single = paired_interval([0.9], [0.6])
    assert single.mean == pytest.approx(0.3) and single.n == 1
    assert (single.low, single.high) == (-math.inf, math.inf)


def test_unpaired_measurements_are_refused() -> None:
    with pytest.raises(ValueError):  # a seed without its pair would shift every later pair
        paired_interval([0.9, 0.8, 0.7], [0.6, 0.5])


def test_an_interval_reads_in_points() -> None:
    assert str(Interval(0.0123, -0.0212, 0.0291, 3)) == "+1.23 [-2.12, +2.91] points"
    assert str(Estimate(0.91234, 0.01, 3)) == "0.9123 ± 0.0100 (n=3)"
