"""Where an engine keeps a study's records, as everything downstream reads them: the
:class:`RecordStore` protocol, and :class:`FoundStudy`, a study found by name in a store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from search.settings import StudyKey, study_settings
from search.study.confirm.model import Confirmation
from search.study.record import TrialRecord


class RecordStore(Protocol):
    """A study's records: search trials, confirmation runs and the confirmation outcome."""

    def search_records(self) -> list[TrialRecord]:
        """Every search trial's record."""
        ...

    def confirm_records(self) -> list[TrialRecord]:
        """Every finished confirmation run's record."""
        ...

    def save_confirm(self, key: str, record: TrialRecord) -> None:
        """Keep one confirmation run's record under ``key``."""
        ...

    def save_confirmation(self, confirmation: Confirmation) -> None:
        """Keep the confirmation's outcome (read by export)."""
        ...

    def confirmation(self) -> Confirmation | None:
        """The latest confirmation outcome on the study's own network, if any."""
        ...

    def confirmations(self) -> list[Confirmation]:
        """Every network's latest confirmation outcome, the study's own network's first."""
        ...


def _no_importances() -> dict[str, float]:
    return {}


@dataclass(frozen=True)
class FoundStudy:
    """An existing study of either engine: its name, records and recorded settings."""

    name: str
    engine: str
    records: RecordStore
    #: Everything the study recorded (settings, confirmation runs and outcome).
    attrs: dict[str, Any]
    #: The engine's parameter importances (computed on demand: Optuna's take a while).
    importances: Callable[[], dict[str, float]] = field(default=_no_importances)

    def provenance(self) -> dict[str, Any]:
        """The study's name and settings, for the exported policy file and the views."""
        return {StudyKey.STUDY: self.name, **study_settings(self.attrs)}
