"""Confirmation: the top-k policies and the baseline re-trained over fresh seeds, paired
intervals against the baseline, and test accuracy under a detector's boxes or none.

The search ranks policies by single, cheap runs; the answer a user takes home comes from here.
The test split never chooses: the winner is the best by confirmed *validation* mean; test
scores and intervals are reported.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from search.settings import TrainConfig, derive_seed
from search.study.record import TrialRecord

if TYPE_CHECKING:
    import numpy as np

    from search.data import Dataset
    from search.results.tracking import Tracker

#: Confidence of the intervals against the baseline.
LEVEL = 0.95
#: Test-time box levels: target mean IoU with the true box (None: no box, full image).
BOX_LEVELS: dict[str, float | None] = {"iou0.9": 0.9, "iou0.75": 0.75, "iou0.5": 0.5, "none": None}

Printer = Callable[[str], None]


class RecordStore(Protocol):
    """Where an engine keeps a study's records (search trials and confirmation runs)."""

    def search_records(self) -> list[TrialRecord]:
        """Every search trial's record."""
        ...

    def confirm_records(self) -> list[TrialRecord]:
        """Every finished confirmation run's record."""
        ...

    def save_confirm(self, key: str, record: TrialRecord) -> None:
        """Keep one confirmation run's record under ``key``."""
        ...

    def save_confirmation(self, confirmation: Confirmation) -> None:
        """Keep the confirmation's outcome (read by export)."""
        ...


# -- statistics -----------------------------------------------------------------------------
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
    from scipy import stats

    diffs = [x - y for x, y in zip(a, b, strict=True)]
    est = estimate(diffs)
    if est.n < 2:
        return Interval(est.mean, -math.inf, math.inf, est.n)
    half = float(stats.t.ppf(0.5 + level / 2, est.n - 1)) * est.std / math.sqrt(est.n)
    return Interval(est.mean, est.mean - half, est.mean + half, est.n)


# -- choosing what to confirm ---------------------------------------------------------------
def candidates(records: Sequence[TrialRecord], top: int) -> list[TrialRecord]:
    """The baseline, then the ``top`` best distinct complete search trials (by the search's
    validation accuracy; a repeat of a configuration counts once, whatever its epochs: the
    confirmation trains its own)."""
    complete = [r for r in records if r.state == "complete" and r.val_accuracy is not None]
    complete.sort(key=lambda r: (-(r.val_accuracy or 0.0), r.number))
    chosen: list[TrialRecord] = []
    seen = set()
    baseline = next((r for r in complete if r.baseline), None)
    if baseline is not None:
        chosen.append(baseline)
        seen.add(baseline.configuration(epochs=False))
    for record in complete:
        if len(chosen) - (baseline is not None) >= top:
            break
        if record.configuration(epochs=False) not in seen:
            seen.add(record.configuration(epochs=False))
            chosen.append(record)
    return chosen


def confirm_seeds(seed: int, repeats: int) -> list[int]:
    """Training seeds of the confirmation repeats, apart from the search's."""
    return [derive_seed(seed, "confirm", r) for r in range(repeats)]


# -- outcome --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicySummary:
    """One confirmed policy: scores over the seeds, and against the baseline (same seeds)."""

    number: int
    label: str
    baseline: bool
    policy: dict[str, Any]
    val: Estimate
    test: Estimate
    val_vs_baseline: Interval | None
    test_vs_baseline: Interval | None
    robustness: dict[str, Estimate] = field(default_factory=dict)


