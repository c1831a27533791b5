"""A compiled model reused across trials trains exactly like a newly built one."""

from __future__ import annotations

import keras
import pytest

from search.crop.policy import CropPolicy
from search.data import load_dataset
from search.settings import TrainConfig
from search.training import reuse
from search.training.fit import TrainResult, train_policy
from search.training.model import build_model

DATA = "shapes:train=96,val=48,test=48"
POLICY = CropPolicy(kind="random_resized", fraction=0.4, size=(24, 24))
OTHER = CropPolicy(kind="object", context=0.3, jitter=0.1, size=(24, 24))


def _before_reuse(
    input_shape: tuple[int, int, int],
    n_classes: int,
    width: int,
    depth: int,
    learning_rate: float,
    decay_steps: int,
    reuse: bool = True,
) -> keras.Model:
    """The model every trial built before reuse: new, compiled with Keras' CosineDecay."""
    model = build_model(input_shape, n_classes, width, depth)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _same(a: TrainResult, b: TrainResult) -> None:
    assert a.history == b.history
    assert (a.val_accuracy, a.test_accuracy, a.n_params) == (
        b.val_accuracy,
        b.test_accuracy,
        b.n_params,
    )


@pytest.mark.parametrize("seed", [3, 11])
def test_reused_model_trains_like_a_new_one(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_dataset(DATA)
    config = TrainConfig(epochs=2, batch_size=32, width=8, depth=3, seed=seed)
    reuse.clear()
    with monkeypatch.context() as patch:
        patch.setattr("search.training.fit.compiled_model", _before_reuse)
        before = train_policy(POLICY, data, config)
    fresh = train_policy(POLICY, data, config, reuse_model=False)
    # A trial of the same shape with other settings first: weights, optimizer moments, step
    # count and learning-rate schedule all move; the reset must undo every one of them.
    other = config.model_copy(update={"seed": seed + 1, "learning_rate": 0.01, "epochs": 1})
    train_policy(OTHER, data, other)
    traced = reuse._CACHE[((24, 24, 3), data.n_classes, 8, 3)].model.train_function
    reused = train_policy(POLICY, data, config)
    assert reuse._CACHE[((24, 24, 3), data.n_classes, 8, 3)].model.train_function is traced
    builds: list[object] = []  # the same seed again: initial weights kept, nothing built
    monkeypatch.setattr(reuse, "build_model", lambda *a: builds.append(a))
    again = train_policy(POLICY, data, config)
    assert builds == []
    assert len(before.history) == 2 and before.history[0] != before.history[1]
    _same(before, fresh)
    _same(before, reused)
    _same(before, again)
    reuse.clear()


def test_shapes_are_kept_apart() -> None:
    data = load_dataset(DATA)
    reuse.clear()
    config = TrainConfig(epochs=1, batch_size=32, width=8, depth=2, seed=0)
    train_policy(POLICY, data, config)
    train_policy(POLICY, data, config.model_copy(update={"width": 4}))
    train_policy(POLICY.model_copy(update={"size": (16, 16)}), data, config)
    assert sorted(reuse._CACHE) == [
        ((16, 16, 3), data.n_classes, 8, 2),
        ((24, 24, 3), data.n_classes, 4, 2),
        ((24, 24, 3), data.n_classes, 8, 2),
    ]
    reuse.clear()


@pytest.mark.parametrize(
    ("learning_rate", "steps"), [(3e-3, 96), (1e-2, 24), (3e-3, 376), (1e-3, 1000), (4.2e-3, 94)]
)
def test_the_variable_schedule_matches_cosine_decay_bit_for_bit_in_a_graph(
    learning_rate: float, steps: int
) -> None:
    import numpy as np
    import tensorflow as tf

    fixed = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    variable = reuse.CosineSchedule(1.0, 7)  # assigned afterwards, as a reused model's is
    variable.assign(learning_rate, steps)
    both = tf.function(lambda step: (fixed(step), variable(step)))
    values = np.array(
        [[v.numpy() for v in both(tf.constant(s, tf.int64))] for s in range(steps + 2)]
    )
    assert np.array_equal(values[:, 0], values[:, 1])


@pytest.mark.parametrize("network", [None, "user_models:any_size"])
def test_a_new_model_s_first_fit_traces_its_train_step_once(network: str | None) -> None:
    """Its optimizer and metric variables exist before ``fit``: created inside the first
    trace, they made TensorFlow trace the train step a second time."""
    import numpy as np

    from search.training.model import compiled_network

    config = TrainConfig(epochs=1, batch_size=16, width=4, depth=2, model=network)
    if network is None:
        model = reuse.compiled_model((24, 24, 3), 6, 4, 2, 3e-3, 4, reuse=False)
    else:
        model = compiled_network(config, (24, 24, 3), 6, 4)  # shapes' 6 classes
    traces: list[object] = []
    step = model.train_step
    model.train_step = lambda data: traces.append(data) or step(data)  # type: ignore[method-assign]
    images = np.random.default_rng(0).integers(0, 255, (40, 24, 24, 3)).astype("float32")
    model.fit(images, np.arange(40) % 6, batch_size=16, epochs=1, verbose=0)
    assert len(traces) == 1
