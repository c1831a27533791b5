"""The compact CNN family every trial trains."""

from __future__ import annotations

import keras
from keras import layers


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
