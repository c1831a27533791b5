"""Do two networks rank the same policies alike? Kendall's tau between their confirmed
means (scipy's exact test, and a bootstrap interval over the seeds), whether their top-1
agrees, and whether a network learned enough for its ranking to mean anything (TF-free)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from search.study.confirm.model import Confirmation

#: A network has learned when its best confirmed policy's accuracy is at least this far
#: above chance (1 / classes); below it, its ranking is noise and is never compared.
LEARNED_MARGIN = 0.10
#: Bootstrap resamples of the seeds for the interval of tau.
BOOTSTRAP_ROUNDS = 2000


@dataclass(frozen=True)
class Tau:
    """Kendall's tau between two rankings, its two-sided p-value (scipy, exact for small
    samples) and a 95% bootstrap interval over the seeds (None without per-seed values)."""

    tau: float
    p_value: float
    n: int
    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        interval = (
            "" if self.low is None else f", 95% bootstrap [{self.low:+.2f}, {self.high:+.2f}]"
        )
        return (
            f"Kendall's tau {self.tau:+.2f} over {self.n} policies (p={self.p_value:.3f}{interval})"
        )


def kendall(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Kendall's tau-b between paired values and its p-value; (0, 1) when either side is
    constant (no ranking to agree with)."""
    from scipy import stats  # scipy only when a ranking is compared

    if len(a) < 2 or len(set(a)) < 2 or len(set(b)) < 2:
        return 0.0, 1.0
    result = stats.kendalltau(a, b)
    return float(result.statistic), float(result.pvalue)


def rank_agreement(
    a_runs: Sequence[Sequence[float]],
    b_runs: Sequence[Sequence[float]],
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> Tau:
    """Tau between the per-policy means of ``a_runs`` and ``b_runs`` (one list of per-seed
    scores per policy, same policy order), with a percentile interval from resampling each
    policy's seeds with replacement."""
    tau, p_value = kendall(
        [statistics.fmean(r) for r in a_runs], [statistics.fmean(r) for r in b_runs]
    )
    if min(len(r) for r in (*a_runs, *b_runs)) < 2:
        return Tau(tau, p_value, len(a_runs))
    rng = random.Random(seed)

    def resampled(runs: Sequence[Sequence[float]]) -> list[float]:
        return [statistics.fmean(rng.choices(r, k=len(r))) for r in runs]

    taus = sorted(kendall(resampled(a_runs), resampled(b_runs))[0] for _ in range(rounds))
    low = taus[math.floor(0.025 * (rounds - 1))]
    high = taus[math.ceil(0.975 * (rounds - 1))]
    return Tau(tau, p_value, len(a_runs), low, high)


def has_learned(best: float, classes: int, margin: float = LEARNED_MARGIN) -> bool:
    """Whether a best confirmed accuracy ``best`` is clearly above chance for ``classes``."""
    return classes < 1 or best >= 1.0 / classes + margin


@dataclass(frozen=True)
class Comparison:
    """Two networks' confirmations of one study: which learned, their rank agreement over
    the policies both confirmed (None when either has not learned), and their winners."""

    networks: tuple[str, str]
    untrained: list[str]
    tau: Tau | None
    winners: tuple[str, str]
    top1_agrees: bool

    def lines(self) -> list[str]:
        """What the terminal, the views and the exported file say about it."""
        a, b = self.networks
        lines = list(self.untrained)
        if self.tau is not None:
            lines.append(f"rank agreement {a} vs {b}: {self.tau}")
        if self.untrained:
            return lines  # a network that has not learned has no winner worth naming
        if not self.top1_agrees:
            lines.append(f"the winner differs: {self.winners[0]} on {a}, {self.winners[1]} on {b}")
        else:
            lines.append(f"the winner is the same on both: {self.winners[0]}")
        return lines


def describe_network(network: str) -> str:
    """A confirmation's network as people read it (empty: the study's own)."""
    return network or "the study's network"


def network_options(network: str) -> str:
    """The ``confirm`` options that select ``network`` (a :func:`network_label`)."""
    model, _, size = network.partition("@")
    options = "" if not model or model == BUILT_IN else f" --model {model}"
    return options + (f" --size {size.replace('x', ',')}" if size else "")


#: The built-in network's name in a network label (``search.settings.BUILT_IN_MODEL``).
BUILT_IN = "compact_cnn"


def untrained_line(confirmation: Confirmation, study: str) -> str | None:
    """One line when ``confirmation``'s network has not learned (its best confirmed test
    accuracy is not :data:`LEARNED_MARGIN` above chance), with the command to train more."""
    best = max(s.test.mean for s in confirmation.summaries)
    if has_learned(best, confirmation.classes):
        return None
    chance = 1.0 / confirmation.classes
    more = confirmation.epochs * 3
    return (
        f"{describe_network(confirmation.network)} is not trained enough to judge: its best "
        f"confirmed test accuracy {best:.4f} is less than {LEARNED_MARGIN:.2f} above chance "
        f"({chance:.4f}) after {confirmation.epochs} epochs; give it more: cropsearch confirm "
        f"--study {study}{network_options(confirmation.network)} --epochs {more}"
    )


def compare(own: Confirmation, other: Confirmation, study: str) -> Comparison:
    """The study's own confirmation against ``other`` (another network or size)."""
    names = (describe_network(own.network), describe_network(other.network))
    untrained = [line for c in (own, other) if (line := untrained_line(c, study)) is not None]
    mine = {s.number: s for s in own.summaries}
    theirs = {s.number: s for s in other.summaries}
    common = [n for n in mine if n in theirs and mine[n].val_runs and theirs[n].val_runs]
    tau = None
    if not untrained and len(common) >= 2:
        tau = rank_agreement(
            [mine[n].val_runs for n in common], [theirs[n].val_runs for n in common]
        )
    winners = (own.winner_summary.label, other.winner_summary.label)
    return Comparison(names, untrained, tau, winners, own.winner == other.winner)
