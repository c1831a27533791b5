"""Estimates of repeated measurements and paired t-intervals (pairs share a training seed)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

#: Confidence of the intervals against the baseline.
LEVEL = 0.95
#: Confidence that a dropped racing policy is below the leader: one-sided, since a race asks
#: only "is it worse?" (the upper end of the two-sided 90% interval).
RACE_LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """Mean, sample standard deviation and count of some repeated measurements."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} (n={self.n})"


@dataclass(frozen=True)
class Interval:
    """A mean difference with its two-sided t-interval."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or below 0."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{100 * self.mean:+.2f} [{100 * self.low:+.2f}, {100 * self.high:+.2f}] points"


def estimate(values: Sequence[float]) -> Estimate:
    """Mean ± sample std (0 for a single value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Estimate(statistics.fmean(values), std, len(values))


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean of ``a[i] - b[i]`` with its t-interval (pairs share a training seed). With one
    pair the interval is unbounded."""
    from scipy import stats  # scipy (~0.5 s) only when an interval is computed

    diffs = [x - y for x, y in zip(a, b, strict=True)]
    est = estimate(diffs)
    if est.n < 2:
        return Interval(est.mean, -math.inf, math.inf, est.n)
    half = float(stats.t.ppf(0.5 + level / 2, est.n - 1)) * est.std / math.sqrt(est.n)
    return Interval(est.mean, est.mean - half, est.mean + half, est.n)


def race_losers(
    scores: Mapping[int, Mapping[int, float]],
    racing: Sequence[int],
    min_seeds: int,
    keep: Collection[int] = (),
) -> list[int]:
    """The racing policies to drop: those whose one-sided :data:`RACE_LEVEL` upper bound of
    the paired difference from the current leader (the highest mean score, the lowest number
    on a tie) lies below 0, over at least ``min_seeds`` shared seeds; never those in ``keep``.
    ``scores[policy][seed]`` is a policy's score with a seed."""
    present = [p for p in racing if scores.get(p)]
    if len(present) < 2:
        return []
    leader = max(present, key=lambda p: (statistics.fmean(scores[p].values()), -p))
    losers = []
    for policy in present:
        shared = sorted(set(scores[policy]) & set(scores[leader]))
        if policy == leader or policy in keep or len(shared) < max(min_seeds, 2):
            continue
        diff = paired_interval(
            [scores[policy][s] for s in shared],
            [scores[leader][s] for s in shared],
            level=2 * RACE_LEVEL - 1,
        )
        if diff.high < 0:
            losers.append(policy)
    return losers
