"""Continuing a checkpointed training (keras-tuner's Hyperband: ``tuner/initial_epoch``).

A trial that Hyperband promotes trains on from the epoch where its earlier round stopped. The
learning rate follows one cosine decay over ``schedule_epochs`` (the search's full epoch
budget), indexed by the optimizer's step count; the checkpoint keeps the weights, the
optimizer's state (its step count included) and the history, so a continued training is the
uninterrupted one cut in two: its rate and metrics continue, they do not restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np


@dataclass(frozen=True)
class Continuation:
    """Where a training starts and what it keeps.

    Attributes:
        schedule_epochs: epochs the cosine decay spans (at least the trial's epochs).
        initial_epoch: the first epoch to train (epochs before it come from ``load_from``).
        load_from: checkpoint folder to continue (None: a fresh model).
        save_to: checkpoint folder written after the last epoch (None: none).
        history: metrics of the epochs before ``initial_epoch`` (filled from ``load_from``).
    """

    schedule_epochs: int
    initial_epoch: int = 0
    load_from: Path | None = None
    save_to: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)


WEIGHTS, OPTIMIZER, HISTORY = "weights.npz", "optimizer.npz", "history.json"


def save_state(model: keras.Model, history: list[dict[str, float]], folder: Path) -> None:
    """Write the model's weights, its optimizer's variables and the history to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / WEIGHTS, *model.get_weights())
    np.savez(folder / OPTIMIZER, *[v.numpy() for v in model.optimizer.variables])
    (folder / HISTORY).write_text(json.dumps(history))


def load_history(folder: Path) -> list[dict[str, float]]:
    """The per-epoch metrics a checkpoint was trained through."""
    return list(json.loads((folder / HISTORY).read_text()))


def load_state(model: keras.Model, folder: Path) -> None:
    """Restore weights and optimizer state (its step count, hence the learning rate) from
    ``folder`` into a compiled ``model`` of the same architecture."""
    with np.load(folder / WEIGHTS) as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    with np.load(folder / OPTIMIZER) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError(f"checkpoint {folder} has another optimizer ({len(values)} variables)")
    for variable, value in zip(optimizer.variables, values, strict=True):
        variable.assign(value)
