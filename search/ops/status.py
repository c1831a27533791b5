"""``cropsearch status``: a study's trials by state and engine, and whether Optuna and MLflow
agree about them; ``status --all``: every study in the store with its trial counts.

Agreement means: every finished trial (complete, pruned, failed) has exactly one child run
in MLflow, in the matching state (FINISHED, KILLED, FAILED); and no child run is left RUNNING
without a running trial behind it. A failed trial that never noted a run (its process was killed,
or the tracking store was down, before the run was created) has none: it is listed, not a
disagreement — a process that died is retried once as a new trial.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import optuna
from mlflow.tracking import MlflowClient

from search.engines.common import StudyError
from search.engines.keras_tuner_records import KerasTunerRecords, keras_tuner_root
from search.engines.lookup import all_studies, latest_study, optuna_study
from search.ops.uris import redact, sqlite_path
from search.safe_yaml import clip
from search.settings import DEFAULT_ENGINE, StudyKey, TrialKey

#: Optuna trial state name -> the MLflow status of its run.
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


@dataclass
class Status:
    """Counts by (state, engine) and the disagreements found."""

    study: str
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    without_run: list[int] = field(default_factory=list)  # failed before their run started

    @property
    def agree(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """What the command prints."""
        out = [f"study '{self.study}'"]
        for (state, engine), count in sorted(self.counts.items()):
            out.append(f"  {state.lower():9s} {count:4d}  ({engine})")
        if self.without_run:
            numbers = ", ".join(map(str, self.without_run))
            out.append(f"failed before their MLflow run started (no run): trial(s) {numbers}")
        if self.agree:
            out.append("Optuna and MLflow agree")
        else:
            out.append(f"Optuna and MLflow disagree ({len(self.problems)}):")
            out.extend(f"  {problem}" for problem in self.problems)
        return out


def check_status(name: str | None, storage: str, tracking_uri: str) -> Status:
    """The status of the Optuna study ``name`` (None: the latest study) against its MLflow
    store."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna_study(name, storage, "status (--all counts its trials)")
    tracking_file = sqlite_path(tracking_uri)
    if tracking_file is not None and not tracking_file.exists():
        raise StudyError(f"no MLflow store at {clip(str(tracking_file))} (pass --tracking-uri)")
    return study_status(study, MlflowClient(tracking_uri))


def study_status(study: Any, client: Any) -> Status:
    """Compare ``study`` (an Optuna study) with its MLflow experiment through ``client``."""
    status = Status(study.study_name)
    engine = str(study.user_attrs.get(StudyKey.ENGINE, DEFAULT_ENGINE))
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        status.counts[(trial.state.name, engine)] += 1
    experiment = client.get_experiment_by_name(study.study_name)
    runs: list[Any] = []
    if experiment is not None:
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string="tags.`cropsearch.role` = 'trial' and tags.stage = 'search'",
            max_results=50000,
        )
    by_trial: dict[int, list[Any]] = {}
    for run in runs:
        number = run.data.tags.get("trial", "")
        if number.isdigit():
            by_trial.setdefault(int(number), []).append(run)
    states = {t.number: t.state.name for t in trials}
    for trial in trials:
        expected = RUN_STATUS.get(trial.state.name)
        if expected is None:
            continue
        found = by_trial.get(trial.number, [])
        if not found and trial.state.name == "FAIL" and TrialKey.RUN_ID not in trial.user_attrs:
            status.without_run.append(trial.number)
        elif len(found) != 1:
            status.problems.append(f"trial {trial.number} ({trial.state.name.lower()}) has "
                                   f"{len(found)} MLflow runs, not 1")  # fmt: skip
        elif found[0].info.status != expected:
            status.problems.append(
                f"trial {trial.number} is {trial.state.name.lower()} in Optuna but its run "
                f"{found[0].info.run_id} is {found[0].info.status} in MLflow"
            )
    for number, found in sorted(by_trial.items()):
        for run in found:
            if run.info.status == "RUNNING" and states.get(number) != "RUNNING":
                status.problems.append(
                    f"run {run.info.run_id} (trial {number}) is RUNNING in MLflow, but the trial "
                    f"is {states.get(number, 'unknown').lower()} in Optuna"
                )
    return status


def study_lines(storage: str) -> list[str]:
    """``status --all``: every study beside ``storage`` (either engine, the latest last) with
    its trials counted by state."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    studies = all_studies(storage)
    if not studies:
        latest_study(storage)  # raises the error that names what is missing
    width = max(len(entry.name) for entry in studies)
    out = [f"studies in {redact(storage)} (the latest last):"]
    for entry in studies:
        if entry.engine == "optuna":
            trials = optuna.load_study(study_name=entry.name, storage=storage).get_trials(
                deepcopy=False
            )
            states = Counter(t.state.name.lower() for t in trials)
        else:
            records = KerasTunerRecords(keras_tuner_root(storage), entry.name).search_records()
            states = Counter("fail" if r.state == "failed" else r.state for r in records)
        counts = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        total = sum(states.values())
        out.append(
            f"  {entry.name:{width}s}  {entry.engine:11s}  {total} trial{'' if total == 1 else 's'}"
            + (f": {counts}" if counts else "")
        )
    return out
