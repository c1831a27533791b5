"""The typed trial record: what one training of one configuration produced (TF-free).

Engines write records; the leaderboard, confirmation, export and status read them. Nothing
reads an engine's private attributes (Optuna ``user_attrs``, keras-tuner trial files) directly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from search.crop.policy import CropPolicy
from search.settings import TrainConfig

State = Literal["running", "complete", "pruned", "failed"]
Stage = Literal["search", "confirm"]

#: The metric every study maximises: validation accuracy of the last epoch, eval-mode crops.
OBJECTIVE = "val_accuracy"


class TrialRecord(BaseModel):
    """One training of one configuration, in the search or in the confirmation stage.

    Attributes:
        number: the engine's trial number; a confirmation run carries the number of the search
            trial it re-trains (the baseline's is its own).
        policy: the crop policy's fields (:meth:`CropPolicy.to_dict`).
        train: training settings, including the training seed.
        train_fraction: share of the training split used (below 1 when screening).
        history: per-epoch metrics (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
        robustness: test accuracy under other test-time boxes, by level name.
        val_by_boxes: validation accuracy with each box source of a multi-objective study, by
            source name (its objectives; empty for a single objective).
        duplicate_of: the trial whose result this one reuses (same policy and training).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    study: str
    number: int
    stage: Stage = "search"
    engine: str = "optuna"
    state: State = "running"
    baseline: bool = False
    policy: dict[str, Any]
    train: TrainConfig
    train_fraction: float = Field(1.0, gt=0.0, le=1.0)
    history: list[dict[str, float]] = Field(default_factory=list)
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    robustness: dict[str, float] = Field(default_factory=dict)
    val_by_boxes: dict[str, float] = Field(default_factory=dict)
    seconds: float = 0.0
    run_id: str | None = None
    duplicate_of: int | None = None
    error: str | None = None

    @property
    def crop_policy(self) -> CropPolicy:
        """The policy as a validated value."""
        return CropPolicy.from_dict(self.policy)

    @property
    def label(self) -> str:
        """The policy's short human form."""
        return self.crop_policy.label()

    def configuration(self, epochs: bool = True) -> tuple[str, str]:
        """What makes two trainings the same, seed excluded: (policy, training settings);
        without ``epochs``, a trial and its Hyperband continuation are the same too."""
        train = self.train.model_dump(exclude={"seed"} if epochs else {"seed", "epochs"})
        return repr(sorted(self.policy.items())), repr(sorted(train.items()))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able data, as engines store it."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialRecord:
        """Inverse of :meth:`to_json`."""
        return cls.model_validate(data)
