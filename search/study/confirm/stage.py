"""The confirmation stage: re-train the candidates (:func:`~search.study.selection.candidates`)
over fresh seeds through the trial function, keep each run with the study, and summarize."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search.data.boxes import BoxSource, InferenceBoxes
from search.settings import (
    DEFAULT_BOXES,
    DEFAULT_EPOCHS,
    DEFAULT_REPEATS,
    DEFAULT_SEED,
    DEFAULT_TOP,
    StudyKey,
    TrainConfig,
    derive_seed,
)
from search.study.confirm.boxes import box_levels
from search.study.confirm.model import Confirmation, summarize
from search.study.record import TrialRecord
from search.study.selection import candidates, pareto_front
from search.study.store import RecordStore
from search.study.trial import TrialSetup, run_trial

if TYPE_CHECKING:
    import numpy as np

    from search.data import Dataset
    from search.results.tracking import Tracker

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


def run_key(record: TrialRecord, plan: ConfirmPlan, seed: int) -> str:
    """Storage key of one confirmation run: the trial, the seed and the fidelity."""
    return f"{StudyKey.CONFIRM_RUN}{record.number}:{seed}:{plan.epochs}:{plan.train_fraction:.4f}"


def confirm(
    store: RecordStore,
    data: Dataset,
    tracker: Tracker,
    parent_id: str,
    plan: ConfirmPlan,
    train_index: np.ndarray | None,
    echo: Printer = print,
    others: Sequence[InferenceBoxes] = (),
) -> Confirmation:
    """Re-train the baseline and the top policies (a multi-objective study: the Pareto front)
    over fresh seeds (reusing finished repeats), then summarize. Every run is a child run
    tagged ``stage=confirm``. ``others``: the boxes of a multi-objective study's other
    sources, scored as robustness levels."""
    records = store.search_records()
    names = [BoxSource.parse(spec).name for spec in plan.objectives]
    chosen = candidates(records, plan.top, names)
    if not chosen:
        raise ValueError("the study has no completed trial to confirm")
    seeds = confirm_seeds(plan.seed, plan.repeats)
    if data.has_boxes:
        test_boxes, described = box_levels(data, plan.seed, plan.boxes, others)
    else:  # no boxes to disturb: every policy is box-free, its test score is the only one
        test_boxes, described = None, {"exact": {"target_iou": 1.0, "noise": 0.0, "mean_iou": 1.0}}
    done = {
        (r.number, r.train.seed): r
        for r in store.confirm_records()
        if r.state == "complete"
        and r.train.epochs == plan.epochs
        and abs(r.train_fraction - plan.train_fraction) < 1e-4
    }
    todo = [(c, s) for c in chosen for s in seeds if (c.number, s) not in done]
    front = [r.number for r in pareto_front(records, names)] if names else []
    if names:
        listed = ", ".join(map(str, front))
        echo(f"the Pareto front over {', '.join(plan.objectives)}: trial(s) {listed}")
    echo(
        f"confirming {len(chosen)} policies x {plan.repeats} seeds ({plan.epochs} epochs, "
        f"{plan.train_fraction:.0%} of the training data): {len(todo)} runs to train, "
        f"{len(chosen) * len(seeds) - len(todo)} already done"
    )
    for i, (source, seed) in enumerate(todo, start=1):
        setup = TrialSetup(
            study=source.study,
            number=source.number,
            policy=source.crop_policy,
            train=TrainConfig.model_validate(
                {**source.train.model_dump(), "seed": seed, "epochs": plan.epochs}
            ),
            stage="confirm",
            engine=source.engine,
            baseline=source.baseline,
            train_index=train_index,
            test_boxes=test_boxes,
        )
        record = run_trial(setup, data, tracker, parent_id, crop_samples=False)
        if record.state == "complete":
            store.save_confirm(run_key(record, plan, seed), record)
            done[(record.number, seed)] = record
            outcome = f"val {record.val_accuracy:.4f}, test {record.test_accuracy:.4f}"
        else:
            outcome = f"FAILED: {record.error}"
        echo(f"[confirm {i}/{len(todo)}] {setup.run_name()}: {outcome} ({record.seconds:.0f}s)")
    runs = [r for (number, seed), r in done.items() if seed in seeds]
    confirmation = summarize(
        chosen, runs, seeds, plan.epochs, plan.train_fraction, described, plan.boxes,
        list(plan.objectives), front,
    )  # fmt: skip
    store.save_confirmation(confirmation)
    return confirmation
