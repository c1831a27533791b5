"""The selection rules: which trials a confirmation takes."""

from __future__ import annotations

from search.crop.policy import CropPolicy
from search.settings import TrainConfig
from search.study.confirm.model import Confirmation
from search.study.record import TrialRecord
from search.study.selection import (
    baseline_record,
    best_record,
    candidates,
    chosen_record,
    pareto_front,
    ranked,
)


def record(number: int, kind: str = "object", value: float = 0.5, **fields: object) -> TrialRecord:
    policy = CropPolicy(kind=kind, **fields.pop("policy", {}))  # type: ignore[arg-type]
    return TrialRecord.model_validate(
        {
            "study": "s",
            "number": number,
            "state": "complete",
            "baseline": kind == "full" and number == 0,
            "policy": policy.to_dict(),
            "train": TrainConfig(),
            "val_accuracy": value,
            "test_accuracy": value,
            **fields,
        }
    )


def test_candidates_are_the_baseline_then_the_top_distinct_policies() -> None:
    ctx = {"policy": {"context": 0.3}}
    records = [
        record(0, "full", 0.40),
        record(1, "object", 0.90, **ctx),
        record(2, "object", 0.90, **ctx),  # the same configuration again: counts once
        record(3, "center", 0.70),
        record(4, "object", 0.95),
        record(5, "random", 0.60, state="pruned"),
        record(6, "random", 0.65),
    ]
    chosen = candidates(records, top=3)
    assert [r.number for r in chosen] == [0, 4, 1, 3]
    assert [r.number for r in candidates(records, top=1)] == [0, 4]


def scored(
    number: int, exact: float, none: float, kind: str = "object", **fields: object
) -> TrialRecord:
    return record(number, kind, exact, val_by_boxes={"exact": exact, "none": none}, **fields)


def test_the_pareto_front_is_the_trials_no_other_beats_on_both_objectives() -> None:
    records = [
        scored(0, 0.40, 0.40, "full"),
        scored(1, 0.95, 0.20, policy={"context": 0.1}),
        scored(2, 0.80, 0.50, policy={"context": 0.5}),
        scored(3, 0.70, 0.45, policy={"context": 0.7}),  # beaten by 2 on both
        scored(4, 0.80, 0.50, policy={"context": 0.5}),  # 2's scores again: the earliest counts
        scored(5, 0.95, 0.10, policy={"context": 0.2}),  # as good as 1 on one, worse on the other
        scored(6, 0.30, 0.60, policy={"context": 1.0}),
        scored(7, 0.99, 0.99, state="pruned"),
        record(8, "object", 0.99),  # not scored on the objectives
    ]
    front = pareto_front(records, ["exact", "none"])
    assert [r.number for r in front] == [1, 2, 6]
    assert [r.number for r in pareto_front(records, ["none", "exact"])] == [6, 2, 1]
    # A multi-objective study confirms the baseline and the whole front, whatever --top says.
    assert [r.number for r in candidates(records, 1, ["exact", "none"])] == [0, 1, 2, 6]
    assert [r.number for r in candidates(records, 1)] == [0, 8]


def test_best_is_the_highest_complete_trial_the_earliest_on_a_tie() -> None:
    records = [
        record(0, "full", 0.40),
        record(1, "object", 0.99, state="pruned"),
        record(2, "object", 0.90),
        record(3, "center", 0.90),
        record(4, "random", 0.0),  # scored 0: ranks last, not as if unscored
        record(5, "random", None),  # type: ignore[arg-type]
    ]
    assert [r.number for r in ranked(records)] == [2, 3, 0, 4]
    assert best_record(records).number == 2  # type: ignore[union-attr]
    assert best_record([record(1, state="failed")]) is None


def test_the_baseline_is_the_complete_baseline_trial() -> None:
    sampled, baseline = record(1, "object", 0.9), record(0, "full", 0.4)
    assert baseline_record([sampled, baseline]) is baseline
    assert baseline_record([sampled, record(0, "full", 0.4, state="failed")]) is None
    assert baseline_record([]) is None


def test_the_answer_is_the_confirmed_winner_else_the_best_screening_run() -> None:
    records = [record(0, "full", 0.40), record(1, "object", 0.95), record(2, "center", 0.70)]
    assert chosen_record(records, None).number == 1  # type: ignore[union-attr]
    confirmation = Confirmation(
        summaries=[], winner=2, verdict="", distinguishable=False, seeds=[0], epochs=4,
        train_fraction=1.0, box_levels={},
    )  # fmt: skip
    assert chosen_record(records, confirmation).number == 2  # type: ignore[union-attr]
    assert chosen_record(records[:2], confirmation) is None  # its winner is not among them


def test_a_sampled_repeat_of_the_baseline_is_not_confirmed_twice() -> None:
    """A sampled ``full`` trial trains the baseline's configuration (with other epochs after a
    resume, say): the baseline stands for it, and the next distinct trial takes its place."""
    repeat = record(2, "full", 0.80, train=TrainConfig(epochs=8))
    records = [record(0, "full", 0.40), record(1, "object", 0.90), repeat, record(3, "center", 0.7)]
    assert [r.number for r in candidates(records, top=2)] == [0, 1, 3]
