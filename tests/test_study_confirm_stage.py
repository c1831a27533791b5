"""The confirmation stage: its seeds, derived apart and repeatable, and a policy picked once
whatever epochs its search trials ran (a Hyperband trial and its continuation are one
configuration: the confirmation trains its own epochs)."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
from memory_store import MemoryStore

from search.engines.optuna_study import sampler_seed
from search.settings import RACE_MIN_SEEDS, TrainConfig, derive_seed
from search.study.confirm.model import Confirmation
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


def _race(
    monkeypatch: pytest.MonkeyPatch, levels: dict[int, float], repeats: int = 4, race: bool = True
) -> tuple[Confirmation, list[tuple[int, int]], list[str]]:
    """Confirm trials scoring ``levels`` (by trial number; trial 0 is the baseline) with a
    stand-in trainer whose scores wobble by seed; returns the outcome, the (trial, seed)
    pairs trained and the printed lines."""
    import search.study.confirm.stage as stage

    trained: list[tuple[int, int]] = []

    def train(setup: Any, *args: Any, **kwargs: Any) -> TrialRecord:
        trained.append((setup.number, setup.train.seed))
        wobble = (setup.train.seed * (setup.number + 2) % 11) / 1000
        value = levels[setup.number] + wobble
        return setup.record(1, state="complete", val_accuracy=value, test_accuracy=value)

    monkeypatch.setattr(stage, "run_trial", train)
    records = [_record(n, "full" if n == 0 else "object", 1, v, n == 0) for n, v in levels.items()]
    for n, r in enumerate(records):
        records[n] = r.model_copy(update={"policy": {"kind": r.policy["kind"], "context": n / 10}})
    lines: list[str] = []
    plan = stage.ConfirmPlan(top=len(levels) - 1, repeats=repeats, race=race)
    data = SimpleNamespace(has_boxes=False, n_classes=6)
    outcome = stage.confirm(MemoryStore(records), data, None, "p", plan, None, lines.append)  # type: ignore[arg-type]
    return outcome, trained, lines


def test_the_racing_confirmation_drops_a_policy_far_behind_the_leader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcome, trained, lines = _race(monkeypatch, {0: 0.40, 1: 0.95, 2: 0.60, 3: 0.95})
    seeds = outcome.seeds
    per_trial = {n: [s for m, s in trained if m == n] for n in (0, 1, 2, 3)}
    # Trial 2 is 35 points behind the leader: dropped after the minimum of seeds.
    assert per_trial[2] == seeds[:RACE_MIN_SEEDS]
    assert "dropped trial 2 after 2 seeds" in "\n".join(lines)
    # The winner, the baseline and a rival level with it get every seed.
    assert per_trial[1] == per_trial[0] == per_trial[3] == seeds
    summaries = {s.number: s for s in outcome.summaries}
    assert summaries[2].dropped_after == RACE_MIN_SEEDS and summaries[2].val.n == RACE_MIN_SEEDS
    assert summaries[1].dropped_after is None and summaries[1].test_vs_baseline.n == len(seeds)
    assert outcome.winner in (1, 3)
    assert len(trained) == 4 * len(seeds) - (len(seeds) - RACE_MIN_SEEDS)


def test_without_racing_or_when_the_baseline_leads_no_policy_but_the_losers_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, trained, _ = _race(monkeypatch, {0: 0.40, 1: 0.95, 2: 0.60}, race=False)
    assert len(trained) == 3 * 4
    # The baseline leads: a policy far below it is dropped, the baseline never.
    outcome, trained, _ = _race(monkeypatch, {0: 0.90, 1: 0.30, 2: 0.89})
    assert [s for n, s in trained if n == 1] == outcome.seeds[:RACE_MIN_SEEDS]
    assert [s for n, s in trained if n == 0] == outcome.seeds
    assert outcome.winner == 0


def test_a_confirmation_on_another_network_is_kept_apart_resumes_and_is_idempotent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import search.study.confirm.stage as stage

    trained: list[tuple[int, str | None, tuple[int, int]]] = []

    def train(setup: Any, *args: Any, **kwargs: Any) -> TrialRecord:
        trained.append((setup.number, setup.train.model, tuple(setup.policy.size)))
        value = 0.5 + setup.number / 10 + (0.2 if setup.train.model else 0.0)
        return setup.record(1, state="complete", val_accuracy=value, test_accuracy=value)

    monkeypatch.setattr(stage, "run_trial", train)
    records = [_record(0, "full", 1, 0.3, True), _record(1, "center", 1, 0.5)]
    store = MemoryStore(records)
    data = SimpleNamespace(has_boxes=False, n_classes=6)
    own = stage.ConfirmPlan(top=1, repeats=2, race=False)
    other = stage.ConfirmPlan(top=1, repeats=2, race=False, model="m:Net", size=(64, 80))

    def run(plan: Any) -> Confirmation:
        return stage.confirm(store, data, None, "p", plan, None, lambda _: None)  # type: ignore[arg-type]

    mine = run(own)
    assert trained == [(0, None, (48, 48)), (1, None, (48, 48))] * 2
    trained.clear()
    theirs = run(other)
    # Every run again, on the network and at the size asked; the windows stay the policy's.
    assert trained == [(0, "m:Net", (64, 80)), (1, "m:Net", (64, 80))] * 2
    assert theirs.network == "m:Net@64x80" and mine.network == ""
    assert [c.network for c in store.confirmations()] == ["", "m:Net@64x80"]
    assert len(store.runs) == 8 and all(k.endswith(":m:Net@64x80") for k in list(store.runs)[4:])
    assert theirs.summaries[0].val.mean == pytest.approx(0.7)
    trained.clear()
    assert run(other) == theirs and run(own) == mine and trained == []  # idempotent
    del store.runs[list(store.runs)[-1]]  # one run of the other network lost: only it retrains
    run(other)
    assert trained == [(1, "m:Net", (64, 80))]


def test_runs_kept_ahead_are_not_trained_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import search.study.confirm.stage as stage

    trained: list[tuple[int, int]] = []

    def train(setup: Any, *args: Any, **kwargs: Any) -> TrialRecord:
        trained.append((setup.number, setup.train.seed))
        value = {0: 0.3, 1: 0.8, 2: 0.5}[setup.number]
        return setup.record(1, state="complete", val_accuracy=value, test_accuracy=value)

    monkeypatch.setattr(stage, "run_trial", train)
    records = [_record(0, "full", 1, 0.3, True), _record(1, "center", 1, 0.5)]
    store = MemoryStore([*records, _record(2, "random", 1, 0.4)])
    data = SimpleNamespace(has_boxes=False, n_classes=6)
    plan = stage.ConfirmPlan(top=2, repeats=3, epochs=2)
    early = partial(stage.early_setups, store, data, plan, None)
    seeds = confirm_seeds(plan.seed, 3)
    assert [(s.number, s.train.seed, s.train.epochs, s.stage) for s in early()] == [
        (0, seed, 2, "confirm") for seed in seeds
    ]
    ahead = early(leader=True)  # then the leader's (trial 1), not the runner-up's
    assert [(s.number, s.train.seed) for s in ahead] == [(n, s) for n in (0, 1) for s in seeds]
    for setup in ahead[:4]:  # four of six finished while the screening went on
        stage.keep_confirm_run(store, plan, train(setup))
    assert [(s.number, s.train.seed) for s in early(leader=True)] == [(1, s) for s in seeds[1:]]
    trained.clear()
    outcome = stage.confirm(store, data, None, "p", plan, None, lambda _: None)  # type: ignore[arg-type]
    assert sorted(trained) == sorted([(1, s) for s in seeds[1:]] + [(2, s) for s in seeds[:2]])
    assert {s.number: s.val.n for s in outcome.summaries} == {0: 3, 1: 3, 2: 2}  # 2 dropped
    assert early(leader=True) == []


def test_seeds_that_decide_nothing_train_together_unless_a_budget_may_stop_them() -> None:
    from search.study.confirm.stage import _rounds

    seeds = [11, 12, 13, 14]
    assert _rounds(seeds, race=True, budget=False) == [(0, [11, 12]), (2, [13]), (3, [14])]
    assert _rounds(seeds, race=False, budget=False) == [(0, seeds)]
    assert _rounds(seeds, race=True, budget=True) == [(i, [s]) for i, s in enumerate(seeds)]
    assert _rounds([11], race=True, budget=False) == [(0, [11])]
    assert _rounds([], race=True, budget=False) == []
