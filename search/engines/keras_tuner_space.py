"""A search space as keras-tuner hyperparameters (the keras-tuner engine's half of
:mod:`search.space`, apart so that loading a space never imports TensorFlow)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras_tuner
from keras_tuner.src.engine.conditions import Parent

from search.space import FloatParam, IntParam, Space, choice_values, scalar


def hyperparameters(
    space: Space, hp: keras_tuner.HyperParameters | None = None
) -> keras_tuner.HyperParameters:
    """``space`` as keras-tuner hyperparameters: ``fixed:`` values as ``hp.Fixed``, each
    parameter as ``hp.Float``/``hp.Int``/``hp.Choice`` inside one ``conditional_scope``
    per ``when:`` entry (nested when it names several). List values (a ``size``) travel
    as JSON strings, as for Optuna."""
    hp = hp if hp is not None else keras_tuner.HyperParameters()
    for name, value in space.spec.fixed.items():
        hp.Fixed(name, scalar(value))
    for name, param in space.spec.params.items():
        with contextlib.ExitStack() as scopes:
            for other, allowed in (param.when or {}).items():
                scopes.enter_context(_when(hp, other, [scalar(v) for v in allowed]))
            if isinstance(param, FloatParam):
                hp.Float(
                    name,
                    param.low,
                    param.high,
                    step=param.step,
                    sampling="log" if param.log else "linear",
                )
            elif isinstance(param, IntParam):
                # keras-tuner reads a log-sampled step as a factor: no step there.
                step = None if param.log else param.step
                hp.Int(
                    name,
                    param.low,
                    param.high,
                    step=step,
                    sampling="log" if param.log else "linear",
                )
            else:
                hp.Choice(name, choice_values(param.choices))
    return hp


@contextlib.contextmanager
def _when(hp: keras_tuner.HyperParameters, name: str, values: list[Any]) -> Iterator[None]:
    """``hp.conditional_scope(name, values)``. keras-tuner looks for the parent only among
    parameters declared under the enclosing scopes, so a nested ``when:`` on a top-level
    parameter adds keras-tuner's own ``Parent`` condition to the scope directly."""
    if not hp._conditions:
        with hp.conditional_scope(name, values):
            yield
        return
    hp._conditions.append(Parent(name, values))
    try:
        yield
    finally:
        hp._conditions.pop()
