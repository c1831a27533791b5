"""The confirmation stage: re-train the candidates (:func:`~search.study.selection.candidates`)
over fresh seeds through the trial function, keep each run with the study, and summarize."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search.crop.policy import CropPolicy
from search.data.boxes import BoxSource, InferenceBoxes
from search.settings import (
    DEFAULT_BOXES,
    DEFAULT_EPOCHS,
    DEFAULT_REPEATS,
    DEFAULT_SEED,
    DEFAULT_TOP,
    RACE_MIN_SEEDS,
    StudyKey,
    TrainConfig,
    derive_seed,
)
from search.study.confirm.boxes import box_levels
from search.study.confirm.model import Confirmation, network_label, summarize
from search.study.confirm.statistics import race_losers
from search.study.record import TrialRecord
from search.study.selection import candidates, pareto_front
from search.study.store import RecordStore
from search.study.trial import TrialSetup, run_trial

if TYPE_CHECKING:
    import numpy as np

    from search.data import Dataset
    from search.results.tracking import Tracker
    from search.study.pool import TrainingPool

Printer = Callable[[str], None]


def confirm_seeds(seed: int, repeats: int) -> list[int]:
    """Training seeds of the confirmation repeats, apart from the search's."""
    return [derive_seed(seed, "confirm", r) for r in range(repeats)]


@dataclass(frozen=True)
class ConfirmPlan:
    """How to confirm: how many policies, seeds, epochs and what share of the training data."""

    top: int = DEFAULT_TOP
    repeats: int = DEFAULT_REPEATS
    seed: int = DEFAULT_SEED
    epochs: int = DEFAULT_EPOCHS
    train_fraction: float = 1.0
    #: The boxes at inference the study chose for (a box source spec); the data passed to
    #: :func:`confirm` is scored with them.
    boxes: str = DEFAULT_BOXES
    #: The box sources of a multi-objective study (the first is ``boxes``): the Pareto
    #: front is confirmed, and every source is a robustness level. Empty for one objective.
    objectives: tuple[str, ...] = ()
    #: Race: drop a policy whose paired difference from the leader is below 0 after
    #: :data:`RACE_MIN_SEEDS` seeds; the winner and the baseline get every seed.
    race: bool = True
    #: When the confirmation must be over (``time.monotonic()``; None: no budget): a round
    #: after the first that would end later, by the runs timed so far, is not started.
    deadline: float | None = None
    #: Confirm on this network (``--model``; None: each trial's own) and at this output
    #: size (``--size``; None: each policy's): a separate confirmation keyed by both.
    model: str | None = None
    size: tuple[int, int] | None = None

    @property
    def network(self) -> str:
        """The key of this confirmation's network (empty: the study's own)."""
        return network_label(self.model, self.size)


def _confirm_setup(
    source: TrialRecord,
    seed: int,
    plan: ConfirmPlan,
    train_index: np.ndarray | None,
    test_boxes: dict[str, np.ndarray | None] | None,
) -> TrialSetup:
    """The search trial ``source`` re-trained with the training seed ``seed`` (on the plan's
    network and size, when it names them)."""
    policy = source.crop_policy
    if plan.size is not None:  # the same windows, another resize target
        policy = CropPolicy.from_dict({**policy.to_dict(), "size": list(plan.size)})
    train = {**source.train.model_dump(), "seed": seed, "epochs": plan.epochs}
    if plan.model is not None:  # another network: its own hyperparameters keep their defaults
        train.update(model=plan.model, model_hp={})
    return TrialSetup(
        study=source.study,
        number=source.number,
        policy=policy,
        train=TrainConfig.model_validate(train),
        stage="confirm",
        engine=source.engine,
        baseline=source.baseline,
        train_index=train_index,
        test_boxes=test_boxes,
        tags={"network": plan.network} if plan.network else {},
    )


def run_key(record: TrialRecord, plan: ConfirmPlan, seed: int) -> str:
    """Storage key of one confirmation run: the trial, the seed, the fidelity and (another
    network or size) the network."""
    key = f"{StudyKey.CONFIRM_RUN}{record.number}:{seed}:{plan.epochs}:{plan.train_fraction:.4f}"
    return f"{key}:{plan.network}" if plan.network else key


