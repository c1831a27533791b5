"""User networks for the ``--model module:attr`` tests (imported from the tests folder)."""

from __future__ import annotations

import keras
import keras_tuner
from keras import layers


class TinyNet(keras_tuner.HyperModel):
    """A HyperModel class built for the policy's size (keras-tuner's applications style)."""

    def __init__(self, input_shape: tuple[int, int, int], classes: int) -> None:
        super().__init__(name="tiny_net")
        self.shape, self.classes = input_shape, classes

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        units = hp.Int("units", 4, 16, step=4, default=8)
        inputs = keras.Input(self.shape)
        x = layers.Rescaling(1 / 255)(inputs)
        x = layers.Conv2D(units, 3, activation="relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(self.classes, activation="softmax")(x))


def any_size(hp: keras_tuner.HyperParameters) -> keras.Model:
    """A ``build(hp)`` callable whose input takes any image size (6 classes, as shapes has)."""
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(hp.Int("filters", 4, 8, default=4), 3)(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(6, activation="softmax")(x))


def fixed_32(hp: keras_tuner.HyperParameters) -> keras.Model:
    """A ``build(hp)`` callable that only takes 32x32 images."""
    inputs = keras.Input((32, 32, 3))
    x = layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, layers.Dense(6, activation="softmax")(x))


class Tiny(keras_tuner.HyperModel):
    """As keras-tuner's guide writes one: no constructor, ``build(hp)`` makes the network, a
    ``Sequential`` with no ``Input`` (built for the policy's size), its own compile."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = keras.Sequential(
            [
                layers.Rescaling(1 / 255),
                layers.Conv2D(hp.Int("filters", 4, 12, step=4, default=4), 3, activation="relu"),
                layers.GlobalAveragePooling2D(),
                layers.Dense(6, activation="softmax"),
            ],
            name="user_tiny",
        )
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return model


tiny = Tiny()


class NumClassesNet(keras_tuner.HyperModel):
    """Keras' usual names: ``input_shape`` and ``num_classes``, and a constructor argument of
    its own with a default."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, units: int = 4) -> None:
        super().__init__()
        self.shape, self.num_classes, self.units = input_shape, num_classes, units

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs = keras.Input(self.shape)
        x = layers.Conv2D(self.units, 3)(inputs)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(self.num_classes, activation="softmax")(x))


class ClassesOnly(keras_tuner.HyperModel):
    """Only ``classes``: the input takes any size."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs = keras.Input((None, None, 3))
        x = layers.GlobalAveragePooling2D()(inputs)
        return keras.Model(inputs, layers.Dense(self.classes, activation="softmax")(x))


class NeedsWidth(keras_tuner.HyperModel):
    """A constructor argument cropsearch cannot know."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
