"""The outcome of a confirmation: per-policy estimates, intervals against the baseline and
the verdict, as a plain value stored with the study (JSON) and exported."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from search.data.boxes import BoxSource
from search.settings import BUILT_IN_MODEL, DEFAULT_BOXES
from search.study.confirm.statistics import LEVEL, Estimate, Interval, estimate, paired_interval
from search.study.record import TrialRecord


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
    #: Dropped by the racing confirmation after this many seeds (None: every seed).
    dropped_after: int | None = None
    #: Validation accuracy per seed, in the confirmation's seed order (rank agreement).
    val_runs: list[float] = field(default_factory=list)


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
    #: The boxes at inference the winner was chosen for (a box source spec): its validation
    #: and test scores use them.
    boxes: str = DEFAULT_BOXES
    #: A multi-objective study's box sources (the first is ``boxes``; empty for one) and
    #: the confirmed members of its Pareto front, by trial number.
    objectives: list[str] = field(default_factory=list)
    pareto: list[int] = field(default_factory=list)
    #: The network confirmed on (:func:`network_label`); empty: the study's own network.
    network: str = ""
    #: The number of classes (chance is 1 / classes; 0: unknown).
    classes: int = 0

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
                dropped_after=s.get("dropped_after"),
                val_runs=s.get("val_runs", []),
            )
            for s in data["summaries"]
        ]
        return cls(**{**data, "summaries": summaries})


def network_label(model: str | None, size: Sequence[int] | None) -> str:
    """The key of a confirmation on another network or size: ``keras:MobileNetV3Small``,
    ``compact_cnn@96x96``; empty for the study's own network at the policies' size."""
    if model is None and size is None:
        return ""
    return (model or BUILT_IN_MODEL) + ("" if size is None else f"@{size[0]}x{size[1]}")


def network_size(network: str) -> list[int] | None:
    """The output size a :func:`network_label` names (``...@96x96``), if any."""
    _, at, size = network.partition("@")
    return [int(v) for v in size.split("x")] if at else None


def summarize(
    chosen: Sequence[TrialRecord],
    runs: Sequence[TrialRecord],
    seeds: Sequence[int],
    epochs: int,
    train_fraction: float,
    box_levels: dict[str, dict[str, float | None]],
    boxes: str = DEFAULT_BOXES,
    objectives: Sequence[str] = (),
    front: Sequence[int] = (),
    dropped: Mapping[int, int] | None = None,
) -> Confirmation:
    """Per-policy estimates, paired intervals against the baseline and the verdict.

    ``runs`` are complete confirmation records; a policy's runs pair with the baseline's by
    training seed. Their test scores are with ``boxes``; the robustness levels hold the
    scores with every other kind of box. With several ``objectives`` (box sources), the
    chosen policies are the Pareto front's members (``front``, by
    trial number); the winner is still the best with ``boxes``, the first. ``dropped``:
    the policies the racing confirmation dropped, by trial number, and after how many seeds;
    their estimates use those seeds, and none of them wins.
    """
    dropped = dropped or {}
    chosen_for = BoxSource.parse(boxes)
    by_policy: dict[int, dict[int, TrialRecord]] = {}
    for run in runs:
        by_policy.setdefault(run.number, {})[run.train.seed] = run
    base = next((c for c in chosen if c.baseline), None)
    base_runs = by_policy.get(base.number, {}) if base is not None else {}
    summaries = []
    for source in chosen:
        mine = by_policy.get(source.number, {})
        used = [s for s in seeds[: dropped.get(source.number)] if s in mine]
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
        robustness = {chosen_for.name: estimate(test)}
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
                dropped.get(source.number),
                val,
            )
        )
    if not summaries:
        raise ValueError("no confirmation run completed")
    finalists = [s for s in summaries if s.dropped_after is None]
    winner = max(finalists, key=lambda s: (s.val.mean, s.baseline, -s.number))
    verdict, distinguishable = _verdict(winner)
    pareto = [number for number in front if any(s.number == number for s in summaries)]
    if objectives:
        verdict = (
            f"with {chosen_for.describe()} at inference (the first --boxes), {verdict}; the "
            f"Pareto front over {', '.join(objectives)} holds trial(s) "
            f"{', '.join(map(str, pareto))} (export one with --trial N)"
        )
    elif not chosen_for.exact:
        verdict = f"with {chosen_for.describe()} at inference, {verdict}"
    return Confirmation(
        summaries,
        winner.number,
        verdict,
        distinguishable,
        list(seeds),
        epochs,
        train_fraction,
        box_levels,
        str(chosen_for),
        list(objectives),
        pareto,
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


def needs_exact_boxes(confirmation: Confirmation, drop: float = 0.02) -> str | None:
    """A plain warning when the winner loses more than ``drop`` test accuracy with boxes of
    mean IoU 0.75, or falls there below a baseline it beats with exact boxes."""
    if not BoxSource.parse(confirmation.boxes).exact:
        return None  # chosen for other boxes already: the table shows the trade-off
    win, base = confirmation.winner_summary, confirmation.baseline_summary
    exact, noisy = win.robustness.get("exact"), win.robustness.get("iou0.75")
    if exact is None or noisy is None:
        return None
    base_mean = base.test.mean if base is not None else None
    if base_mean is not None and noisy.mean < base_mean <= exact.mean:
        return (
            f"the winner needs exact boxes: with detector-like boxes (mean IoU 0.75) its test "
            f"accuracy {noisy.mean:.4f} is below the full image's {base_mean:.4f}"
        )
    if exact.mean - noisy.mean > drop:
        return (
            f"the winner is sensitive to the boxes: test accuracy {exact.mean:.4f} with exact "
            f"boxes, {noisy.mean:.4f} with boxes of mean IoU 0.75"
        )
    return None