def _same_network(run: TrialRecord, source: TrialRecord, plan: ConfirmPlan) -> bool:
    """Whether the confirmation run ``run`` of ``source`` trained on the plan's network."""
    model = source.train.model if plan.model is None else plan.model
    size = tuple(source.crop_policy.size if plan.size is None else plan.size)
    return run.train.model == model and tuple(run.crop_policy.size) == size


def _test_boxes(
    data: Dataset, plan: ConfirmPlan, others: Sequence[InferenceBoxes]
) -> tuple[dict[str, np.ndarray | None] | None, dict[str, dict[str, float | None]]]:
    """The test boxes of each robustness level, and how each level was made."""
    if data.has_boxes:
        return box_levels(data, plan.seed, plan.boxes, others)
    # no boxes to disturb: every policy is box-free, its test score is the only one
    return None, {"exact": {"target_iou": 1.0, "noise": 0.0, "mean_iou": 1.0}}


def _done_runs(
    store: RecordStore, chosen: Sequence[TrialRecord], plan: ConfirmPlan
) -> dict[tuple[int, int], TrialRecord]:
    """The finished confirmation runs of ``chosen`` at the plan's fidelity and network, by
    (trial, seed)."""
    by_number = {c.number: c for c in chosen}
    return {
        (r.number, r.train.seed): r
        for r in store.confirm_records()
        if r.state == "complete"
        and r.train.epochs == plan.epochs
        and abs(r.train_fraction - plan.train_fraction) < 1e-4
        and r.number in by_number
        and _same_network(r, by_number[r.number], plan)
    }


def early_setups(
    store: RecordStore,
    data: Dataset,
    plan: ConfirmPlan,
    train_index: np.ndarray | None,
    others: Sequence[InferenceBoxes] = (),
    leader: bool = False,
) -> list[TrialSetup]:
    """The confirmation runs not yet done that can train while the screening goes on: the
    baseline's, confirmed whatever the screening finds, then with ``leader`` the best
    trial's so far, confirmed unless ``plan.top`` later trials all beat it. A run's numbers
    depend only on its setup, so one trained early is the one :func:`confirm` would train
    (:func:`keep_confirm_run` keeps it; :func:`confirm` then finds it done)."""
    chosen = candidates(store.search_records(), 1 if leader and plan.top else 0)
    done = _done_runs(store, chosen, plan)
    test_boxes, _ = _test_boxes(data, plan, others)
    return [
        _confirm_setup(record, seed, plan, train_index, test_boxes)
        for record in chosen
        for seed in confirm_seeds(plan.seed, plan.repeats)
        if (record.number, seed) not in done
    ]


def keep_confirm_run(store: RecordStore, plan: ConfirmPlan, record: TrialRecord) -> None:
    """Keep a finished confirmation run with the study, as :func:`confirm` does."""
    store.save_confirm(run_key(record, plan, record.train.seed), record)


def _rounds(seeds: list[int], race: bool, budget: bool) -> list[tuple[int, list[int]]]:
    """The confirmation's rounds, each ``(seeds before it, its seeds)``: one seed per round
    under a time budget (the budget may end the confirmation between any two); otherwise the
    seeds before the first possible drop train together (all of them without racing), so
    training processes are never idle between rounds that decide nothing."""
    together = 1 if budget else (RACE_MIN_SEEDS if race else len(seeds))
    rounds = [(0, seeds[:together])] if seeds else []
    return rounds + [(i, [seed]) for i, seed in enumerate(seeds) if i >= together]


