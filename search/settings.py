"""Training settings of a trial (TF-free, so spaces and policy files load instantly)."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from search.strict import Integer, Number


class TrainConfig(BaseModel):
    """How one trial trains; ``learning_rate``, ``width``, ``depth`` and ``batch_size`` may
    also be searched by a space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: Integer = Field(4, ge=1, le=1000)
    batch_size: Integer = Field(64, ge=1, le=4096)
    learning_rate: Number = Field(3e-3, gt=0.0, le=1.0)
    width: Integer = Field(16, ge=4, le=256)
    depth: Integer = Field(4, ge=1, le=6)
    #: numpy's and Optuna's samplers take seeds in [0, 2**32 - 1].
    seed: Integer = Field(0, ge=0, le=2**32 - 1)
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


#: The default local stores (relative to the working directory): see DESIGN.md "Defaults".
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
DEFAULT_TRACKING = "sqlite:///mlruns/mlflow.db"
