"""Confirmation statistics, candidate choice, verdicts, seeds, box noise and screening, on
synthetic values with known answers (no training)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search.crop.geometry import box_iou, crop_windows, noise_for_iou, noisy_boxes
from search.crop.policy import CropPolicy
from search.data import load_dataset
from search.engines.common import plan_budget, screen_fraction, screen_index
from search.engines.optuna import sampler_seed
from search.results.report import confirmation_csv, robustness_rows
from search.settings import TrainConfig, derive_seed
from search.space import Space
from search.study.confirm.boxes import BOX_LEVELS, box_levels
from search.study.confirm.model import needs_exact_boxes, summarize
from search.study.confirm.stage import confirm_seeds
from search.study.confirm.statistics import estimate, paired_interval
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
    rows = {row[0]: row for row in robustness_rows(result)}
    assert rows["iou0.75"][2] == "0.5000" and rows["iou0.75"][4] == "0.6000"
    assert "iou0.5" not in rows  # only the levels that were measured


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


def test_seeds_are_derived_apart_and_repeatable() -> None:
    confirm = confirm_seeds(0, 3)
    assert confirm == confirm_seeds(0, 3)
    assert confirm[:2] == confirm_seeds(0, 2)
    others = {derive_seed(0, "train"), sampler_seed(0, 0), sampler_seed(0, 10)}
    assert len(set(confirm) | others) == len(confirm) + len(others)
    assert confirm_seeds(1, 3) != confirm


def test_box_noise_zero_leaves_boxes_and_windows_alone() -> None:
    boxes = np.array([[10.0, 10.0, 30.0, 40.0], [50.0, 5.0, 90.0, 25.0]])
    sizes = np.array([[96, 96], [96, 96]])
    assert np.array_equal(noisy_boxes(boxes, sizes, 0.0, 3), boxes)
    plain = CropPolicy(kind="object", context=0.25)
    noisy = CropPolicy(kind="object", context=0.25, box_noise=0.3)
    assert np.allclose(
        crop_windows(plain, sizes, boxes, training=True, seed=1),
        crop_windows(noisy, sizes, boxes, training=False, seed=1),
    )  # eval never disturbs the box
    moved = crop_windows(noisy, sizes, boxes, training=True, seed=1)
    assert not np.allclose(moved, crop_windows(plain, sizes, boxes, training=True, seed=1))
    assert np.array_equal(moved, crop_windows(noisy, sizes, boxes, training=True, seed=1))
    assert not np.array_equal(moved, crop_windows(noisy, sizes, boxes, training=True, seed=2))


def test_disturbed_boxes_stay_inside_their_images() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 70, (500, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 26, (500, 2))], axis=1)
    sizes = np.full((500, 2), 96)
    moved = noisy_boxes(boxes, sizes, 0.5, 7)
    assert (moved[:, :2] >= 0).all() and (moved[:, 2:] <= 96).all()
    assert (moved[:, 2:] > moved[:, :2]).all()
    assert box_iou(boxes, boxes) == pytest.approx(np.ones(500))


@pytest.mark.parametrize("target", [0.9, 0.75, 0.5])
def test_noise_levels_hit_their_mean_iou(target: float) -> None:
    data = load_dataset("shapes:train=24,val=24,test=200")
    noise, measured = noise_for_iou(data.test.boxes, data.test.sizes, target, 5)
    assert noise > 0
    iou = box_iou(data.test.boxes, noisy_boxes(data.test.boxes, data.test.sizes, noise, 5))
    assert iou.mean() == pytest.approx(measured)
    assert abs(measured - target) <= 0.05


def test_box_levels_describe_what_they_measured() -> None:
    data = load_dataset("shapes:train=24,val=24,test=100")
    boxes, described = box_levels(data, seed=0)
    assert set(boxes) == set(BOX_LEVELS)
    assert boxes["none"] is None
    for name, target in BOX_LEVELS.items():
        if target is not None:
            assert abs((described[name]["mean_iou"] or 0) - target) <= 0.05
    assert described["exact"]["mean_iou"] == 1.0


def test_every_kind_of_the_default_space_has_a_conventional_anchor() -> None:
    space = Space.load("spaces/default.yaml")
    anchors = space.conventions()
    assert [a["kind"] for a in anchors] == [
        "center", "random", "random_resized", "object", "object_random"
    ]  # fmt: skip
    by_kind = {a["kind"]: a for a in anchors}
    assert by_kind["center"]["fraction"] == 0.875  # timm crop_pct
    assert by_kind["random_resized"]["fraction"] == 0.08  # torchvision scale=(0.08, 1)
    assert by_kind["object"]["context"] == 0.2
    assert "context" not in by_kind["center"]  # only the parameters active for the kind
    for anchor in anchors:
        CropPolicy(**{k: v for k, v in anchor.items()}, size=48)


def test_anchors_are_moved_into_the_space_range(tmp_path: object) -> None:
    space = Space.load("spaces/object.yaml")
    for anchor in space.conventions():
        assert -0.1 <= anchor["context"] <= 1.5
        assert anchor["context"] == pytest.approx(round(anchor["context"] / 0.05) * 0.05)


def test_screening_subset() -> None:
    assert screen_fraction(1500, None) == 1.0
    assert screen_fraction(55000, None) == pytest.approx(5000 / 55000)
    assert screen_fraction(55000, 0.5) == 0.5
    assert screen_index(1500, 1.0, 0) is None
    index = screen_index(1000, 0.25, 0)
    assert index is not None and len(index) == 250
    assert np.array_equal(index, np.sort(index)) and len(set(index.tolist())) == 250
    assert np.array_equal(index, screen_index(1000, 0.25, 0))  # the same for every trial


def test_budget_without_timeout_confirms_on_all_data() -> None:
    budget = plan_budget(None, 10.0, 20.0, 5, 12, 0.1)
    assert budget.deadline is None and budget.confirm_fraction == 1.0
    assert budget.confirm_seconds == pytest.approx(12 * 20.0 / 0.1)


def test_budget_splits_the_timeout_and_keeps_the_anchors() -> None:
    # 900 s, 100 s gone, 20 s per screening trial on 10% of the data, 12 confirmation runs
    budget = plan_budget(900.0, 100.0, 20.0, 5, 12, 0.1)
    assert budget.deadline == pytest.approx(100.0 + 400.0)  # half of the 800 s left
    assert budget.confirm_fraction == pytest.approx(400.0 / (12 * 20.0) * 0.1)
    assert budget.confirm_seconds == pytest.approx(400.0)
    assert budget.overrun == 0.0
    roomy = plan_budget(10_000.0, 0.0, 20.0, 5, 12, 0.1)
    assert roomy.confirm_fraction == 1.0  # never more than the whole split
    # too little time: the anchors still run, confirmation at the screening size, overrun said
    tight = plan_budget(300.0, 100.0, 20.0, 5, 12, 0.1)
    assert tight.deadline == pytest.approx(100.0 + 5 * 20.0)
    assert tight.confirm_fraction == pytest.approx(0.1)
    assert tight.overrun == pytest.approx(5 * 20.0 + 12 * 20.0 - 200.0)