@dataclass(frozen=True)
class Confirmation:
    """What the confirmation stage found; plain data (stored with the study, exported)."""

    summaries: list[PolicySummary]
    winner: int
    verdict: str
    distinguishable: bool
    seeds: list[int]
    epochs: int
    train_fraction: float
    box_levels: dict[str, dict[str, float | None]]

    @property
    def winner_summary(self) -> PolicySummary:
        """The confirmed winner's line."""
        return next(s for s in self.summaries if s.number == self.winner)

    @property
    def baseline_summary(self) -> PolicySummary | None:
        """The baseline's line."""
        return next((s for s in self.summaries if s.baseline), None)

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Confirmation:
        """Inverse of :meth:`to_json`."""

        def interval(value: dict[str, Any] | None) -> Interval | None:
            return None if value is None else Interval(**value)

        summaries = [
            PolicySummary(
                number=s["number"],
                label=s["label"],
                baseline=s["baseline"],
                policy=s["policy"],
                val=Estimate(**s["val"]),
                test=Estimate(**s["test"]),
                val_vs_baseline=interval(s["val_vs_baseline"]),
                test_vs_baseline=interval(s["test_vs_baseline"]),
                robustness={k: Estimate(**v) for k, v in s["robustness"].items()},
            )
            for s in data["summaries"]
        ]
        return cls(**{**data, "summaries": summaries})


def summarize(
    chosen: Sequence[TrialRecord],
    runs: Sequence[TrialRecord],
    seeds: Sequence[int],
    epochs: int,
    train_fraction: float,
    box_levels: dict[str, dict[str, float | None]],
) -> Confirmation:
    """Per-policy estimates, paired intervals against the baseline and the verdict.

    ``runs`` are complete confirmation records; a policy's runs pair with the baseline's by
    training seed.
    """
    by_policy: dict[int, dict[int, TrialRecord]] = {}
    for run in runs:
        by_policy.setdefault(run.number, {})[run.train.seed] = run
    base = next((c for c in chosen if c.baseline), None)
    base_runs = by_policy.get(base.number, {}) if base is not None else {}
    summaries = []
    for source in chosen:
        mine = by_policy.get(source.number, {})
        used = [s for s in seeds if s in mine]
        if not used:
            continue
        val = [mine[s].val_accuracy or 0.0 for s in used]
        test = [mine[s].test_accuracy or 0.0 for s in used]
        paired = [s for s in used if s in base_runs]
        val_diff = test_diff = None
        if base is not None and not source.baseline and paired:
            val_diff = paired_interval(
                [mine[s].val_accuracy or 0.0 for s in paired],
                [base_runs[s].val_accuracy or 0.0 for s in paired],
            )
            test_diff = paired_interval(
                [mine[s].test_accuracy or 0.0 for s in paired],
                [base_runs[s].test_accuracy or 0.0 for s in paired],
            )
        levels = sorted({k for s in used for k in mine[s].robustness})
        robustness = {"exact": estimate(test)}
        for level in levels:
            robustness[level] = estimate([mine[s].robustness.get(level, 0.0) for s in used])
        summaries.append(
            PolicySummary(
                source.number,
                source.label,
                source.baseline,
                source.policy,
                estimate(val),
                estimate(test),
                val_diff,
                test_diff,
                robustness,
            )
        )
    if not summaries:
        raise ValueError("no confirmation run completed")
    winner = max(summaries, key=lambda s: (s.val.mean, s.baseline, -s.number))
    verdict, distinguishable = _verdict(winner)
    return Confirmation(
        summaries,
        winner.number,
        verdict,
        distinguishable,
        list(seeds),
        epochs,
        train_fraction,
        box_levels,
    )


def _verdict(winner: PolicySummary) -> tuple[str, bool]:
    if winner.baseline:
        return "the full image is the best confirmed policy: no crop beat it", False
    diff = winner.test_vs_baseline
    if diff is None:
        return f"{winner.label} is the best confirmed policy (no baseline to compare)", False
    if not diff.excludes_zero:
        return (
            f"{winner.label} is NOT distinguishable from the full image: its test accuracy "
            f"minus the baseline's is {diff} ({LEVEL:.0%} interval over {diff.n} paired seeds "
            "contains 0)"
        ), False
    direction = "beats" if diff.mean > 0 else "is worse than"
    return (
        f"{winner.label} {direction} the full image: test accuracy {diff} "
        f"({LEVEL:.0%} interval over {diff.n} paired seeds)"
    ), True


