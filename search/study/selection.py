"""Which trials a study picks: the ranking of complete search trials and the rules built on it
(best, baseline, the study's answer, the candidates to confirm). Confirmation, export, the
views and the report all choose here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from search.study.record import TrialRecord

if TYPE_CHECKING:
    from search.study.confirm.model import Confirmation


def ranked(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The complete trials with a score, best first (the earliest on a tie)."""
    complete = [r for r in records if r.state == "complete" and r.val_accuracy is not None]
    return sorted(complete, key=lambda r: (-(r.val_accuracy or 0.0), r.number))


def best_record(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The complete search trial with the highest objective (the earliest on a tie)."""
    order = ranked(records)
    return order[0] if order else None


def baseline_record(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The completed full-image baseline, if any."""
    return next((r for r in records if r.baseline and r.state == "complete"), None)


def chosen_record(
    records: Sequence[TrialRecord], confirmation: Confirmation | None
) -> TrialRecord | None:
    """The study's answer: the confirmed winner when there is a confirmation, else the best
    single screening run."""
    if confirmation is not None:
        return next((r for r in records if r.number == confirmation.winner), None)
    return best_record(records)


def pareto_front(records: Sequence[TrialRecord], objectives: Sequence[str]) -> list[TrialRecord]:
    """The complete search trials no other trial beats on every objective (validation accuracy
    with each box source, by name: :attr:`TrialRecord.val_by_boxes`) and loses to on none,
    best by the first objective first; of several with the same scores, the earliest."""
    scored = [r for r in ranked(records) if all(name in r.val_by_boxes for name in objectives)]
    values = {r.number: tuple(r.val_by_boxes[name] for name in objectives) for r in scored}
    front: list[TrialRecord] = []
    for record in scored:
        mine = values[record.number]
        beaten = any(
            all(a >= b for a, b in zip(values[o.number], mine, strict=True))
            and values[o.number] != mine
            for o in scored
        )
        if not beaten and all(values[f.number] != mine for f in front):
            front.append(record)
    return sorted(front, key=lambda r: (-values[r.number][0], r.number))


def candidates(
    records: Sequence[TrialRecord], top: int, objectives: Sequence[str] = ()
) -> list[TrialRecord]:
    """The baseline, then the ``top`` best distinct complete search trials (by the search's
    validation accuracy; a repeat of a configuration counts once, whatever its epochs: the
    confirmation trains its own). With several ``objectives`` (a multi-objective study), the
    Pareto front's members instead of the top ones, however many."""
    complete = pareto_front(records, objectives) if objectives else ranked(records)
    if objectives:
        top = len(complete)
    chosen: list[TrialRecord] = []
    seen = set()
    baseline = baseline_record(records)
    if baseline is not None:
        chosen.append(baseline)
        seen.add(baseline.configuration(epochs=False))
    for record in complete:
        if len(chosen) - (baseline is not None) >= top:
            break
        if record.configuration(epochs=False) not in seen:
            seen.add(record.configuration(epochs=False))
            chosen.append(record)
    return chosen
