"""One search run, whichever engine decides what to try next: the study's name, the
screening subset, the tracker and parent run, the study's recorded settings, the resume check,
progress lines and the study views. :class:`OptunaSearch` and :class:`KerasTunerSearch` add
only how they open their study and choose trials."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from search.data import Dataset
from search.data.report import format_report
from search.engines.common import (
    SearchOptions,
    StudyError,
    default_study_name,
    screen_fraction,
    screen_index,
    study_params,
)
from search.names import check_study_name
from search.ops.devices import describe_device
from search.ops.uris import redact
from search.results.report import progress_line
from search.results.tracking import Tracker
from search.results.views import Printer, ViewRefresh, log_study_views
from search.settings import StudyKey, default_algorithm, derive_seed
from search.space import Space
from search.study.confirm.model import Confirmation
from search.study.pool import TrainingPool, open_pool
from search.study.record import TrialRecord
from search.study.store import RecordStore


def data_report(data: Dataset) -> str:
    """The data report logged with every study (``data_report.txt``): ``cropsearch data``'s."""
    return format_report(data)


class SearchRun(ABC):
    """One search run: screening trials over ``space`` on ``data``, then confirmation."""

    #: The engine's name, as the study records it.
    engine: ClassVar[str]
    records: RecordStore

    def __init__(
        self, data: Dataset, space: Space, options: SearchOptions, echo: Printer = print
    ) -> None:
        self.data, self.space, self.options, self.echo = data, space, options, echo
        self.algorithm = options.algorithm or default_algorithm(self.engine)
        self.name = check_study_name(options.study or default_study_name(data, space))
        self.anchors = self.anchor_values()
        attrs = self.open_study()
        self.check_resume(attrs)
        self.fraction = screen_fraction(len(data.train), options.screen)
        self.train_index = screen_index(len(data.train), self.fraction, options.seed)
        self.train_seed = derive_seed(options.seed, "train")
        self.tracker = Tracker(options.tracking_uri, self.name)
        params = {
            **study_params(
                data, space, options, self.train_seed, self.fraction, self.location, self.engine
            ),
            StudyKey.ALGORITHM: self.algorithm,
            StudyKey.DEVICE: describe_device(),
            **self.engine_params(),
        }
        self.parent_id = self.tracker.start_parent(
            self.name, params, attrs.get(StudyKey.PARENT_RUN)
        )
        self.prepare(params)
        self._started = time.monotonic()
        self._finished = 0
        self.refresh = ViewRefresh()

    # -- what each engine provides ---------------------------------------------------------
    @property
    @abstractmethod
    def location(self) -> str:
        """Where the engine keeps the study (recorded as the study's ``storage``)."""

    def anchor_values(self) -> list[dict[str, Any]]:
        """The configurations tried first: the full-image baseline."""
        return [self.space.baseline()]

    @abstractmethod
    def open_study(self) -> dict[str, Any]:
        """Create or load the study and its records; the settings it recorded (empty: new)."""

    def engine_params(self) -> dict[str, Any]:
        """The engine's own parent-run params, beside :func:`study_params` and the algorithm."""
        return {}

    @abstractmethod
    def prepare(self, params: dict[str, Any]) -> None:
        """Record ``params`` with the study and set up the engine (the parent run exists)."""

    @abstractmethod
    def run(self) -> Confirmation | None:
        """Screen, then confirm the top policies; the study views are written whatever
        happens."""

    def importances(self) -> dict[str, float]:
        """Parameter importances for the final views (none by default)."""
        return {}

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """The study's name and settings, for the exported policy file."""

    def trial_count(self) -> int:
        """The trials the study holds, for the parent run's ``n_trials`` tag."""
        return len(self.records.search_records())

    # -- shared ----------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """Where the study is kept, printable (secrets redacted)."""
        return redact(self.location)

    def check_resume(self, attrs: dict[str, Any]) -> None:
        """Refuse to resume a study that ran on other data."""
        known = attrs.get(StudyKey.DATA_FINGERPRINT)
        if known is not None and known != self.data.fingerprint:
            raise StudyError(
                f"study '{self.name}' was run on other data ({attrs.get(StudyKey.DATA)}, "
                f"fingerprint {known}); resume it with the same --data or start a new --study"
            )

    def elapsed(self) -> float:
        """Seconds since the run was set up."""
        return time.monotonic() - self._started

    def log_data_report(self) -> None:
        """The data report, logged with every study (``data_report.txt``)."""
        self.tracker.log_text(self.parent_id, data_report(self.data), "data_report.txt")

    def report_progress(self, record: TrialRecord, deadline: float | None = None) -> float:
        """One line per finished trial (outcome, best so far, time, the estimate of the time
        left, which ``deadline`` may shorten); refreshes the views now and then. Returns the
        seconds elapsed."""
        self._finished += 1
        done = self._finished
        elapsed = self.elapsed()
        total = self.options.trials
        estimates = []
        if total and done:
            estimates.append(elapsed / done * (total - done))
        if deadline is not None:
            estimates.append(max(deadline - elapsed, 0.0))
        left = min(estimates) if estimates else None
        records = self.records.search_records()
        self.echo(progress_line(record, records, done, total, elapsed, left))
        self.refresh.maybe(lambda: self.views(None, live=True))
        return elapsed

    def views(
        self, confirmation: Confirmation | None, close: bool = False, live: bool = False
    ) -> None:
        """Write the study-level views to the parent run (and mark it finished); ``live``:
        a refresh during the search (:class:`~search.results.views.ViewRefresh`)."""
        if close:
            self.refresh.join()
        records = self.records.search_records()
        log_study_views(
            self.tracker,
            self.parent_id,
            records,
            self.data,
            {} if live else self.importances(),
            confirmation,
            self.provenance(),
            final=self.records.confirm_records() if close else None,
            gallery=not live or self.refresh.new_best(records),
        )
        if close:
            self.tracker.end_run(self.parent_id, "complete", {"n_trials": str(self.trial_count())})

    @contextmanager
    def training_pool(self) -> Iterator[TrainingPool | None]:
        """Processes for the confirmation's rounds (:func:`~search.study.pool.core_split`;
        None when one process trains): stopped on an error or interrupt, closed after."""
        with open_pool(self.options.processes, self.data, self.options.tracking_uri,
                       self.name, self.parent_id, self.echo) as pool:  # fmt: skip
            yield pool

    def winner_model(self) -> str | None:
        """The URI of the winner's trained model, once the study's views logged it."""
        return self.tracker.run_tags(self.parent_id).get("winner_model")
