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


def candidates(records: Sequence[TrialRecord], top: int) -> list[TrialRecord]:
    """The baseline, then the ``top`` best distinct complete search trials (by the search's
    validation accuracy; a repeat of a configuration counts once, whatever its epochs: the
    confirmation trains its own)."""
    complete = ranked(records)
    chosen: list[TrialRecord] = []
    seen = set()
    baseline = next((r for r in complete if r.baseline), None)
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
