"""Creating or loading a study: Optuna's sampler for the chosen algorithm, its pruner, the
storage it shares with other processes, and the anchors queued once."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from search.engines.optuna_pruning import make_pruner
from search.engines.optuna_storage import open_storage
from search.names import check_study_name
from search.ops.stores import created_once
from search.settings import DEFAULT_PRUNER, Pruner, TrialKey, default_algorithm, derive_seed
from search.space import Space

DEFAULT_ALGORITHM = default_algorithm("optuna")


def make_sampler(
    seed: int, algorithm: str = DEFAULT_ALGORITHM, space: Space | None = None
) -> optuna.samplers.BaseSampler:
    """Optuna's sampler for ``algorithm`` (``tpe``, ``random`` or ``grid`` over ``space``)."""
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if algorithm == "grid":
        if space is None:
            raise ValueError("grid search needs the space")
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=5, multivariate=True, group=True
        )


def open_study(
    name: str,
    storage: str,
    seed: int,
    n_anchors: int,
    epochs: int,
    pruner: Pruner = DEFAULT_PRUNER,
    algorithm: str = DEFAULT_ALGORITHM,
    space: Space | None = None,
    anchors: Sequence[Mapping[str, Any]] = (),
    objectives: int = 1,
) -> optuna.Study:
    """Create the study, or load it (resume by name). The sampler's seed is derived from
    ``seed`` and the number of trials already run, so a resumed study samples new points.
    A new study gets ``anchors`` queued (the first one as the baseline), once: the creation
    lock is held, so processes started together on a fresh store do not queue them twice.
    With several ``objectives`` the study maximizes each; Optuna prunes none of its trials."""
    check_study_name(name)
    # Optuna logs each failed trial with its traceback; the search prints its own line.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with created_once(storage):  # created (and its anchors queued) by one process only
        study = optuna.create_study(
            study_name=name,
            storage=open_storage(storage),
            directions=["maximize"] * objectives,
            sampler=make_sampler(derive_seed(seed, "sampler"), algorithm, space),
            pruner=make_pruner(pruner if objectives == 1 else "none", n_anchors, epochs),
            load_if_exists=True,
        )
        if anchors and not study.get_trials(deepcopy=False):
            study.enqueue_trial({}, user_attrs={TrialKey.BASELINE: True})
            for values in anchors[1:]:
                study.enqueue_trial(dict(values), skip_if_exists=True)
    study.sampler = make_sampler(sampler_seed(seed, len(study.trials)), algorithm, space)
    return study


def sampler_seed(seed: int, n_done: int) -> int:
    """The sampler's seed for a run that starts after ``n_done`` trials."""
    return derive_seed(seed, "sampler", n_done)
