"""The confirmation's outcome: the winner by validation, the verdict by the interval, box
sensitivity."""

from __future__ import annotations

import pytest

from search.crop.policy import CropPolicy
from search.results.report import confirmation_csv, robustness_header, robustness_rows
from search.settings import TrainConfig
from search.study.confirm.model import needs_exact_boxes, summarize
from search.study.record import TrialRecord


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


def confirm_runs(values: dict[int, list[float]], seeds: list[int]) -> list[TrialRecord]:
    return [
        record(n, "full" if n == 0 else "object", v, train=TrainConfig(seed=s))
        for n, vs in values.items()
        for v, s in zip(vs, seeds, strict=True)
    ]


def levels() -> dict[str, dict[str, float | None]]:
    return {"exact": {"mean_iou": 1.0}}


def test_winner_is_chosen_by_validation_and_the_verdict_uses_the_interval() -> None:
    seeds = [11, 12, 13]
    chosen = [record(0, "full"), record(1), record(2, policy={"context": 0.5})]
    runs = confirm_runs({0: [0.50, 0.52, 0.51], 1: [0.80, 0.82, 0.81], 2: [0.70, 0.9, 0.6]}, seeds)
    result = summarize(chosen, runs, seeds, 4, 1.0, levels())
    assert result.winner == 1
    assert result.distinguishable
    assert "beats the full image" in result.verdict
    win = result.winner_summary
    assert win.val.mean == pytest.approx(0.81)
    assert win.test_vs_baseline is not None
    assert win.test_vs_baseline.mean == pytest.approx(0.30)
    assert "trial,policy,baseline,winner" in confirmation_csv(result)


def test_a_winner_within_noise_of_the_baseline_is_called_not_distinguishable() -> None:
    seeds = [1, 2, 3]
    chosen = [record(0, "full"), record(1)]
    runs = confirm_runs({0: [0.80, 0.85, 0.90], 1: [0.88, 0.82, 0.91]}, seeds)
    result = summarize(chosen, runs, seeds, 4, 1.0, levels())
    assert result.winner == 1
    assert not result.distinguishable
    assert "NOT distinguishable from the full image" in result.verdict


def test_the_baseline_can_win() -> None:
    seeds = [1, 2]
    runs = confirm_runs({0: [0.9, 0.9], 1: [0.5, 0.6]}, seeds)
    result = summarize([record(0, "full"), record(1)], runs, seeds, 4, 1.0, levels())
    assert result.winner == 0 and not result.distinguishable
    assert "no crop beat it" in result.verdict


def test_a_winner_that_needs_exact_boxes_is_flagged() -> None:
    seeds = [1, 2]
    runs = confirm_runs({0: [0.6, 0.6], 1: [0.9, 0.9]}, seeds)
    runs = [
        r.model_copy(update={"robustness": {"iou0.75": 0.5 if r.number else 0.6, "none": 0.4}})
        for r in runs
    ]
    described = {**levels(), "iou0.75": {"mean_iou": 0.75}, "none": {"mean_iou": None}}
    result = summarize([record(0, "full"), record(1)], runs, seeds, 4, 1.0, described)
    warning = needs_exact_boxes(result)
    assert warning is not None and "needs exact boxes" in warning
    header = robustness_header(result)
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in robustness_rows(result)}
    assert list(rows) == [1, 0], "the winner first, then every other confirmed policy"
    assert rows[1]["iou0.75_test_mean"] == "0.5000" and rows[0]["iou0.75_test_mean"] == "0.6000"
    assert rows[1]["exact_test_mean"] == "0.9000" and rows[1]["none_test_mean"] == "0.4000"
    assert "iou0.5_test_mean" not in header  # only the levels that were measured


def test_a_winner_below_the_baseline_even_with_exact_boxes_is_not_said_to_need_them() -> None:
    seeds = [1, 2]
    runs = confirm_runs({0: [0.6, 0.6], 1: [0.7, 0.7]}, seeds)
    runs = [  # the crop wins on validation, loses on test with every box
        r.model_copy(update={"test_accuracy": 0.5, "robustness": {"iou0.75": 0.5}})
        if r.number
        else r.model_copy(update={"robustness": {"iou0.75": 0.6}})
        for r in runs
    ]
    described = {**levels(), "iou0.75": {"mean_iou": 0.75}}
    result = summarize([record(0, "full"), record(1)], runs, seeds, 4, 1.0, described)
    assert result.winner == 1 and result.baseline_summary is not None
    assert result.winner_summary.test.mean < result.baseline_summary.test.mean
    assert needs_exact_boxes(result) is None  # it reads no box; it is below the full image anyway
