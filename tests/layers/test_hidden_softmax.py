"""Tests of the `GroupedSoftmax` and `HiddenSoftmax` layers.

Outputs are compared with the float64 NumPy references of
`tests/references.py` (softmax by definition, sparsemax by sort, 1.5-entmax
by root finding), applied to the layer's own weights; the regularization
losses with NumPy formulas. Nothing here is computed by keras-latent
itself. Config, shapes, saving and masks are checked in
`tests/layers/test_conformance.py`.
"""

import re

import keras
import numpy as np
import pytest

from keras_latent.layers import GroupedSoftmax
from keras_latent.layers import HiddenSoftmax
from keras_latent.regularizers import Entropy
from tests import references
from tests.arrays import to_numpy

NORMALIZERS = ("softmax", "sparsemax", "entmax15")
# The op tests run the normalizers on batches of 6 rows of 48 units in 1 or
# 16 groups, and on (2, 3, 48) in 2 groups; layer outputs of those shapes
# reuse what eager JAX compiled for them.
BATCH_SIZE = 6
INPUT_DIM = 10
UNITS = 48


def mean_entropy(p, groups):
    """The mean over all groups of -sum p log p, with 0 log 0 = 0."""
    grouped = p.reshape(-1, p.shape[-1] // groups)
    log_grouped = np.log(np.where(grouped > 0, grouped, 1.0))
    return float(np.mean(-np.sum(grouped * log_grouped, axis=-1)))


def dense_reference(layer, x):
    """grouped_normalize(x @ kernel + bias) from the layer's own weights."""
    pre_activation = np.asarray(x, "float64") @ to_numpy(layer.kernel)
    if layer.use_bias:
        pre_activation = pre_activation + to_numpy(layer.bias)
    return references.grouped(
        pre_activation, layer.groups, layer.normalizer, layer.temperature
    )


def invalid_value_pattern(name, value):
    return (
        re.escape(f"argument `{name}`")
        + ".*"
        + re.escape(f"Received: {name}={value!r}")
    )


@pytest.fixture
def inputs(rng):
    return rng.normal(size=(BATCH_SIZE, INPUT_DIM)).astype("float32")


# HiddenSoftmax: values.


@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("groups", [1, 16])
def test_hidden_softmax_is_grouped_normalize_of_the_dense_projection(
    inputs, normalizer, groups
):
    layer = HiddenSoftmax(
        UNITS,
        groups=groups,
        normalizer=normalizer,
        temperature=0.5,
        bias_initializer="random_normal",
    )
    outputs = to_numpy(layer(inputs))
    expected = dense_reference(layer, inputs)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        references.group_sums(outputs, groups), 1.0, atol=1e-5
    )
    if normalizer != "softmax":
        np.testing.assert_array_equal(outputs == 0.0, expected == 0.0)


def test_hidden_softmax_without_bias(inputs):
    layer = HiddenSoftmax(UNITS, groups=16, use_bias=False)
    outputs = to_numpy(layer(inputs))
    assert layer.bias is None
    assert [weight.name for weight in layer.weights] == ["kernel"]
    np.testing.assert_allclose(
        outputs, dense_reference(layer, inputs), rtol=0, atol=1e-5
    )


def test_hidden_softmax_normalizes_the_last_axis_of_rank_3_inputs(rng):
    x = rng.normal(size=(2, 3, INPUT_DIM)).astype("float32")
    layer = HiddenSoftmax(UNITS, groups=2, normalizer="entmax15")
    outputs = to_numpy(layer(x))
    assert outputs.shape == (2, 3, UNITS)
    np.testing.assert_allclose(
        outputs, dense_reference(layer, x), rtol=0, atol=1e-5
    )


def test_hidden_softmax_quantizes_like_dense(inputs):
    # Dense's int8 call path, then the normalization.
    layer = HiddenSoftmax(UNITS, groups=16, normalizer="sparsemax")
    float_outputs = to_numpy(layer(inputs))
    layer.quantize("int8")
    assert layer.dtype_policy.quantization_mode == "int8"
    outputs = to_numpy(layer(inputs))
    np.testing.assert_allclose(
        references.group_sums(outputs, 16), 1.0, atol=1e-5
    )
    # Weights and inputs rounded to 8 bits move the outputs a little.
    np.testing.assert_allclose(outputs, float_outputs, rtol=0, atol=0.05)