# -- the stage ------------------------------------------------------------------------------
def box_levels(data: Dataset, seed: int) -> tuple[dict[str, np.ndarray | None], dict[str, Any]]:
    """Test-time boxes per level (disturbed to a target mean IoU, or none) and what each
    level is: ``{name: {"target_iou", "noise", "mean_iou"}}``."""
    from search.crop.geometry import noise_for_iou, noisy_boxes

    boxes, sizes = data.test.boxes, data.test.sizes
    level_seed = derive_seed(seed, "boxes")
    test_boxes: dict[str, np.ndarray | None] = {}
    described: dict[str, dict[str, float | None]] = {
        "exact": {"target_iou": 1.0, "noise": 0.0, "mean_iou": 1.0}
    }
    for name, target in BOX_LEVELS.items():
        if target is None:
            test_boxes[name] = None
            described[name] = {"target_iou": None, "noise": None, "mean_iou": None}
            continue
        noise, measured = noise_for_iou(boxes, sizes, target, level_seed)
        test_boxes[name] = noisy_boxes(boxes, sizes, noise, level_seed)
        described[name] = {"target_iou": target, "noise": noise, "mean_iou": measured}
    return test_boxes, described


@dataclass(frozen=True)
class ConfirmPlan:
    """How to confirm: how many policies, seeds, epochs and what share of the training data."""

    top: int = 3
    repeats: int = 3
    seed: int = 0
    epochs: int = 4
    train_fraction: float = 1.0


def run_key(record: TrialRecord, plan: ConfirmPlan, seed: int) -> str:
    """Storage key of one confirmation run: the trial, the seed and the fidelity."""
    return f"confirm:{record.number}:{seed}:{plan.epochs}:{plan.train_fraction:.4f}"


def confirm(
    store: RecordStore,
    data: Dataset,
    tracker: Tracker,
    parent_id: str,
    plan: ConfirmPlan,
    train_index: np.ndarray | None,
    echo: Printer = print,
) -> Confirmation:
    """Re-train the baseline and the top policies over fresh seeds (reusing finished repeats),
    then summarize. Every run is a child run tagged ``stage=confirm``."""
    from search.study.trial import TrialSetup, run_trial

    records = store.search_records()
    chosen = candidates(records, plan.top)
    if not chosen:
        raise ValueError("the study has no completed trial to confirm")
    seeds = confirm_seeds(plan.seed, plan.repeats)
    if data.has_boxes:
        test_boxes, described = box_levels(data, plan.seed)
    else:  # no boxes to disturb: every policy is box-free, its test score is the only one
        test_boxes, described = None, {"exact": {"target_iou": 1.0, "noise": 0.0, "mean_iou": 1.0}}
    done = {
        (r.number, r.train.seed): r
        for r in store.confirm_records()
        if r.state == "complete"
        and r.train.epochs == plan.epochs
        and abs(r.train_fraction - plan.train_fraction) < 1e-4
    }
    todo = [(c, s) for c in chosen for s in seeds if (c.number, s) not in done]
    echo(
        f"confirming {len(chosen)} policies x {plan.repeats} seeds ({plan.epochs} epochs, "
        f"{plan.train_fraction:.0%} of the training data): {len(todo)} runs to train, "
        f"{len(chosen) * len(seeds) - len(todo)} already done"
    )
    for i, (source, seed) in enumerate(todo, start=1):
        setup = TrialSetup(
            study=source.study,
            number=source.number,
            policy=source.crop_policy,
            train=TrainConfig.model_validate(
                {**source.train.model_dump(), "seed": seed, "epochs": plan.epochs}
            ),
            stage="confirm",
            engine=source.engine,
            baseline=source.baseline,
            train_index=train_index,
            test_boxes=test_boxes,
        )
        record = run_trial(setup, data, tracker, parent_id, crop_samples=False)
        if record.state == "complete":
            store.save_confirm(run_key(record, plan, seed), record)
            done[(record.number, seed)] = record
            outcome = f"val {record.val_accuracy:.4f}, test {record.test_accuracy:.4f}"
        else:
            outcome = f"FAILED: {record.error}"
        echo(f"[confirm {i}/{len(todo)}] {setup.run_name()}: {outcome} ({record.seconds:.0f}s)")
    runs = [r for (number, seed), r in done.items() if seed in seeds]
    confirmation = summarize(chosen, runs, seeds, plan.epochs, plan.train_fraction, described)
    store.save_confirmation(confirmation)
    return confirmation
