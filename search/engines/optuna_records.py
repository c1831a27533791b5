"""Where an Optuna study keeps cropsearch's records: each trial's :class:`TrialRecord` in its
user attributes, the confirmation runs and outcome in the study's (TF-free, so ``export``
stays quick). It implements ``RecordStore``: leaderboard, confirmation and export read it like
keras-tuner's."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from search.settings import OTHER_NETWORK, StudyKey, TrialKey, confirmation_key, study_settings
from search.study.confirm.model import Confirmation
from search.study.record import TrialRecord


class OptunaRecords:
    """A study's records in its Optuna storage (implements ``RecordStore``)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study

    def search_records(self) -> list[TrialRecord]:
        """Records of every finished trial (a trial killed before it finished has none)."""
        return [
            TrialRecord.from_json(t.user_attrs[TrialKey.RECORD])
            for t in self.study.get_trials(deepcopy=False)
            if TrialKey.RECORD in t.user_attrs and t.state != TrialState.RUNNING
        ]

    def confirm_records(self) -> list[TrialRecord]:
        """Every finished confirmation run."""
        return [
            TrialRecord.from_json(value)
            for key, value in self.study.user_attrs.items()
            if key.startswith(StudyKey.CONFIRM_RUN)
        ]

    def save_confirm(self, key: str, record: TrialRecord) -> None:
        """Keep a confirmation run (resumable: a later ``confirm`` skips it)."""
        self.study.set_user_attr(key, record.to_json())

    def save_confirmation(self, confirmation: Confirmation) -> None:
        """Keep the confirmation outcome with the study (one per network)."""
        self.study.set_user_attr(confirmation_key(confirmation.network), confirmation.to_json())

    def confirmation(self) -> Confirmation | None:
        """The latest confirmation outcome, if any."""
        data = self.study.user_attrs.get(StudyKey.CONFIRMATION)
        return Confirmation.from_json(data) if data else None

    def confirmations(self) -> list[Confirmation]:
        """Every network's confirmation outcome, the study's own network's first."""
        attrs = self.study.user_attrs
        keys = sorted(k for k in attrs if k == StudyKey.CONFIRMATION or k.startswith(OTHER_NETWORK))
        return [Confirmation.from_json(attrs[k]) for k in keys]


def study_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's name and settings, for provenance."""
    return {StudyKey.STUDY: study.study_name, **study_settings(study.user_attrs)}


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's default parameter importances over the sampled trials (for the first
    objective of a multi-objective study); empty when too few."""
    searched = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.params
    ]
    if len(searched) < 4:
        return {}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory"
    try:
        searched_only = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    searched_only.add_trials(searched)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "few trials in some regimes": expected here
            return dict(
                optuna.importance.get_param_importances(
                    searched_only,
                    target=(lambda t: t.values[0]) if len(study.directions) > 1 else None,
                )
            )
    except (RuntimeError, ValueError):
        return {}