# HiddenSoftmax: arguments.


@pytest.mark.parametrize("units, groups", [(48, 5), (10, 3), (4, 8)])
def test_hidden_softmax_units_must_be_divisible_by_groups(units, groups):
    with pytest.raises(
        ValueError, match=invalid_value_pattern("groups", groups)
    ):
        HiddenSoftmax(units, groups=groups)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"normalizer": "relu"}, "normalizer"),
        ({"normalizer": None}, "normalizer"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"units": 0}, "units"),
        ({"units": -4}, "units"),
        ({"units": 4.0}, "units"),
        ({"units": "4"}, "units"),
        ({"units": True}, "units"),
        ({"groups": 0}, "groups"),
    ],
)
def test_hidden_softmax_rejects_invalid_arguments(kwargs, name):
    arguments = {"units": 4, **kwargs}
    with pytest.raises(
        ValueError, match=invalid_value_pattern(name, arguments[name])
    ):
        HiddenSoftmax(**arguments)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"normalizer": "sigmoid"}, "normalizer"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"groups": 0}, "groups"),
        ({"groups": 2.0}, "groups"),
    ],
)
def test_grouped_softmax_rejects_invalid_arguments(kwargs, name):
    with pytest.raises(
        ValueError, match=invalid_value_pattern(name, kwargs[name])
    ):
        GroupedSoftmax(**kwargs)


# HiddenSoftmax: regularizers and constraints.


def regularized_layer():
    return HiddenSoftmax(
        UNITS,
        groups=16,
        bias_initializer="random_normal",
        kernel_regularizer=keras.regularizers.L2(0.1),
        bias_regularizer=keras.regularizers.L1(0.2),
        activity_regularizer=Entropy(weight=0.5, groups=16),
    )


def test_hidden_softmax_regularizers_reach_layer_losses(inputs):
    layer = regularized_layer()
    layer(inputs)
    kernel, bias = to_numpy(layer.kernel), to_numpy(layer.bias)
    expected = [
        0.1 * np.sum(kernel**2),
        0.2 * np.sum(np.abs(bias)),
        # Entropy's documented scale once Keras divides by the batch size.
        0.5 * mean_entropy(dense_reference(layer, inputs), 16),
    ]
    losses = [float(to_numpy(loss)) for loss in layer.losses]
    np.testing.assert_allclose(sorted(losses), sorted(expected), rtol=1e-5)


def test_training_loss_holds_the_regularizers_and_constraints_hold(inputs):
    targets = np.linspace(-1.0, 1.0, BATCH_SIZE, dtype="float32")[:, None]
    hidden = regularized_layer()
    constrained = HiddenSoftmax(
        UNITS,
        groups=16,
        kernel_initializer=keras.initializers.RandomNormal(seed=1),
        bias_initializer=keras.initializers.RandomNormal(seed=2),
        kernel_constraint=keras.constraints.NonNeg(),
        bias_constraint=keras.constraints.NonNeg(),
    )
    head = keras.layers.Dense(1)
    model = keras.Sequential(
        [keras.Input((INPUT_DIM,)), hidden, constrained, head]
    )
    model.compile(keras.optimizers.SGD(0.5), "mse")
    assert to_numpy(constrained.kernel).min() < 0.0
    assert to_numpy(constrained.bias).min() < 0.0

    first = dense_reference(hidden, inputs)
    second = dense_reference(constrained, first)
    predictions = second @ to_numpy(head.kernel) + to_numpy(head.bias)
    expected_loss = (
        np.mean((predictions - targets) ** 2)
        + 0.1 * np.sum(to_numpy(hidden.kernel) ** 2)
        + 0.2 * np.sum(np.abs(to_numpy(hidden.bias)))
        + 0.5 * mean_entropy(first, 16)
    )
    # One full batch: the loss reported is the one before the update.
    history = model.fit(
        inputs, targets, batch_size=BATCH_SIZE, epochs=1, verbose=0
    )
    np.testing.assert_allclose(history.history["loss"], [expected_loss], 1e-5)
    assert to_numpy(constrained.kernel).min() >= 0.0
    assert to_numpy(constrained.bias).min() >= 0.0


