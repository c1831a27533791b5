"""The pruning rule on a real in-memory Optuna study, fed known per-epoch validation accuracy
through the callback a trial trains with (no training): the anchors and the baseline are never
pruned, nothing before the warm-up (the second half of the epochs) or after the last epoch,
nothing in a multi-objective study."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
import pytest
from optuna.trial import TrialState

from search.engines.optuna_pruning import epoch_pruning, make_pruner, may_prune
from search.settings import Pruner

optuna.logging.set_verbosity(optuna.logging.ERROR)


def study_with(pruner: Pruner, n_anchors: int, epochs: int, objectives: int = 1) -> optuna.Study:
    return optuna.create_study(
        directions=["maximize"] * objectives, pruner=make_pruner(pruner, n_anchors, epochs)
    )


def train(
    study: optuna.Study, curve: Sequence[float], baseline: bool = False, objectives: int = 1
) -> int | None:
    """One trial reporting ``curve`` (validation accuracy per epoch, its length the epochs) as
    the engine does; the epoch after which it was stopped, or None when it ran them all."""
    trial = study.ask()
    prune = epoch_pruning(trial, baseline, len(curve), objectives)
    for epoch, value in enumerate(curve):
        if prune(epoch, {"val_accuracy": value, "accuracy": 1.0}):
            study.tell(trial, state=TrialState.PRUNED)
            return epoch
    study.tell(trial, curve[-1] if objectives == 1 else [curve[-1]] * objectives)
    return None


def flat(value: float, epochs: int = 7) -> list[float]:
    return [value] * epochs


# Three anchors (the baseline first), 7 epochs: the median rule judges from epoch 3 (7 // 2) on.
ANCHORS = [flat(0.3), flat(0.9), flat(0.2)]


@pytest.mark.parametrize(
    ("baseline", "epoch", "epochs", "expected"),
    [
        (False, 0, 4, True),
        (False, 2, 4, True),
        (False, 3, 4, False),  # the last epoch: stopping now saves nothing
        (False, 0, 1, False),
        (True, 0, 4, False),  # the baseline: never
        (True, 3, 4, False),
    ],
)
def test_may_prune(baseline: bool, epoch: int, epochs: int, expected: bool) -> None:
    assert may_prune(baseline, epoch, epochs) is expected


def test_the_median_rule_spares_the_anchors_and_waits_for_the_second_half() -> None:
    study = study_with("median", n_anchors=3, epochs=7)
    # The third anchor is below the median of the two before it, but anchors are never judged.
    assert [train(study, curve, baseline=i == 0) for i, curve in enumerate(ANCHORS)] == [None] * 3
    # A sampled trial below the median of the anchors (0.3) is stopped at the first judged
    # epoch: epoch 3, not before.
    assert train(study, flat(0.1)) == 3
    assert train(study, flat(0.31)) is None  # above the median: runs every epoch
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 + [
        TrialState.PRUNED,
        TrialState.COMPLETE,
    ]


def test_a_short_run_is_judged_from_its_second_epoch() -> None:
    study = study_with("median", n_anchors=1, epochs=3)
    assert train(study, [0.9, 0.9, 0.9], baseline=True) is None
    assert train(study, [0.1, 0.1, 0.1]) == 1  # warm-up max(1, 3 // 2) = 1; epoch 2 is the last


def test_the_baseline_reports_every_epoch_but_is_never_pruned() -> None:
    study = study_with("median", n_anchors=3, epochs=7)
    for curve in ANCHORS:
        train(study, curve)
    assert train(study, flat(0.05), baseline=True) is None
    assert study.trials[-1].intermediate_values == dict(enumerate(flat(0.05)))
    assert train(study, flat(0.05)) == 3  # the same curve in a sampled trial is stopped


def test_the_last_epoch_is_never_pruned() -> None:
    study = study_with("median", n_anchors=3, epochs=7)
    # The anchors jump at their last epoch, so only then is a steady 0.35 below their median.
    for curve in ([0.3] * 6 + [0.3], [0.9] * 6 + [0.99], [0.2] * 6 + [0.98]):
        train(study, curve)
    assert train(study, flat(0.35)) is None
    last = study.trials[-1]
    assert last.state == TrialState.COMPLETE and last.intermediate_values[6] == 0.35
    # The same trial one epoch longer is stopped when it falls below the median at epoch 6.
    study = study_with("median", n_anchors=3, epochs=8)
    for curve in ([0.3] * 6 + [0.3] * 2, [0.9] * 6 + [0.99] * 2, [0.2] * 6 + [0.98] * 2):
        train(study, curve)
    assert train(study, flat(0.35, 8)) == 6


def test_no_pruner_lets_every_trial_finish() -> None:
    study = study_with("none", n_anchors=3, epochs=7)
    for curve in ANCHORS:
        train(study, curve)
    assert train(study, flat(0.0)) is None


def test_a_multi_objective_study_is_neither_reported_to_nor_pruned() -> None:
    study = study_with("median", n_anchors=0, epochs=7, objectives=2)
    for curve in [*ANCHORS, flat(0.0)]:
        assert train(study, curve, objectives=2) is None
    assert all(t.intermediate_values == {} for t in study.trials)


def test_hyperband_rungs_are_epochs() -> None:
    """Hyperband (reduction factor 3) first compares trials after their second epoch (step 1,
    ``min_resource=1``): a trial far behind is stopped there in the brackets that start
    early, and no trial is stopped after its last epoch."""
    study = study_with("hyperband", n_anchors=1, epochs=9)
    stopped = [train(study, flat(0.9 if i % 3 == 0 else 0.1, 9)) for i in range(24)]
    assert 1 in stopped
    assert all(epoch is None or epoch < 8 for epoch in stopped)
    assert all(stopped[i] is None for i in range(0, 24, 3))
