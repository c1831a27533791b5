"""Training settings of a trial (TF-free, so spaces and policy files load instantly)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    """How one trial trains; ``learning_rate``, ``width``, ``depth`` and ``batch_size`` may
    also be searched by a space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(4, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=4096)
    learning_rate: float = Field(3e-3, gt=0.0, le=1.0)
    width: int = Field(16, ge=4, le=256)
    depth: int = Field(4, ge=1, le=6)
    seed: int = 0


#: Training fields a space may search or fix (epochs and seed are run options).
SEARCHABLE_TRAIN_FIELDS = ("learning_rate", "width", "depth", "batch_size")
