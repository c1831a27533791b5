"""What both engines share: run options, the screening subset, the time budget, the study's
recorded settings. Engine-agnostic: no Optuna, no keras-tuner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from search.data import Dataset
from search.names import safe_name
from search.ops.uris import redact
from search.safe_yaml import clip
from search.settings import (
    ALGORITHMS,
    BUILT_IN_MODEL,
    DEFAULT_BOXES,
    DEFAULT_EPOCHS,
    DEFAULT_PRUNER,
    DEFAULT_REPEATS,
    DEFAULT_SEED,
    DEFAULT_STORAGE,
    DEFAULT_TOP,
    DEFAULT_TRACKING,
    DEFAULT_TRIALS,
    SCREEN_EPOCH_SHARE,
    SCREEN_SAMPLES,
    Pruner,
    StudyKey,
    derive_seed,
)
from search.space import Space
from search.study.record import OBJECTIVE

#: Share of a ``--timeout`` budget kept for the confirmation stage.
CONFIRM_SHARE = 0.5


class StudyError(ValueError):
    """A study cannot be started or resumed as asked."""


@dataclass(frozen=True)
class SearchOptions:
    """Everything a search run needs besides the data and the space.

    Attributes:
        timeout: wall-clock budget of the whole command in seconds, confirmation included.
        epochs: epochs of a confirmation run (the full budget).
        screen: share of the training split each screening trial trains on; None: automatic
            (all of it up to :data:`SCREEN_SAMPLES` samples).
        screen_epochs: epochs of a screening trial; None: :data:`SCREEN_EPOCH_SHARE` of
            ``epochs`` (see :attr:`trial_epochs`).
    """

    trials: int | None = DEFAULT_TRIALS
    timeout: float | None = None
    epochs: int = DEFAULT_EPOCHS
    seed: int = DEFAULT_SEED
    study: str | None = None
    storage: str = DEFAULT_STORAGE
    tracking_uri: str = DEFAULT_TRACKING
    screen: float | None = None
    confirm: bool = True
    top: int = DEFAULT_TOP
    repeats: int = DEFAULT_REPEATS
    #: The network each trial trains: None for the built-in CNN, else ``module:attr``.
    model: str | None = None
    #: The engine's search algorithm (:data:`ALGORITHMS`); None: the engine's default.
    algorithm: str | None = None
    #: Optuna's pruner: median (default), hyperband (per-epoch val accuracy) or none.
    pruner: Pruner = DEFAULT_PRUNER
    #: The boxes at inference to choose for (a :class:`~search.data.boxes.BoxSource` spec).
    boxes: str = DEFAULT_BOXES
    #: A multi-objective study's box sources (``--boxes`` given more than once; the first is
    #: ``boxes``); empty for one objective.
    objectives: tuple[str, ...] = ()
    #: Processes training a confirmation round side by side (None: one per core, at most 4).
    processes: int | None = None
    screen_epochs: int | None = None

    @property
    def trial_epochs(self) -> int:
        """The epochs a screening trial trains."""
        return self.screen_epochs or screen_epochs(self.epochs)


def screen_epochs(epochs: int) -> int:
    """The default epochs of a screening trial for a full budget of ``epochs``."""
    return max(1, round(epochs * SCREEN_EPOCH_SHARE))


def default_study_name(data: Dataset, space: Space) -> str:
    """A new, readable study name: data format, space and start time."""
    return safe_name(f"{data.spec.split(':')[0]}-{space.name}-{datetime.now():%Y%m%d-%H%M%S}")


def screen_fraction(n_train: int, screen: float | None) -> float:
    """The share of the training split a screening trial uses."""
    if screen is not None:
        return screen
    return min(1.0, SCREEN_SAMPLES / max(n_train, 1))


def screen_index(n_train: int, fraction: float, seed: int) -> np.ndarray | None:
    """The screening subset (the same for every trial, so trials compare fairly), sorted; None
    when it is the whole split."""
    count = max(1, round(n_train * fraction))
    if count >= n_train:
        return None
    order = np.random.default_rng(derive_seed(seed, "screen")).permutation(n_train)
    return np.sort(order[:count])


def study_screen_epochs(options: SearchOptions, recorded: dict[str, Any]) -> SearchOptions:
    """``options`` screening at a resumed study's recorded epochs (a study recorded before
    screening had its own epochs screened at its ``epochs``), so its trials compare fairly;
    a ``--screen-epochs`` that differs is refused."""
    known = recorded.get(StudyKey.SCREEN_EPOCHS) or recorded.get(StudyKey.EPOCHS)
    if known is None:
        return options
    if options.screen_epochs is not None and options.screen_epochs != int(known):
        raise StudyError(
            f"study '{options.study}' screens at {known} epochs; resume it with the same "
            "--screen-epochs (or none) or start a new --study"
        )
    return replace(options, screen_epochs=int(known))


@dataclass(frozen=True)
class Budget:
    """How a ``--timeout`` is spent: screening until ``deadline`` (seconds since the start;
    None: no timeout), then confirmation on ``confirm_fraction`` of the training data, which
    takes about ``confirm_seconds``; ``overrun``: seconds beyond the timeout that the anchors
    and a minimal confirmation need anyway."""

    deadline: float | None
    confirm_fraction: float
    confirm_seconds: float
    overrun: float = 0.0


def plan_budget(
    timeout: float | None,
    elapsed: float,
    per_trial: float,
    anchors_left: int,
    n_confirm: int,
    screen: float,
    epoch_ratio: float = 1.0,
) -> Budget:
    """Split what is left of ``timeout`` between screening and confirmation.

    A confirmation run (``epoch_ratio`` times a trial's epochs) on share ``c`` of the training
    data is taken to cost ``per_trial x epoch_ratio x c / screen`` (an over-estimate for
    ``c > screen``: validation is a fixed cost). The anchor trials (one
    per kind) always run; the confirmation gets :data:`CONFIRM_SHARE` of the rest, at least a
    confirmation at the screening size, and trains on the largest share of the data that fits.
    """
    per_run = per_trial * epoch_ratio
    if timeout is None:
        return Budget(None, 1.0, n_confirm * per_run / screen)
    remaining = max(timeout - elapsed, 0.0)
    confirm_min = n_confirm * per_run
    screening = max(remaining - max(CONFIRM_SHARE * remaining, confirm_min), 0.0)
    screening = max(screening, anchors_left * per_trial)
    confirm_budget = max(remaining - screening, confirm_min)
    fraction = 1.0
    if n_confirm:
        fraction = min(1.0, max(screen, confirm_budget / confirm_min * screen))
    confirm_seconds = n_confirm * per_run * fraction / screen
    overrun = max(screening + confirm_seconds - remaining, 0.0)
    return Budget(elapsed + screening, fraction, confirm_seconds, overrun)


def study_params(
    data: Dataset,
    space: Space,
    options: SearchOptions,
    train_seed: int,
    fraction: float,
    storage: str,
    engine: str,
) -> dict[str, Any]:
    """What every engine records about a study (parent-run params and study attributes)."""
    return {
        StudyKey.DATA: data.spec,
        StudyKey.DATA_FINGERPRINT: data.fingerprint,
        StudyKey.SPACE: space.source,
        # Before the epochs: a process starting on the same new study that reads the epochs
        # (run_search reads them first) then finds the screening epochs too.
        StudyKey.SCREEN_EPOCHS: options.trial_epochs,
        StudyKey.EPOCHS: options.epochs,
        StudyKey.SEED: options.seed,
        StudyKey.TRAIN_SEED: train_seed,
        StudyKey.SCREEN_FRACTION: round(fraction, 6),
        StudyKey.STORAGE: redact(storage),
        StudyKey.OBJECTIVE: OBJECTIVE,
        StudyKey.ENGINE: engine,
        StudyKey.MODEL: options.model or BUILT_IN_MODEL,
        StudyKey.BOXES: options.boxes,
        **({StudyKey.OBJECTIVE_BOXES: list(options.objectives)} if options.objectives else {}),
    }


def check_search_flags(
    engine: str,
    algorithm: str | None,
    pruner: str | None,
    boxes: Sequence[str] | None,
    workers: int,
    timeout: float | None,
) -> None:
    """Refuse ``search`` flags that do not go together, in one line, before anything runs."""
    if algorithm is not None and algorithm not in ALGORITHMS[engine]:
        raise StudyError(
            f"--algorithm {clip(algorithm)} is not one of the {engine} engine's: "
            f"{', '.join(ALGORITHMS[engine])}"
        )
    if pruner is not None and engine != "optuna":
        raise StudyError("--pruner is for the optuna engine (keras-tuner's hyperband stops trials)")
    if pruner not in (None, "none") and boxes and len(boxes) > 1:
        raise StudyError(
            f"--pruner {pruner}: --boxes given {len(boxes)} times makes a multi-objective "
            "study, and Optuna prunes single-objective studies only"
        )
    if workers > 1 and (engine != "optuna" or timeout is not None):
        raise StudyError("--workers runs the optuna engine without --timeout (use --trials)")