# HiddenSoftmax: configuration (the rest is in test_conformance.py).


def test_hidden_softmax_config_describes_the_normalization_not_an_activation():
    config = HiddenSoftmax(
        UNITS, groups=16, normalizer="sparsemax"
    ).get_config()
    assert "activation" not in config
    assert (config["groups"], config["normalizer"]) == (16, "sparsemax")


# GroupedSoftmax: shapes and values.


@pytest.mark.parametrize(
    "shape, groups, normalizer",
    [
        ((BATCH_SIZE, UNITS), 16, "sparsemax"),
        ((2, 3, UNITS), 2, "entmax15"),
        ((2, 1, 3, UNITS), 4, "softmax"),
        ((UNITS,), 16, "softmax"),
    ],
)
def test_grouped_softmax_normalizes_inputs_of_any_rank(
    rng, shape, groups, normalizer
):
    x = (2.0 * rng.normal(size=shape)).astype("float32")
    layer = GroupedSoftmax(
        groups=groups, normalizer=normalizer, temperature=0.5
    )
    outputs = to_numpy(layer(x))
    assert outputs.shape == shape
    expected = references.grouped(x, groups, normalizer, 0.5)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5)
    assert layer.compute_output_shape((None, *shape[1:])) == (None, *shape[1:])


def test_grouped_softmax_symbolic_output_keeps_unknown_dimensions():
    layer = GroupedSoftmax(groups=4)
    outputs = layer(keras.Input(shape=(None, UNITS)))
    assert tuple(outputs.shape) == (None, None, UNITS)


@pytest.mark.parametrize("groups", [5, 7, 96])
def test_grouped_softmax_last_dimension_not_divisible_raises_at_build(
    groups,
):
    layer = GroupedSoftmax(groups=groups)
    with pytest.raises(
        ValueError, match=invalid_value_pattern("groups", groups)
    ):
        layer(np.zeros((2, UNITS), "float32"))
    with pytest.raises(ValueError, match="last dimension"):
        GroupedSoftmax(groups=groups).build((None, UNITS))


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_grouped_softmax_with_one_group_is_keras_softmax(rng, temperature):
    x = (3.0 * rng.normal(size=(BATCH_SIZE, UNITS))).astype("float32")
    layer = GroupedSoftmax(groups=1, temperature=temperature)
    expected = keras.layers.Softmax()(x / np.float32(temperature))
    np.testing.assert_allclose(
        to_numpy(layer(x)), to_numpy(expected), rtol=1e-6, atol=1e-7
    )


# Both layers in models.


