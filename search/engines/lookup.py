"""Find an existing study by name, whichever engine ran it: keras-tuner studies live beside
the Optuna storage (``<mlruns>/keras-tuner/<study>``), Optuna's in the storage. One function
for every command that reads a study (confirm, export, status, a resumed search), and one rule
for the study a command takes without ``--study`` (export, status, ui, dashboard)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from search.engines.common import StudyError
from search.engines.keras_tuner_records import (
    KerasTunerRecords,
    keras_tuner_root,
    keras_tuner_studies,
)
from search.engines.optuna_records import OptunaRecords, param_importances
from search.ops.stores import created_once
from search.ops.uris import check_storage_uri, check_tracking_uri, redact, sqlite_path
from search.safe_yaml import clip
from search.settings import StudyKey
from search.study.store import FoundStudy


def find_study(name: str | None, storage: str) -> FoundStudy:
    """The study ``name`` (None: the latest, :func:`latest_study`) of either engine beside
    ``storage``."""
    name = latest_study(storage) if name is None else name
    tuned = keras_tuner_study(name, storage)
    if tuned is not None:
        return FoundStudy(tuned.study, "keras-tuner", tuned, tuned.attrs())
    loaded = load_optuna_study(name, storage)
    return FoundStudy(
        loaded.study_name,
        "optuna",
        OptunaRecords(loaded),
        dict(loaded.user_attrs),
        importances=lambda: param_importances(loaded),
    )


@dataclass(frozen=True)
class StudyEntry:
    """A study's name and the engine that ran it."""

    name: str
    engine: str


def all_studies(storage: str) -> list[StudyEntry]:
    """Every study of either engine beside ``storage``, the latest last: Optuna's in the order
    they were created, keras-tuner's by their last write; keras-tuner's come last when one of
    them was written after the sqlite storage (or the storage is a server)."""
    records = keras_tuner_studies(storage)
    tuned = [StudyEntry(r.study, "keras-tuner") for r in records]
    path = sqlite_path(storage)
    if path is not None and not path.exists():
        return tuned
    check_storage_uri(storage)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    ran = [StudyEntry(s.study_name, "optuna") for s in summaries]
    if path is not None and records and path.stat().st_mtime > records[-1].changed():
        return tuned + ran
    return ran + tuned


def latest_study(storage: str) -> str:
    """The name of the study a command takes when given no ``--study``: the last of
    :func:`all_studies`."""
    studies = all_studies(storage)
    if studies:
        return studies[-1].name
    path = sqlite_path(storage)
    if path is not None and not path.exists():
        raise StudyError(
            f"no study storage at {clip(str(path))} (run 'cropsearch search' first or pass "
            "--storage)"
        )
    raise StudyError(f"no studies in {redact(storage)}")


def keras_tuner_study(name: str, storage: str) -> KerasTunerRecords | None:
    """The keras-tuner study ``name`` beside ``storage``, None when there is none."""
    found = KerasTunerRecords(keras_tuner_root(storage), name)
    return found if found.exists() else None


def latest_study_if_any(storage: str) -> str | None:
    """The latest study in ``storage``; None when there is no storage or no study (the MLflow
    UI still serves runs without a study storage beside them)."""
    try:
        return latest_study(storage)
    except StudyError:
        return None


def recorded_setting(name: str, storage: str, key: str) -> Any:
    """What an existing study ``name`` recorded under ``key``; None for a new study."""
    tuned = keras_tuner_study(name, storage)
    if tuned is not None:
        return tuned.attrs().get(key)
    path = sqlite_path(storage)
    if path is not None and not path.exists():
        return None
    with created_once(storage):  # opening a fresh database creates its tables: once
        if name not in optuna.get_all_study_names(storage):
            return None
    return optuna.load_study(study_name=name, storage=storage).user_attrs.get(key)


def recorded_boxes(attrs: Mapping[str, Any]) -> list[str] | None:
    """The box sources a study's settings record (:data:`StudyKey.OBJECTIVE_BOXES` for a
    multi-objective study, else :data:`StudyKey.BOXES`); None when they record none."""
    several = attrs.get(StudyKey.OBJECTIVE_BOXES)
    if several:
        return [str(s) for s in several]
    one = attrs.get(StudyKey.BOXES)
    return None if one is None else [str(one)]


def optuna_study(name: str | None, storage: str, needs: str) -> optuna.Study:
    """The Optuna study ``name`` (None: the latest study) in ``storage``; a keras-tuner study
    is refused, naming the command that ``needs`` an Optuna study."""
    name = latest_study(storage) if name is None else name
    if keras_tuner_study(name, storage) is not None:
        raise StudyError(f"study '{clip(name)}' ran with keras-tuner; {needs} reads Optuna studies")
    return load_optuna_study(name, storage)


def load_optuna_study(name: str, storage: str) -> optuna.Study:
    """The Optuna study ``name`` in ``storage``."""
    path = sqlite_path(storage)
    if path is not None and not path.exists():
        raise StudyError(
            f"no study storage at {clip(str(path))} (run 'cropsearch search' first or pass "
            "--storage)"
        )
    check_storage_uri(storage)
    names = [
        s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
    ]
    if name not in names:
        known = f" (known: {', '.join(names[-5:])})" if names else ""
        raise StudyError(f"no study '{clip(name)}' in {redact(storage)}{known}")
    return optuna.load_study(study_name=name, storage=storage)


def check_engine(study: str, storage: str, engine: str) -> None:
    """Refuse to resume a study with the other engine (they would share one MLflow
    experiment)."""
    tuned = keras_tuner_study(study, storage) is not None
    path = sqlite_path(storage)
    in_optuna = False
    if path is None or path.exists():
        with created_once(storage):  # opening a fresh database creates its tables: once
            in_optuna = study in optuna.get_all_study_names(storage)
    other = "keras-tuner" if tuned and engine == "optuna" else None
    other = other or ("optuna" if in_optuna and engine == "keras-tuner" else None)
    if other is not None:
        raise StudyError(
            f"study '{study}' was run with --engine {other}; resume it with that engine or "
            "start a new --study"
        )


def study_of_run(run_id: str, tracking_uri: str, study: str | None) -> str:
    """The study an MLflow run of cropsearch belongs to (its ``study`` tag)."""
    from mlflow.exceptions import MlflowException  # MLflow (~2 s) only for --run-id
    from mlflow.tracking import MlflowClient

    check_tracking_uri(tracking_uri)
    try:
        tags = MlflowClient(tracking_uri).get_run(run_id).data.tags
    except MlflowException:
        raise StudyError(f"no run '{clip(run_id)}' in {redact(tracking_uri)}") from None
    found = tags.get("study")
    if found is None:
        raise StudyError(f"run '{clip(run_id)}' is not a cropsearch trial run (no study tag)")
    if study is not None and study != found:
        raise StudyError(f"run '{clip(run_id)}' belongs to study '{found}', not '{clip(study)}'")
    return found
