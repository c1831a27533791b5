"""Compiled models kept across trials of the same shape, reset to what a fresh one would be.

Building, compiling and tracing a new Keras model costs ~2-3 s per trial here, as much as a
third of a default trial (``benchmarks/trial_overhead.py``). Trials of one search mostly share
a model shape, so :func:`compiled_model` keeps one compiled model per shape key
``(input shape, n_classes, width, depth)`` and, for each trial, gives it:

- the initial weights a model built now would have: a new model is *built* (cheap, ~0.1 s; no
  compile, no trace) from the same random state, and its weights copied over;
- a zeroed optimizer (moments and iteration count);
- the trial's learning-rate schedule, held in variables so a new rate or step count does not
  retrace the train function (:class:`CosineSchedule`, the same arithmetic as Keras'
  ``CosineDecay``, so results are bit-identical to a fresh model's).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import keras

from search.model import build_model

#: Shapes kept at once (a search over width/depth has a handful; each model is small).
CACHE_SIZE = 4

ShapeKey = tuple[tuple[int, int, int], int, int, int]


class CosineSchedule(keras.optimizers.schedules.CosineDecay):
    """Keras' ``CosineDecay`` (to zero) whose start rate and length are variables: assigning
    them does not retrace a traced train step."""

    def __init__(self, learning_rate: float, decay_steps: int) -> None:
        super().__init__(learning_rate, decay_steps)
        self.rate = keras.Variable(learning_rate, dtype="float32", trainable=False, name="lr0")
        self.steps = keras.Variable(float(decay_steps), dtype="float32", trainable=False)
        # CosineDecay.__call__ reads these two attributes; the variables stand in for them.
        self.initial_learning_rate = self.rate
        self.decay_steps = self.steps

    def assign(self, learning_rate: float, decay_steps: int) -> None:
        """Start a new run of ``decay_steps`` steps from ``learning_rate``."""
        self.rate.assign(learning_rate)
        self.steps.assign(float(decay_steps))

    def get_config(self) -> dict[str, object]:
        """Plain numbers, like ``CosineDecay``'s."""
        return {
            **super().get_config(),
            "initial_learning_rate": float(self.rate.numpy()),
            "decay_steps": int(self.steps.numpy()),
        }


@dataclass
class _Entry:
    model: keras.Model
    schedule: CosineSchedule


_CACHE: OrderedDict[ShapeKey, _Entry] = OrderedDict()


def clear() -> None:
    """Forget every kept model (the next trial builds and compiles afresh)."""
    _CACHE.clear()


def compiled_model(
    input_shape: tuple[int, int, int],
    n_classes: int,
    width: int,
    depth: int,
    learning_rate: float,
    decay_steps: int,
    reuse: bool = True,
) -> keras.Model:
    """A compiled model (Adam, cosine decay to zero over ``decay_steps``) with the weights a
    model built at this point would have. Call it where a fresh model would be built (after
    ``keras.utils.set_random_seed``): it consumes the same random state.

    With ``reuse`` a model of the same shape compiled earlier is reset and returned, with its
    traced train and eval functions; without, a new one is compiled (and not kept).
    """
    model = build_model(input_shape, n_classes, width, depth)  # the fresh initial weights
    key: ShapeKey = (tuple(input_shape), n_classes, width, depth)  # type: ignore[assignment]
    entry = _CACHE.get(key) if reuse else None
    if entry is None:
        schedule = CosineSchedule(learning_rate, decay_steps)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        if reuse:
            _CACHE[key] = _Entry(model, schedule)
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        return model
    _CACHE.move_to_end(key)
    entry.model.set_weights(model.get_weights())
    for variable in entry.model.optimizer.variables:  # iterations, moments: as new
        variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
    entry.schedule.assign(learning_rate, decay_steps)
    return entry.model