class HiddenSoftmaxClassifier(keras.Model):
    """A subclassed model: HiddenSoftmax, GroupedSoftmax, a linear head."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = HiddenSoftmax(UNITS, groups=16, normalizer="sparsemax")
        self.grouped = GroupedSoftmax(groups=16)
        self.head = keras.layers.Dense(3)

    def call(self, inputs):
        hidden = self.hidden(inputs)
        return self.head(self.grouped(hidden)), hidden


def build_sequential():
    return keras.Sequential(
        [
            keras.Input((INPUT_DIM,)),
            HiddenSoftmax(UNITS, groups=16, normalizer="sparsemax"),
            GroupedSoftmax(groups=16),
            keras.layers.Dense(3),
        ]
    )


def build_functional():
    inputs = keras.Input((INPUT_DIM,))
    hidden = HiddenSoftmax(UNITS, groups=16, normalizer="sparsemax")(inputs)
    outputs = keras.layers.Dense(3)(GroupedSoftmax(groups=16)(hidden))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "build", [build_sequential, build_functional, HiddenSoftmaxClassifier]
)
def test_layers_work_in_every_kind_of_model(inputs, build):
    model = build()
    outputs = model(inputs)
    if isinstance(outputs, tuple):
        outputs = outputs[0]
    hidden, grouped, head = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    # Both weights of each dense layer are trained by the model.
    assert len(model.trainable_weights) == 4
    first = dense_reference(hidden, inputs)
    second = references.grouped(first, 16, "softmax", 1.0)
    expected = second @ to_numpy(head.kernel) + to_numpy(head.bias)
    np.testing.assert_allclose(to_numpy(outputs), expected, rtol=0, atol=1e-5)


# Training.


def tiny_classification_data():
    """64 points in 4 dimensions, labeled by the argmax of a fixed map."""
    generator = np.random.default_rng(7)
    x = generator.normal(size=(64, 4)).astype("float32")
    labels = np.argmax(x @ generator.normal(size=(4, 3)), axis=-1)
    return x, labels.astype("int32")


def test_mlp_with_hidden_softmax_fits_a_tiny_dataset_with_each_normalizer():
    # One model with a separate branch and loss per normalizer: one compiled
    # training step, and each branch's loss depends on its own layer only.
    x, labels = tiny_classification_data()
    inputs = keras.Input((4,))
    outputs = {}
    for seed, normalizer in enumerate(NORMALIZERS):
        hidden = HiddenSoftmax(
            32,
            groups=4,
            normalizer=normalizer,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        )(inputs)
        outputs[normalizer] = keras.layers.Dense(
            3,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            name=normalizer,
        )(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(0.05),
        {
            normalizer: keras.losses.SparseCategoricalCrossentropy(
                from_logits=True
            )
            for normalizer in NORMALIZERS
        },
    )
    targets = {normalizer: labels for normalizer in NORMALIZERS}
    history = model.fit(x, targets, batch_size=64, epochs=10, verbose=0)
    for normalizer in NORMALIZERS:
        losses = history.history[f"{normalizer}_loss"]
        assert np.all(np.isfinite(losses))
        # From about log(3) for a near-uniform start.
        assert losses[0] > 0.9
        assert losses[-1] < 0.5 * losses[0], normalizer


@pytest.mark.parametrize(
    "policy, unit_roundoff",
    [("mixed_float16", 2.0**-11), ("mixed_bfloat16", 2.0**-8)],
)
def test_mixed_precision_outputs_sum_to_one_and_a_model_fits(
    rng, policy, unit_roundoff
):
    keras.config.set_dtype_policy(policy)
    compute_dtype = policy.removeprefix("mixed_")
    inputs = keras.Input((INPUT_DIM,))
    branches = [
        HiddenSoftmax(UNITS, groups=16, normalizer=normalizer)(inputs)
        for normalizer in NORMALIZERS
    ]
    branches.append(
        GroupedSoftmax(groups=16)(keras.layers.Dense(UNITS)(inputs))
    )
    head = keras.layers.Dense(1, dtype="float32")
    model = keras.Model(inputs, head(keras.layers.Concatenate()(branches)))
    probe = keras.Model(inputs, branches)

    x = rng.normal(size=(BATCH_SIZE, INPUT_DIM)).astype("float32")
    outputs = probe(x)
    for output in outputs:
        assert keras.backend.standardize_dtype(output.dtype) == compute_dtype
        sums = references.group_sums(to_numpy(output), 16)
        # Normalized in float32, then each entry rounded once.
        np.testing.assert_allclose(sums, 1.0, rtol=0, atol=unit_roundoff + 1e-6)

    model.compile(keras.optimizers.SGD(0.1), "mse")
    y = rng.normal(size=(BATCH_SIZE, 1)).astype("float32")
    history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for weight in model.trainable_weights:
        assert keras.backend.standardize_dtype(weight.dtype) == "float32"
        assert np.all(np.isfinite(to_numpy(weight)))


def test_hidden_softmax_rejects_an_activation_argument():
    with pytest.raises(ValueError, match=r"`activation`.*activation='relu'"):
        HiddenSoftmax(8, activation="relu")
