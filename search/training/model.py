"""The compact CNN family every trial trains, as a keras-tuner ``HyperModel``; a user's
network plugs in by ``--model module:attr``: a ``HyperModel`` subclass (its constructor gets
``input_shape`` and ``classes``/``num_classes`` when it names them, nothing otherwise), a
``HyperModel`` instance, a ``build(hp)`` function, or ``keras:NAME``: a ``keras.applications``
constructor built from scratch (``weights=None``, never a download)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

import keras
import keras_tuner
from keras import layers

from search.settings import BUILT_IN_MODEL, TrainConfig


def build_model(
    input_shape: tuple[int, int, int], n_classes: int, width: int = 16, depth: int = 4
) -> keras.Model:
    """Conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool) doubling in width up to 6x
    ``width``, then global average pooling and a softmax layer.

    With the defaults (16/32/64/96 filters) it has about 80k parameters. Inputs are uint8-range
    pixels; the model rescales them. Batch-norm momentum is 0.9, not Keras' 0.99: a trial runs
    only a few hundred steps, too few for slower moving averages to settle, and evaluation with
    unsettled statistics scores near chance.
    """
    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    for block in range(depth):
        filters = min(width * 2**block, width * 6)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        if block < depth - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=f"compact_cnn_w{width}_d{depth}")


class ModelError(ValueError):
    """A ``--model`` that cannot be found, built, or does not fit the policy's input."""


class CompactCNN(keras_tuner.HyperModel):
    """The compact CNN family as a keras-tuner ``HyperModel``.

    ``build(hp)`` declares its searchable settings with defaults equal to
    :class:`search.settings.TrainConfig`'s, so an empty ``HyperParameters`` builds the default
    network. ``learning_rate`` is declared for tuners; the trial's optimizer reads it.
    """

    def __init__(self, input_shape: tuple[int, int, int], classes: int) -> None:
        super().__init__(name=BUILT_IN_MODEL)
        self.input_shape, self.classes = tuple(input_shape), classes

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The network for ``hp``'s ``width`` and ``depth``."""
        defaults = TrainConfig.model_fields
        width = hp.Int("width", 8, 64, step=8, default=defaults["width"].default)
        depth = hp.Int("depth", 2, 5, default=defaults["depth"].default)
        hp.Choice("learning_rate", [1e-3, 3e-3, 1e-2], default=defaults["learning_rate"].default)
        return build_model(self.input_shape, self.classes, width, depth)  # type: ignore[arg-type]


#: The prefix of a ``keras.applications`` network: ``keras:MobileNetV3Small``.
KERAS_PREFIX = "keras:"


def keras_application(spec: str) -> Any:
    """The ``keras.applications`` constructor ``spec`` (``keras:NAME``) names."""
    name = spec.removeprefix(KERAS_PREFIX)
    found = getattr(keras.applications, name, None) if name.isidentifier() else None
    if not (isinstance(found, type) or callable(found)) or name[0].islower():
        raise ModelError(
            f"--model '{spec}': keras.applications has no network '{name}' "
            "(e.g. keras:MobileNetV3Small, keras:ResNet50, keras:EfficientNetB0)"
        )
    return found


#: The BatchNormalization momentum of a ``keras:NAME`` network (PyTorch's default). Keras'
#: ImageNet settings (0.999 in MobileNetV3) leave the moving averages at their start after a
#: few hundred steps, so such a network scores chance at inference however well it trained:
#: MobileNetV3Small, 8 epochs on ``shapes``, object anchor val 0.175 at 0.999, 0.9975 at 0.9.
APPLICATION_BN_MOMENTUM = 0.9


def application_network(
    spec: str, input_shape: tuple[int, int, int], n_classes: int
) -> keras.Model:
    """``keras:NAME`` built for ``input_shape`` and ``n_classes`` with random weights (no
    download); uint8-range pixels are scaled to [-1, 1] first unless it rescales itself, and
    its BatchNormalization momentum is at most :data:`APPLICATION_BN_MOMENTUM`."""
    constructor = keras_application(spec)
    accepted = inspect.signature(constructor).parameters
    options: dict[str, Any] = {"include_preprocessing": True}
    options = {k: v for k, v in options.items() if k in accepted}
    network = constructor(
        input_shape=tuple(input_shape), weights=None, classes=n_classes, **options
    )
    for layer in network.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = min(layer.momentum, APPLICATION_BN_MOMENTUM)
    inputs = keras.Input(shape=input_shape)
    x = inputs if options else layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    name = spec.removeprefix(KERAS_PREFIX)
    return keras.Model(inputs, network(x), name=f"keras_{name}")