def confirm(
    store: RecordStore,
    data: Dataset,
    tracker: Tracker,
    parent_id: str,
    plan: ConfirmPlan,
    train_index: np.ndarray | None,
    echo: Printer = print,
    others: Sequence[InferenceBoxes] = (),
    pool: TrainingPool | None = None,
) -> Confirmation:
    """Re-train the baseline and the top policies (a multi-objective study: the Pareto front)
    over fresh seeds (reusing finished repeats), then summarize. Every run is a child run
    tagged ``stage=confirm``. ``others``: the boxes of a multi-objective study's other
    sources, scored as robustness levels. ``pool``: train each round's runs in parallel."""
    records = store.search_records()
    names = [BoxSource.parse(spec).name for spec in plan.objectives]
    chosen = candidates(records, plan.top, names)
    if not chosen:
        raise ValueError("the study has no completed trial to confirm")
    seeds = confirm_seeds(plan.seed, plan.repeats)
    test_boxes, described = _test_boxes(data, plan, others)
    done = _done_runs(store, chosen, plan)
    front = [r.number for r in pareto_front(records, names)] if names else []
    if names:
        listed = ", ".join(map(str, front))
        echo(f"the Pareto front over {', '.join(plan.objectives)}: trial(s) {listed}")
    missing = sum((c.number, s) not in done for c in chosen for s in seeds)
    race = plan.race and not names  # every member of a Pareto front gets every seed
    on = f" on {plan.network}" if plan.network else ""
    echo(
        f"confirming {len(chosen)} policies x {plan.repeats} seeds{on} ({plan.epochs} epochs, "
        f"{plan.train_fraction:.0%} of the training data): up to {missing} runs to train, "
        f"{len(chosen) * len(seeds) - missing} already done"
        + (
            f"; a policy below the leader after {RACE_MIN_SEEDS} or more seeds (one-sided "
            "95% bound of the paired difference below 0) is dropped"
            if race and plan.repeats > RACE_MIN_SEEDS
            else ""
        )
    )
    racing = [c for c in chosen if not c.baseline]
    dropped: dict[int, int] = {}
    trained = 0
    timed: list[float] = []
    for start, batch in _rounds(seeds, race, plan.deadline is not None):
        setups = [
            _confirm_setup(c, seed, plan, train_index, test_boxes)
            for seed in batch
            for c in chosen
            if (c.baseline or c in racing) and (c.number, seed) not in done
        ]
        if plan.deadline is not None and setups and timed:
            per_run = max(timed)
            processes = pool.processes if pool is not None else 1
            needs = per_run * -(-len(setups) // processes)
            left = plan.deadline - time.monotonic()
            if needs > left:
                echo(f"the time budget ends the confirmation before seed {start + 1}: "
                     f"its round needs ~{needs:.0f}s, {max(left, 0):.0f}s are left")  # fmt: skip
                seeds = seeds[:start]
                break
        finished = (
            pool.train(setups)
            if pool is not None and len(setups) > 1
            else ((i, run_trial(s, data, tracker, parent_id, crop_samples=False))
                  for i, s in enumerate(setups))
        )  # fmt: skip
        for index, record in finished:
            trained += 1
            timed.append(record.seconds)
            if record.state == "complete":
                keep_confirm_run(store, plan, record)
                done[(record.number, record.train.seed)] = record
                outcome = f"val {record.val_accuracy:.4f}, test {record.test_accuracy:.4f}"
            else:
                outcome = f"FAILED: {record.error}"
            echo(f"[confirm {trained}/{missing}] {setups[index].run_name()}: {outcome} "
                 f"({record.seconds:.0f}s)")  # fmt: skip
        end = start + len(batch)
        if not race or end >= len(seeds):
            continue
        so_far = seeds[:end]
        scores = {
            c.number: {s: done[(c.number, s)].val_accuracy or 0.0 for s in so_far
                       if (c.number, s) in done}
            for c in chosen
        }  # fmt: skip
        base = [c.number for c in chosen if c.baseline]
        active = base + [c.number for c in racing]
        for number in race_losers(scores, active, RACE_MIN_SEEDS, keep=base):
            dropped[number] = end
            racing = [c for c in racing if c.number != number]
            echo(
                f"dropped trial {number} after {end} seeds: its validation accuracy "
                "is below the leader's (one-sided 95% bound of the paired difference < 0)"
            )
    runs = [r for (number, seed), r in done.items() if seed in seeds]
    confirmation = summarize(
        chosen, runs, seeds, plan.epochs, plan.train_fraction, described, plan.boxes,
        list(plan.objectives), front, dropped,
    )  # fmt: skip
    confirmation = dataclasses.replace(confirmation, network=plan.network, classes=data.n_classes)
    store.save_confirmation(confirmation)
    return confirmation
