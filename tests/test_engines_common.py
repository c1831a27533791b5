"""What both engines share: the screening subset and the time budget."""

from __future__ import annotations

import numpy as np
import pytest

from search.engines.common import (
    SearchOptions,
    StudyError,
    plan_budget,
    screen_fraction,
    screen_index,
    study_screen_epochs,
)
from search.settings import StudyKey


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


def test_a_confirmation_run_of_twice_the_epochs_costs_twice_a_trial() -> None:
    budget = plan_budget(900.0, 100.0, 10.0, 5, 12, 0.1, epoch_ratio=2.0)
    same = plan_budget(900.0, 100.0, 20.0, 5, 12, 0.1)
    assert budget.confirm_fraction == pytest.approx(same.confirm_fraction)
    assert budget.confirm_seconds == pytest.approx(same.confirm_seconds)
    # the anchors still cost a trial each: 5 x 10 s, not 5 x 20 s
    tight = plan_budget(300.0, 100.0, 10.0, 5, 12, 0.1, epoch_ratio=2.0)
    assert tight.deadline == pytest.approx(100.0 + 5 * 10.0)


def test_a_screening_trial_trains_half_the_epochs_unless_told() -> None:
    assert SearchOptions(epochs=4).trial_epochs == 2
    assert SearchOptions(epochs=5).trial_epochs == 2
    assert SearchOptions(epochs=1).trial_epochs == 1
    assert SearchOptions(epochs=4, screen_epochs=4).trial_epochs == 4


def test_a_resumed_study_screens_at_its_recorded_epochs() -> None:
    fresh = SearchOptions(epochs=4, study="s")
    assert study_screen_epochs(fresh, {}).trial_epochs == 2
    recorded = {StudyKey.EPOCHS: 4, StudyKey.SCREEN_EPOCHS: 3}
    assert study_screen_epochs(fresh, recorded).trial_epochs == 3
    # a study recorded before screening had its own epochs screened at its epochs
    assert study_screen_epochs(fresh, {StudyKey.EPOCHS: 6}).trial_epochs == 6
    same = SearchOptions(epochs=4, study="s", screen_epochs=3)
    assert study_screen_epochs(same, recorded).trial_epochs == 3
    with pytest.raises(StudyError, match="study 's' screens at 3 epochs"):
        study_screen_epochs(SearchOptions(epochs=4, study="s", screen_epochs=2), recorded)
