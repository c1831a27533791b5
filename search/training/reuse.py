"""Compiled models kept across trials of the same shape, reset to what a fresh one would be.

Building, compiling and tracing a new Keras model costs ~2-3 s per trial here, as much as a
third of a default trial (``benchmarks/trial_overhead.py``). Trials of one search mostly share
a model shape, so :func:`compiled_model` keeps one compiled model per shape key
``(input shape, n_classes, width, depth)`` and, for each trial, gives it:

- the initial weights a model built now would have. Keras draws each initializer's seed from
  Python's ``random`` when a layer is made, so those weights are a function of the shape and
  of Python's random state: they are kept by (shape, state) with the state the build leaves
  behind (trials of one search share a seed: one build per shape). On a miss a new model is
  *built* (0.1-0.6 s; no compile, no trace) and its weights copied over;
- a zeroed optimizer (moments and iteration count);
- the trial's learning-rate schedule, held in variables so a new rate or step count does not
  retrace the train function (:class:`CosineSchedule`, the same arithmetic as Keras'
  ``CosineDecay``, so results are bit-identical to a fresh model's).
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import keras

from search.training.model import build_model, compile_for_training

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

    def _decay_function(self, step: Any, decay_steps: Any, decay_from_lr: Any, dtype: Any) -> Any:
        """``CosineDecay``'s arithmetic as TensorFlow's graph optimizer leaves it: with a
        constant ``decay_steps`` it rewrites ``step / decay_steps`` to ``step * (1 /
        decay_steps)``, which differs in the last bit at ~1 step in 10; the variable form
        must do the same to train bit-identically (measured: 0 differing steps of 1,600)."""
        fraction = keras.ops.multiply(
            step, keras.ops.divide(keras.ops.cast(1.0, dtype), decay_steps)
        )
        pi = keras.ops.array(math.pi, dtype=dtype)
        cosine_decayed = 0.5 * (1.0 + keras.ops.cos(keras.ops.multiply(pi, fraction)))
        decayed = (1 - self.alpha) * cosine_decayed + self.alpha
        return keras.ops.multiply(decay_from_lr, decayed)

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
#: (shape, hash of Python's random state before a build) -> (initial weights, that state,
#: the state after the build).
_INITIAL: OrderedDict[tuple[ShapeKey, int], tuple[list[Any], Any, Any]] = OrderedDict()


def clear() -> None:
    """Forget every kept model and initial weights (the next trial builds afresh)."""
    _CACHE.clear()
    _INITIAL.clear()


def _built(key: ShapeKey) -> keras.Model:
    """A new model of ``key``'s shape; its initial weights are noted for :func:`_initial`."""
    before = random.getstate()
    model = build_model(*key)
    _INITIAL[(key, hash(before))] = (model.get_weights(), before, random.getstate())
    while len(_INITIAL) > CACHE_SIZE * 4:
        _INITIAL.popitem(last=False)
    return model


def _initial(key: ShapeKey) -> list[Any]:
    """The weights a model of ``key``'s shape built now would start with; Python's random
    state moves on exactly as that build would move it."""
    before = random.getstate()
    found = _INITIAL.get((key, hash(before)))
    if found is None or found[1] != before:
        return _built(key).get_weights()
    random.setstate(found[2])
    return found[0]


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
    traced train and eval functions; without, a new one is built and compiled (and not kept).
    """
    key: ShapeKey = (tuple(input_shape), n_classes, width, depth)  # type: ignore[assignment]
    entry = _CACHE.get(key) if reuse else None
    if entry is None:
        model = _built(key) if reuse else build_model(*key)
        schedule = CosineSchedule(learning_rate, decay_steps)
        compile_for_training(model, schedule, input_shape, n_classes)
        if reuse:
            _CACHE[key] = _Entry(model, schedule)
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        return model
    _CACHE.move_to_end(key)
    entry.model.set_weights(_initial(key))
    for variable in entry.model.optimizer.variables:  # iterations, moments: as new
        variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
    entry.schedule.assign(learning_rate, decay_steps)
    return entry.model
