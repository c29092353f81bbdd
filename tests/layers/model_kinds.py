"""The three kinds of Keras model a layer must work in, for layer tests."""

import keras
import numpy as np

MODEL_KINDS = ("sequential", "functional", "subclassed")


class DenseThen(keras.Model):
    """A subclassed model: a Dense layer, then the layer under test."""

    def __init__(self, layer, units, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(units)
        self.layer = layer

    def call(self, inputs, training=None):
        return self.layer(self.dense(inputs), training=training)


def build_model(kind, layer, input_shape, units):
    """`Dense(units)` then `layer`, as a model of the given kind, built.

    Args:
        kind: one of `MODEL_KINDS`.
        layer: the layer under test.
        input_shape: the input shape without the batch axis, or an int.
        units: the Dense layer's units.
    """
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    if kind == "sequential":
        return keras.Sequential(
            [keras.Input(input_shape), keras.layers.Dense(units), layer]
        )
    if kind == "functional":
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, layer(keras.layers.Dense(units)(inputs)))
    model = DenseThen(layer, units)
    model(np.zeros((1, *input_shape), "float32"))
    return model


def dense_logits(model, x):
    """The Dense layer's output, recomputed in NumPy from its weights."""
    dense = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.Dense)
    )
    kernel, bias = dense.get_weights()
    return x.astype(np.float64) @ kernel + bias