def load_hypermodel(spec: str) -> Any:
    """The object ``spec`` (``module:attr``) names on the Python path or in the current
    folder: a ``HyperModel`` subclass or instance, or a ``build(hp)`` callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f"--model '{spec}': expected module:attr, e.g. mymodels:MyHyperModel")
    if os.getcwd() not in sys.path:  # the `cropsearch` script's path holds its own folder only
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelError(f"--model '{spec}': cannot import {module_name}: {error}") from None
    found: Any = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise ModelError(f"--model '{spec}': {module_name} has no attribute '{attr}'")
        found = getattr(found, part)
    is_class = isinstance(found, type) and issubclass(found, keras_tuner.HyperModel)
    if not (is_class or isinstance(found, keras_tuner.HyperModel) or callable(found)):
        raise ModelError(f"--model '{spec}' is not a HyperModel or a build(hp) callable")
    return found


def hyperparameters(config: TrainConfig) -> keras_tuner.HyperParameters:
    """``HyperParameters`` holding the trial's training settings and model hyperparameters as
    fixed values, so a model's ``hp.Int("width", ...)`` returns the trial's width."""
    hp = keras_tuner.HyperParameters()
    for name in ("width", "depth", "learning_rate"):
        hp.Fixed(name, getattr(config, name))
    for name, value in config.model_hp.items():
        hp.Fixed(name, value)
    return hp


def build_network(
    spec: str | None,
    input_shape: tuple[int, int, int],
    n_classes: int,
    hp: keras_tuner.HyperParameters,
) -> keras.Model:
    """Build the built-in CNN (``spec`` None) or the user's model ``spec`` for one input shape;
    a model whose input or output does not fit raises :class:`ModelError` naming it."""
    if spec is None:
        return CompactCNN(input_shape, n_classes).build(hp)
    found = keras_application(spec) if spec.startswith(KERAS_PREFIX) else load_hypermodel(spec)
    try:
        if spec.startswith(KERAS_PREFIX):
            model = application_network(spec, input_shape, n_classes)
        elif isinstance(found, type):
            found = found(**constructor_arguments(spec, found, input_shape, n_classes))
            model = found.build(hp)
        else:
            model = found.build(hp) if isinstance(found, keras_tuner.HyperModel) else found(hp)
        if isinstance(model, keras.Model) and not model.built:  # a Sequential without an Input
            model.build((None, *input_shape))
    except ModelError:
        raise
    except Exception as error:
        message = f"--model '{spec}' failed to build: {type(error).__name__}: {error}"
        raise ModelError(message) from None
    if not isinstance(model, keras.Model):
        raise ModelError(f"--model '{spec}' built {type(model).__name__}, not a keras.Model")
    check_fit(spec, model, input_shape, n_classes)
    return model


#: What a ``HyperModel`` class's constructor may name, and what it is given: the policy's
#: input shape, and the number of classes under keras-tuner's name and under Keras' usual one.
CONSTRUCTOR_ARGUMENTS = ("input_shape", "classes", "num_classes")


def constructor_arguments(
    spec: str, cls: type, input_shape: tuple[int, int, int], n_classes: int
) -> dict[str, Any]:
    """The keyword arguments of :data:`CONSTRUCTOR_ARGUMENTS` that ``cls``'s constructor names;
    :class:`ModelError` when it requires any other."""
    values = {"input_shape": tuple(input_shape), "classes": n_classes, "num_classes": n_classes}
    parameters = inspect.signature(cls).parameters
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    required = [
        name
        for name, parameter in parameters.items()
        if parameter.kind in named
        and parameter.default is inspect.Parameter.empty
        and name not in CONSTRUCTOR_ARGUMENTS
    ]
    if required:
        raise ModelError(
            f"--model '{spec}': {cls.__name__}() requires {', '.join(required)}; cropsearch "
            f"passes only {', '.join(CONSTRUCTOR_ARGUMENTS)} (those the constructor names)"
        )
    return {name: value for name, value in values.items() if name in parameters}


def check_fit(
    spec: str, model: keras.Model, input_shape: tuple[int, int, int], n_classes: int
) -> None:
    """Raise :class:`ModelError` unless ``model`` takes ``input_shape`` images (a ``None``
    dimension fits any size) and outputs ``n_classes`` scores."""
    inputs = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else ()
    fits = len(inputs) == 3 and all(
        want is None or want == have for want, have in zip(inputs, input_shape, strict=True)
    )
    if not fits:
        raise ModelError(
            f"--model '{spec}' takes input {inputs}, but the crop policy gives "
            f"{tuple(input_shape)} (height, width, channels): build it for the policy's size"
        )
    outputs = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    if outputs != n_classes:
        raise ModelError(f"--model '{spec}' outputs {outputs} scores; the data has {n_classes}")


def compiled_network(
    config: TrainConfig, input_shape: tuple[int, int, int], n_classes: int, decay_steps: int
) -> keras.Model:
    """``config.model`` (or the built-in CNN) built for ``input_shape`` and compiled the way
    every trial trains: Adam, cosine decay to zero over ``decay_steps``, any compile of the
    model's own replaced."""
    model = build_network(config.model, input_shape, n_classes, hyperparameters(config))
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps)
    compile_for_training(model, schedule, input_shape, n_classes)
    return model


def compile_for_training(
    model: keras.Model,
    schedule: keras.optimizers.schedules.LearningRateSchedule,
    input_shape: tuple[int, int, int],
    n_classes: int,
) -> None:
    """Compile ``model`` as every trial trains (Adam on ``schedule``, sparse cross-entropy,
    accuracy) with its optimizer and metric variables created now. Keras (without a
    distribution strategy) creates them inside the first traced train step, and TensorFlow then
    traces that step a second time: 1.2-1.5 s more on the first ``fit`` of every new model."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.optimizer.build(model.trainable_variables)
    model.compute_metrics(
        keras.ops.zeros((1, *input_shape)),
        keras.ops.zeros((1,), dtype="int32"),
        keras.ops.zeros((1, n_classes)),
    )
    model.reset_metrics()
