"""The selection rules: which trials a confirmation takes."""

from __future__ import annotations

from search.crop.policy import CropPolicy
from search.settings import TrainConfig
from search.study.record import TrialRecord
from search.study.selection import candidates


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
