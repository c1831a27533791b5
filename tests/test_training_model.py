"""The compact CNN as a keras-tuner HyperModel, user models by ``--model``, and the
learning-rate schedule of a continued training."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
from conftest import TINY_DATA, search_args

from search.cli import main
from search.settings import TrainConfig
from search.training.model import (
    CompactCNN,
    ModelError,
    build_network,
    hyperparameters,
)


def _filters(model: object) -> list[int]:
    """The filters of each convolution, in order."""
    return [
        layer.get_config()["filters"]
        for layer in model.layers  # type: ignore[attr-defined]
        if type(layer).__name__ == "Conv2D"
    ]


def _expected_params(filters: list[int], channels: int, classes: int) -> int:
    """3x3 convolutions without bias, batch norm (4 numbers per filter: scale, offset and the
    two moving statistics), then a dense softmax layer with bias."""
    total, previous = 0, channels
    for width in filters:
        total += 9 * previous * width + 4 * width
        previous = width
    return total + previous * classes + classes


def test_the_default_network_is_the_documented_one() -> None:
    """16/32/64/96 filters and about 80k parameters, as the README says."""
    hp = keras_tuner.HyperParameters()
    model = CompactCNN((48, 48, 3), 6).build(hp)
    defaults = TrainConfig()
    assert hp.values == {
        "width": defaults.width,
        "depth": defaults.depth,
        "learning_rate": defaults.learning_rate,
    }
    assert _filters(model) == [16, 32, 64, 96]
    assert model.count_params() == _expected_params([16, 32, 64, 96], 3, 6) == 80_182
    assert model.output_shape == (None, 6)


def test_a_trial_s_settings_reach_build() -> None:
    config = TrainConfig(width=8, depth=3)
    model = build_network(None, (32, 32, 3), 6, hyperparameters(config))
    assert _filters(model) == [8, 16, 32]
    assert model.count_params() == _expected_params([8, 16, 32], 3, 6)
    wide = build_network(None, (32, 32, 3), 4, hyperparameters(TrainConfig(width=8, depth=5)))
    assert _filters(wide) == [8, 16, 32, 48, 48], "widths double up to 6x, then stay"


@pytest.mark.parametrize(
    ("spec", "input_shape"),
    [
        ("user_models:Tiny", (None, 40, 24, 3)),  # a subclass with no constructor of its own
        ("user_models:tiny", (None, 40, 24, 3)),  # an instance of it
        ("user_models:any_size", (None, None, None, 3)),  # a build(hp) function
        ("user_models:TinyNet", (None, 40, 24, 3)),  # input_shape and classes
        ("user_models:NumClassesNet", (None, 40, 24, 3)),  # input_shape and num_classes
        ("user_models:ClassesOnly", (None, None, None, 3)),  # classes alone
    ],
)
def test_user_models_in_every_form(spec: str, input_shape: tuple[int | None, ...]) -> None:
    """Each form keras-tuner users write builds a network for the policy's size (40x24) and the
    data's 6 classes; a constructor gets only the arguments it names."""
    network = build_network(spec, (40, 24, 3), 6, keras_tuner.HyperParameters())
    assert network.input_shape == input_shape
    assert network.output_shape == (None, 6)


def test_a_user_class_is_given_what_its_constructor_names() -> None:
    from user_models import ClassesOnly, NumClassesNet, Tiny, TinyNet

    from search.training.model import constructor_arguments

    shape = (40, 24, 3)
    assert constructor_arguments("m", Tiny, shape, 6) == {}
    assert constructor_arguments("m", TinyNet, shape, 6) == {"input_shape": shape, "classes": 6}
    assert constructor_arguments("m", NumClassesNet, shape, 6) == {
        "input_shape": shape,
        "num_classes": 6,
    }
    assert constructor_arguments("m", ClassesOnly, shape, 6) == {"classes": 6}


