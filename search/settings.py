"""Every default and every study-attribute key, once (TF-free, so spaces and policy files load
instantly): the training settings of a trial (:class:`TrainConfig`), the defaults of a search
and of a confirmation, and the names under which a study records its settings."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from search.strict import Integer, Number

# -- defaults of a search and its confirmation (CLI options, SearchOptions, ConfirmPlan) ----
#: Training epochs of a confirmation run (the full budget).
DEFAULT_EPOCHS: Final = 4
#: A screening trial trains for this share of the epochs (at least 1; ``--screen-epochs``
#: sets them): at 2 of 4 epochs the full budget's winner was in the screening's top 3 on
#: shapes and cluttered MNIST, at half the cost (benchmarks/README.md).
SCREEN_EPOCH_SHARE: Final = 0.5
#: The seed every other seed derives from (:func:`derive_seed`).
DEFAULT_SEED: Final = 0
#: Screening trials of a search, the baseline included.
DEFAULT_TRIALS: Final = 10
#: A screening trial trains on at most this many training samples (``--screen auto``):
#: on cluttered MNIST, ranks at 5,000 samples matched ranks at the full budget (README).
SCREEN_SAMPLES: Final = 5000
#: Policies confirmed besides the baseline.
DEFAULT_TOP: Final = 3
#: Training seeds per confirmed policy.
DEFAULT_REPEATS: Final = 3
#: Seeds each confirmed policy gets before the racing confirmation may drop it (a paired
#: interval needs two).
RACE_MIN_SEEDS: Final = 2

#: The dataset spec without ``--data``: the built-in procedural benchmark.
DEFAULT_DATA: Final = "shapes"
#: The space of a search without ``--space``, and of one on box-free data (``folder:DIR``).
DEFAULT_SPACE: Final = "spaces/default.yaml"
BOX_FREE_SPACE: Final = "spaces/classic.yaml"

#: The boxes a search chooses for without ``--boxes`` (:mod:`search.data.boxes`).
DEFAULT_BOXES: Final = "exact"

#: The file ``cropsearch export`` writes without ``--output``.
DEFAULT_POLICY_FILE: Final = "best_policy.yaml"

Engine = Literal["optuna", "keras-tuner"]
#: The engine of a search without ``--engine``.
DEFAULT_ENGINE: Final[Engine] = "optuna"
#: Search algorithms per engine; the first is the engine's default.
ALGORITHMS: Final[dict[str, tuple[str, ...]]] = {
    "optuna": ("tpe", "random", "grid"),
    "keras-tuner": ("hyperband", "bayesian", "random"),
}
Pruner = Literal["median", "hyperband", "none"]
#: Optuna's pruner without ``--pruner``.
DEFAULT_PRUNER: Final[Pruner] = "median"
#: The ``model`` a study records for the built-in compact CNN.
BUILT_IN_MODEL: Final = "compact_cnn"


def default_algorithm(engine: str) -> str:
    """The search algorithm of ``engine`` when none is asked for."""
    return ALGORITHMS[engine][0]


class TrainConfig(BaseModel):
    """How one trial trains; ``learning_rate``, ``width``, ``depth`` and ``batch_size`` may
    also be searched by a space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: Integer = Field(DEFAULT_EPOCHS, ge=1, le=1000)
    batch_size: Integer = Field(64, ge=1, le=4096)
    learning_rate: Number = Field(3e-3, gt=0.0, le=1.0)
    width: Integer = Field(16, ge=4, le=256)
    depth: Integer = Field(4, ge=1, le=6)
    #: numpy's and Optuna's samplers take seeds in [0, 2**32 - 1].
    seed: Integer = Field(DEFAULT_SEED, ge=0, le=2**32 - 1)
    #: The network: None for the built-in compact CNN, else a user's ``module:attr``
    #: (a keras-tuner HyperModel or ``build(hp)`` callable; ``search.training.model``).
    model: str | None = Field(None, max_length=200)
    #: Values of the network's own hyperparameters (a user model's ``hp.Int("units", ...)``),
    #: as keras-tuner chose them; empty: each takes its default.
    model_hp: dict[str, int | float | str | bool] = Field(default_factory=dict, max_length=100)


#: Training fields a space may search or fix (epochs and seed are run options).
SEARCHABLE_TRAIN_FIELDS = ("learning_rate", "width", "depth", "batch_size")


