"""A trial's validation and test scores: what ``predict`` gives, without its per-call set-up."""

from __future__ import annotations

import gc
import weakref

import keras
import numpy as np
import pytest

from search.settings import TrainConfig
from search.training import fit, reuse
from search.training.model import compiled_network

SIZES = [1, 255, 256, 300, 513]


def _crops(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 24, 24, 3), dtype=np.uint8)


@pytest.mark.parametrize("network", [None, "user_models:any_size"])
def test_scores_are_predict_s_bit_for_bit_and_follow_a_reset_model(network: str | None) -> None:
    config = TrainConfig(epochs=1, batch_size=16, width=4, depth=2, model=network)
    reuse.clear()
    if network is None:
        model = reuse.compiled_model((24, 24, 3), 6, 4, 2, 3e-3, 4)
    else:
        model = compiled_network(config, (24, 24, 3), 6, 4)
    for count in SIZES:
        crops = _crops(count, seed=count)
        expected = model.predict(crops, batch_size=256, verbose=0)
        scores = fit.class_scores(model, crops)
        assert scores.dtype == expected.dtype and scores.shape == (count, 6)
        assert np.array_equal(scores, expected)
    model.fit(_crops(32), np.arange(32) % 6, batch_size=16, epochs=1, verbose=0)
    trained = model.predict(_crops(300), batch_size=256, verbose=0)
    assert np.array_equal(fit.class_scores(model, _crops(300)), trained)  # new weights seen
    if network is not None:  # a network that takes any size: crops of another size too
        larger = np.random.default_rng(1).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
        expected = model.predict(larger, batch_size=256, verbose=0)
        assert np.array_equal(fit.class_scores(model, larger), expected)
    if network is None:
        again = reuse.compiled_model((24, 24, 3), 6, 4, 2, 3e-3, 4)  # the next trial's reset
        assert again is model
        assert not np.array_equal(fit.class_scores(model, _crops(300)), trained)
    reuse.clear()


def _traces(model: keras.Model) -> list[object]:
    """Filled with an entry each time ``model``'s forward pass runs in Python (a trace)."""
    traces: list[object] = []
    call = model.call
    model.call = lambda *a, **k: traces.append(a) or call(*a, **k)  # type: ignore[method-assign]
    return traces


def test_one_trace_per_model_serves_every_batch_size_and_lets_the_model_go() -> None:
    model = reuse.compiled_model((24, 24, 3), 6, 4, 2, 3e-3, 4, reuse=False)
    traces = _traces(model)
    for count in SIZES:
        fit.class_scores(model, _crops(count))
    assert len(traces) == 1
    assert fit.class_scores(model, _crops(0)).shape == (0, 6)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None
    assert len(fit._INFERENCE) == 0