def test_a_user_s_hyperparameters_take_their_defaults() -> None:
    hp = keras_tuner.HyperParameters()
    build_network("user_models:Tiny", (32, 32, 3), 6, hp)
    assert hp.values == {"filters": 4}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("user_models:fixed_32", r"takes input \(32, 32, 3\), but the crop policy gives \(48, 48"),
        ("user_models", "expected module:attr"),
        ("no_such_module_xyz:Net", "cannot import no_such_module_xyz"),
        ("user_models:Missing", "has no attribute 'Missing'"),
        ("user_models:NeedsWidth", r"NeedsWidth\(\) requires width; cropsearch passes only"),
        ("user_models:tiny", "outputs 6 scores; the data has 4"),
    ],
)  # fmt: skip
def test_a_model_that_does_not_fit_or_exist_is_named(spec: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        build_network(spec, (48, 48, 3), 4 if spec.endswith("tiny") else 6,
                      keras_tuner.HyperParameters())  # fmt: skip


def test_cli_refuses_a_model_that_does_not_fit_in_one_line(tmp_path: Path) -> None:
    err, out = io.StringIO(), io.StringIO()
    args = [*search_args(tmp_path, "m", trials=1), "--model", "user_models:fixed_32"]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(args)
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert lines[-1].startswith("error: --model 'user_models:fixed_32' takes input (32, 32, 3)")
    assert "Traceback" not in err.getvalue()
    assert not (tmp_path / "mlflow.db").exists()  # refused before any store was written


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--algorithm", "hyperband"], "--algorithm hyperband is not one of the optuna engine's"),
        (["--engine", "keras-tuner", "--pruner", "median"], "--pruner is for the optuna engine"),
        (["--algorithm", "grid"], "grid search needs a step"),
    ],
)
def test_engine_flags_that_do_not_go_together(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([*search_args(tmp_path, "e", trials=1), *extra])
    assert code == 2 and message in err.getvalue()


@pytest.mark.slow
def test_a_continued_training_continues_its_schedule(tmp_path: Path) -> None:
    """1 epoch saved, then continued to 3: the step count (so the learning rate) and the
    history carry on; a fresh 3-epoch run's first epoch is not what the continuation starts
    from."""
    from search.crop.policy import CropPolicy
    from search.data import load_dataset
    from search.training.continuation import Continuation, load_history
    from search.training.fit import train_policy

    data = load_dataset(TINY_DATA)
    policy = CropPolicy(size=(32, 32))
    first = train_policy(
        policy,
        data,
        TrainConfig(epochs=1),
        resume=Continuation(schedule_epochs=3, save_to=tmp_path / "a"),
    )
    assert load_history(tmp_path / "a") == first.history
    steps = int(np.ceil(len(data.train) / 64))
    with np.load(tmp_path / "a" / "optimizer.npz") as saved:
        assert int(saved["arr_0"]) == steps  # the optimizer's step count
    continued = train_policy(
        policy,
        data,
        TrainConfig(epochs=3),
        resume=Continuation(
            schedule_epochs=3,
            initial_epoch=1,
            load_from=tmp_path / "a",
            save_to=tmp_path / "b",
            history=first.history,
        ),
    )
    assert len(continued.history) == 3 and continued.history[0] == first.history[0]
    with np.load(tmp_path / "b" / "optimizer.npz") as saved:
        assert int(saved["arr_0"]) == 3 * steps
    # the weights went on from the checkpoint: the first continued epoch starts from a lower
    # loss than a fresh model's first epoch
    assert continued.history[1]["loss"] < first.history[0]["loss"]


def test_a_study_resumes_only_on_its_own_engine(tmp_path: Path) -> None:
    import optuna

    from search.engines.keras_tuner_records import KerasTunerRecords

    optuna.create_study(study_name="o", storage=f"sqlite:///{tmp_path}/optuna.db")
    KerasTunerRecords(tmp_path / "keras-tuner", "k").set_attrs({"engine": "keras-tuner"})
    for study, engine, other in (("o", "keras-tuner", "optuna"), ("k", "optuna", "keras-tuner")):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([*search_args(tmp_path, study, trials=1), "--engine", engine])
        assert code == 2
        assert f"study '{study}' was run with --engine {other}" in err.getvalue()


def test_a_keras_application_is_built_from_scratch_for_the_policy_and_the_classes() -> None:
    from search.training.model import ModelError, build_network, hyperparameters

    hp = hyperparameters(TrainConfig())
    network = build_network("keras:MobileNetV3Small", (48, 48, 3), 6, hp)
    compact = build_network(None, (48, 48, 3), 6, hp)
    assert network.output_shape == (None, 6) and network.input_shape == (None, 48, 48, 3)
    assert network.count_params() > 10 * compact.count_params()
    inner = network.layers[-1]  # the application behind the input scaling
    norms = [layer for layer in inner.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)  # settles in a short run
    with pytest.raises(ModelError, match=r"keras\.applications has no network 'mobilenet'"):
        build_network("keras:mobilenet", (48, 48, 3), 6, hp)
