"""The confirmation stage: its seeds, derived apart and repeatable, and a policy picked once
whatever epochs its search trials ran (a Hyperband trial and its continuation are one
configuration: the confirmation trains its own epochs)."""

from __future__ import annotations

from search.engines.optuna import sampler_seed
from search.settings import TrainConfig, derive_seed
from search.study.confirm.stage import confirm_seeds
from search.study.record import TrialRecord
from search.study.selection import candidates


def _record(
    number: int, kind: str, epochs: int, value: float, baseline: bool = False
) -> TrialRecord:
    return TrialRecord(
        study="s",
        number=number,
        state="complete",
        baseline=baseline,
        policy={"kind": kind},
        train=TrainConfig(epochs=epochs),
        val_accuracy=value,
        engine="keras-tuner",
    )


def test_a_continued_trial_is_confirmed_once() -> None:
    records = [
        _record(0, "full", 1, 0.3, baseline=True),
        _record(1, "center", 1, 0.5),
        _record(2, "object", 1, 0.6),
        _record(3, "object", 3, 0.8),  # trial 2 continued to 3 epochs
    ]
    chosen = candidates(records, top=2)
    assert [r.number for r in chosen] == [0, 3, 1]


def test_seeds_are_derived_apart_and_repeatable() -> None:
    confirm = confirm_seeds(0, 3)
    assert confirm == confirm_seeds(0, 3)
    assert confirm[:2] == confirm_seeds(0, 2)
    others = {derive_seed(0, "train"), sampler_seed(0, 0), sampler_seed(0, 10)}
    assert len(set(confirm) | others) == len(confirm) + len(others)
    assert confirm_seeds(1, 3) != confirm
