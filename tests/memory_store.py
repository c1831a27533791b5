"""A study's records kept in memory: the record store the confirmation and export read."""

from __future__ import annotations

from search.study.confirm.model import Confirmation
from search.study.record import TrialRecord


class MemoryStore:
    """An in-memory record store."""

    def __init__(self, records: list[TrialRecord]) -> None:
        self.records, self.runs = records, {}
        self.outcomes: dict[str, Confirmation] = {}

    def search_records(self) -> list[TrialRecord]:
        return self.records

    def confirm_records(self) -> list[TrialRecord]:
        return list(self.runs.values())

    def save_confirm(self, key: str, record: TrialRecord) -> None:
        self.runs[key] = record

    def save_confirmation(self, confirmation: Confirmation) -> None:
        self.outcomes[confirmation.network] = confirmation

    def confirmation(self) -> Confirmation | None:
        return self.outcomes.get("")

    def confirmations(self) -> list[Confirmation]:
        return [self.outcomes[k] for k in sorted(self.outcomes)]