def derive_seed(seed: int, purpose: str, index: int = 0) -> int:
    """A seed for one ``purpose`` (``"sampler"``, ``"train"``, ``"confirm"``, ``"boxes"``, ...),
    derived from the run's ``--seed``: the streams stay apart, and the same ``--seed`` gives
    the same seeds on every machine."""
    digest = hashlib.sha256(f"{seed}/{purpose}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") >> 1


#: The default local stores (relative to the working directory): see docs/DESIGN.md "Defaults".
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
DEFAULT_TRACKING = "sqlite:///mlruns/mlflow.db"


# -- keys: what a study records (Optuna study user attributes, keras-tuner's study.json) ----
class StudyKey:
    """Keys of a study's recorded settings; the same names are the parent run's params."""

    STUDY: Final = "study"
    DATA: Final = "data"
    DATA_FINGERPRINT: Final = "data_fingerprint"
    SPACE: Final = "space"
    #: The space itself, so a worker on another machine needs no copy of the file.
    SPACE_SPEC: Final = "space_spec"
    EPOCHS: Final = "epochs"
    SEED: Final = "seed"
    TRAIN_SEED: Final = "train_seed"
    SCREEN_FRACTION: Final = "screen_fraction"
    #: Epochs of a screening trial (a study recorded before it screened at ``epochs``).
    SCREEN_EPOCHS: Final = "screen_epochs"
    STORAGE: Final = "storage"
    OBJECTIVE: Final = "objective"
    ENGINE: Final = "engine"
    MODEL: Final = "model"
    ALGORITHM: Final = "algorithm"
    PRUNER: Final = "pruner"
    #: The boxes at inference the study chooses for (``exact``, ``iou:X``, ``none``,
    #: ``detections:FILE``): validation and test are scored with them.
    BOXES: Final = "boxes"
    #: A multi-objective study's box sources, one objective each (the first is ``boxes``);
    #: recorded only when ``--boxes`` is given more than once.
    OBJECTIVE_BOXES: Final = "objective_boxes"
    #: A parent-run param only: each run of a study samples from its own seed.
    SAMPLER_SEED: Final = "sampler_seed"
    #: A parent-run param only: where the process that opened the run trains, ``GPU <name>``
    #: or ``CPU <model>, <n> cores``.
    DEVICE: Final = "device"
    PARENT_RUN: Final = "mlflow_parent_run_id"
    #: The confirmation's outcome (:class:`~search.study.confirm.model.Confirmation` JSON).
    CONFIRMATION: Final = "confirmation"
    #: Prefix of each finished confirmation run's record: ``confirm:<trial>:<seed>:...``
    #: (``...:<network>`` for a confirmation on another network, ``confirm --model``).
    CONFIRM_RUN: Final = "confirm:"
    #: The parent-run params a study does not record as its settings.
    RUN_ONLY: Final = (SAMPLER_SEED, DEVICE)


class TrialKey:
    """Keys of what an Optuna trial notes about itself (trial user attributes)."""

    #: The trial's :class:`~search.study.record.TrialRecord` JSON.
    RECORD: Final = "record"
    #: The MLflow run the trial logs to, noted before it trains.
    RUN_ID: Final = "mlflow_run_id"
    #: The process that runs the trial (``host:pid``).
    OWNER: Final = "owner"
    #: What the trial trains (policy, training settings, seed, share), noted before it trains.
    CONFIGURATION: Final = "configuration"
    #: Set on the queued full-image baseline trial.
    BASELINE: Final = "baseline"


#: Study system attribute of each worker that joined: ``worker:<host>:<pid>``.
WORKER_KEY: Final = "worker:"


#: Prefix of the confirmation outcome on another network: ``confirmation:<network>``.
OTHER_NETWORK: Final = f"{StudyKey.CONFIRMATION}:"


def confirmation_key(network: str) -> str:
    """Where a study keeps the confirmation outcome on ``network`` (empty: its own)."""
    return f"{OTHER_NETWORK}{network}" if network else StudyKey.CONFIRMATION


#: What :attr:`StudyKey.CONFIRMATION` and :attr:`StudyKey.CONFIRM_RUN` start with.
_CONFIRM_KEYS: Final = "confirm"


def study_settings(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A study's recorded settings without its confirmation runs and outcome (provenance)."""
    return {k: v for k, v in attrs.items() if not k.startswith(_CONFIRM_KEYS)}
