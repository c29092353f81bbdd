"""Tests for keras_latent.regularizers, against NumPy/SciPy references."""

import math
import re

import keras
import numpy as np
import pytest
import scipy.special

from keras_latent import regularizers


def _entropy_call_reference(x, weight, groups):
    """weight * sum over examples of the mean entropy of their groups."""
    x = np.asarray(x, dtype=np.float64)
    grouped = x.reshape(x.shape[0], -1, x.shape[-1] // groups)
    entropy = scipy.special.entr(grouped).sum(axis=-1)
    return weight * entropy.mean(axis=1).sum()


def _kl_sparsity_reference(x, target, weight):
    """weight * sum_j KL(target || rho_j), rho_j the mean over leading axes."""
    x = np.asarray(x, dtype=np.float64)
    rho = x.reshape(-1, x.shape[-1]).mean(axis=0)
    # The documented clip happens in float32, where 1 - 1e-7 rounds to
    # 1 - 2**-23.
    rho = np.clip(rho, 1e-7, float(np.float32(1 - 1e-7)))
    kl = target * np.log(target / rho) + (1 - target) * np.log(
        (1 - target) / (1 - rho)
    )
    return weight * kl.sum()


def _grouped_probabilities(rng, shape, groups):
    """Random distributions on each group of the last axis, with exact zeros.

    The first example's first group is one-hot and its last entry is zero
    in every group, so both 0 * log(0) and a zero derivative are exercised.
    """
    size = shape[-1] // groups
    logits = rng.normal(size=shape[:-1] + (groups, size))
    logits[..., -1] = -np.inf
    logits[(0,) * (len(shape) - 1) + (0,)] = [0.0] + [-np.inf] * (size - 1)
    return scipy.special.softmax(logits, axis=-1).reshape(shape)


def _gradient(function, x):
    """The gradient of the scalar `function(x)` with respect to `x`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = function(x)
        return tape.gradient(value, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(function)(jax.numpy.asarray(x)))
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        function(x).backward()
        return x.grad.numpy()
    pytest.skip(f"no gradient helper for the {backend} backend")


def _activity_loss(layer, x):
    """The loss the layer's activity regularizer adds after one call."""
    layer(x)
    (loss,) = layer.losses
    return float(keras.ops.convert_to_numpy(loss))


@pytest.mark.parametrize(
    "shape, groups",
    [((5, 6), 1), ((5, 6), 2), ((5, 6), 3), ((4, 3, 6), 2), ((1, 8), 4)],
)
def test_entropy_call_sums_mean_group_entropy_over_examples(rng, shape, groups):
    x = _grouped_probabilities(rng, shape, groups).astype("float32")
    value = regularizers.Entropy(weight=0.3, groups=groups)(x)
    expected = _entropy_call_reference(x, 0.3, groups)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)


def test_entropy_is_zero_for_one_hot_and_log_size_for_uniform():
    one_hot = np.eye(4, dtype="float32")
    uniform = np.full((3, 4), 0.25, dtype="float32")
    regularizer = regularizers.Entropy(weight=1.0)
    assert float(regularizer(one_hot)) == 0.0
    np.testing.assert_allclose(
        float(regularizer(uniform)), 3 * math.log(4), rtol=1e-6
    )


def test_entropy_of_rank_one_input_is_one_example():
    x = np.array([0.5, 0.5, 0.1, 0.9], dtype="float32")
    value = regularizers.Entropy(weight=2.0, groups=2)(x)
    expected = 2.0 * scipy.special.entr(x.astype("float64")).sum() / 2
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)


@pytest.mark.parametrize("shape", [(0, 6), (0, 3, 6)])
def test_entropy_of_an_empty_batch_is_zero(shape):
    # A reshape to (0, -1, size) cannot infer its -1 from zero entries:
    # JAX divided by zero and PyTorch refused it.
    regularizer = regularizers.Entropy(weight=1.0, groups=2)
    assert float(regularizer(np.zeros(shape, "float32"))) == 0.0
    layer = keras.layers.Activation("softmax", activity_regularizer=regularizer)
    assert layer(np.zeros(shape, "float32")).shape == shape
    assert _activity_loss(layer, np.zeros(shape, "float32")) == 0.0


@pytest.mark.parametrize("batch_size", [4, 32])
def test_entropy_layer_loss_is_weight_times_batch_mean(rng, batch_size):
    layer = keras.layers.Dense(
        6,
        activation="softmax",
        activity_regularizer=regularizers.Entropy(weight=0.2),
    )
    x = rng.normal(size=(batch_size, 5)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(layer(x))
    expected = 0.2 * scipy.special.entr(probabilities).sum(axis=-1).mean()
    np.testing.assert_allclose(_activity_loss(layer, x), expected, rtol=1e-5)


def test_entropy_layer_loss_does_not_depend_on_batch_size(rng):
    layer = keras.layers.Dense(
        6,
        activation="softmax",
        activity_regularizer=regularizers.Entropy(weight=0.2, groups=3),
    )
    x = rng.normal(size=(4, 5)).astype("float32")
    small = _activity_loss(layer, x)
    large = _activity_loss(layer, np.tile(x, (8, 1)))
    np.testing.assert_allclose(large, small, rtol=1e-5)


def test_entropy_gradient_is_finite_at_exact_zeros(rng):
    x = _grouped_probabilities(rng, (3, 6), 2)
    regularizer = regularizers.Entropy(weight=0.5, groups=2)
    gradient = _gradient(regularizer, x.astype("float32"))
    assert np.all(np.isfinite(gradient))
    # d/dp of -p log p is -(log p + 1); each example averages its 2 groups.
    safe_x = np.where(x > 0, x, 1.0)
    expected = np.where(x > 0, -0.5 / 2 * (np.log(safe_x) + 1.0), 0.0)
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("groups", [4, 5])
def test_entropy_rejects_groups_not_dividing_last_axis(groups):
    x = np.full((2, 6), 1 / 6, dtype="float32")
    with pytest.raises(ValueError, match=r"`groups`.*\(2, 6\)"):
        regularizers.Entropy(groups=groups)(x)


@pytest.mark.parametrize("shape", [(5, 7), (3, 2, 7), (7,)])
def test_kl_sparsity_call_is_batch_size_times_penalty(rng, shape):
    x = rng.uniform(0.01, 0.3, size=shape).astype("float32")
    value = regularizers.KLSparsity(target=0.1, weight=0.7)(x)
    batch_size = shape[0] if len(shape) > 1 else 1
    expected = batch_size * _kl_sparsity_reference(x, 0.1, 0.7)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)


def test_kl_sparsity_is_zero_when_mean_activation_equals_target():
    x = np.array([[0.1, 0.3], [0.5, 0.3]], dtype="float32")
    value = regularizers.KLSparsity(target=0.3, weight=1.0)(x)
    np.testing.assert_allclose(float(value), 0.0, atol=1e-6)


def test_kl_sparsity_of_an_empty_batch_is_zero():
    # The mean activation of no examples is 0 / 0; the penalty, a factor
    # batch_size = 0 times it, is 0, not NaN.
    regularizer = regularizers.KLSparsity(target=0.1, weight=1.0)
    assert float(regularizer(np.zeros((0, 6), "float32"))) == 0.0


@pytest.mark.parametrize("batch_size", [4, 32])
def test_kl_sparsity_layer_loss_is_weight_times_summed_kl(rng, batch_size):
    layer = keras.layers.Dense(
        6,
        activation="sigmoid",
        activity_regularizer=regularizers.KLSparsity(target=0.05, weight=0.5),
    )
    x = rng.normal(size=(batch_size, 5)).astype("float32")
    activations = keras.ops.convert_to_numpy(layer(x))
    expected = _kl_sparsity_reference(activations, 0.05, 0.5)
    np.testing.assert_allclose(_activity_loss(layer, x), expected, rtol=1e-5)


def test_kl_sparsity_layer_loss_does_not_depend_on_batch_size(rng):
    layer = keras.layers.Dense(
        6,
        activation="sigmoid",
        activity_regularizer=regularizers.KLSparsity(target=0.05, weight=0.5),
    )
    x = rng.normal(size=(4, 5)).astype("float32")
    small = _activity_loss(layer, x)
    large = _activity_loss(layer, np.tile(x, (8, 1)))
    np.testing.assert_allclose(large, small, rtol=1e-5)


def test_kl_sparsity_gradient_matches_derivative_of_bernoulli_kl(rng):
    x = rng.uniform(0.05, 0.95, size=(4, 3)).astype("float32")
    regularizer = regularizers.KLSparsity(target=0.2, weight=0.5)
    gradient = _gradient(regularizer, x)
    # batch_size * weight * dKL/drho * drho/dx, with drho/dx = 1/batch_size.
    rho = x.astype("float64").mean(axis=0)
    expected = 0.5 * (-0.2 / rho + 0.8 / (1 - rho))
    np.testing.assert_allclose(
        gradient, np.broadcast_to(expected, x.shape), rtol=1e-4
    )


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_kl_sparsity_is_finite_for_saturated_units(value):
    x = np.full((4, 3), value, dtype="float32")
    regularizer = regularizers.KLSparsity(target=0.05, weight=1.0)
    expected = 4 * _kl_sparsity_reference(x, 0.05, 1.0)
    assert math.isfinite(expected)
    np.testing.assert_allclose(float(regularizer(x)), expected, rtol=1e-4)
    assert np.all(np.isfinite(_gradient(regularizer, x)))


@pytest.mark.parametrize(
    "regularizer",
    [regularizers.Entropy(0.1, groups=2), regularizers.KLSparsity(0.1)],
)
def test_result_is_float32_for_half_precision_input(regularizer):
    """Keras sums activity losses with the float32 KL and data losses; a
    float16 result breaks that sum on TensorFlow."""
    for dtype in ("float16", "bfloat16"):
        x = keras.ops.full((3, 4), 0.25, dtype=dtype)
        result = regularizer(x)
        assert keras.backend.standardize_dtype(result.dtype) == "float32"


@pytest.mark.parametrize(
    "regularizer",
    [
        regularizers.Entropy(weight=0.25, groups=3),
        regularizers.KLSparsity(target=0.2, weight=0.5),
    ],
)
def test_config_round_trips_through_serialize_and_deserialize(regularizer):
    restored = regularizer.__class__.from_config(regularizer.get_config())
    assert restored.get_config() == regularizer.get_config()
    serialized = keras.regularizers.serialize(regularizer)
    assert serialized["registered_name"] == (
        f"keras_latent>{regularizer.__class__.__name__}"
    )
    deserialized = keras.regularizers.deserialize(serialized)
    assert isinstance(deserialized, regularizer.__class__)
    assert deserialized.get_config() == regularizer.get_config()


def _regularized_model():
    return keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(
                8,
                activation="sigmoid",
                activity_regularizer=regularizers.KLSparsity(0.1, 0.5),
            ),
            keras.layers.Dense(
                6,
                activation="softmax",
                activity_regularizer=regularizers.Entropy(0.2, groups=1),
            ),
        ]
    )


def test_model_with_regularizers_survives_keras_save_in_safe_mode(
    rng, tmp_path
):
    model = _regularized_model()
    x = rng.normal(size=(4, 5)).astype("float32")
    model(x)
    losses = [keras.ops.convert_to_numpy(loss) for loss in model.losses]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for original, restored in zip(model.layers, loaded.layers, strict=True):
        original_regularizer = original.activity_regularizer
        restored_regularizer = restored.activity_regularizer
        assert type(restored_regularizer) is type(original_regularizer)
        assert (
            restored_regularizer.get_config()
            == original_regularizer.get_config()
        )
    loaded(x)
    np.testing.assert_allclose(
        [keras.ops.convert_to_numpy(loss) for loss in loaded.losses],
        losses,
        rtol=1e-6,
    )


def test_softmax_layer_with_entropy_trains_one_step_without_nan(rng):
    model = _regularized_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = rng.normal(size=(16, 5)).astype("float32")
    y = scipy.special.softmax(rng.normal(size=(16, 6)), axis=-1)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][-1])
    for weight in model.weights:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(weight)))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_regularized_model_fits_under_mixed_precision(policy, rng):
    """A fit step failed on TensorFlow: a float16 activity loss could not be
    summed with the float32 data loss."""
    keras.config.set_dtype_policy(policy)
    model = _regularized_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = rng.normal(size=(16, 5)).astype("float32")
    y = scipy.special.softmax(rng.normal(size=(16, 6)), axis=-1)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    model(x[:8])
    assert len(model.losses) == 2
    for loss in model.losses:
        assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    # The values are those of the same weights under float32, within the
    # rounding of the half-precision activations.
    mixed_losses = [float(keras.ops.convert_to_numpy(v)) for v in model.losses]
    keras.config.set_dtype_policy("float32")
    reference = _regularized_model()
    reference.set_weights(model.get_weights())
    reference(x[:8])
    float32_losses = [
        float(keras.ops.convert_to_numpy(v)) for v in reference.losses
    ]
    np.testing.assert_allclose(mixed_losses, float32_losses, rtol=3e-2)


@pytest.mark.parametrize(
    "make, name, value",
    [
        (regularizers.Entropy, "weight", -1),
        (regularizers.Entropy, "weight", float("nan")),
        (regularizers.Entropy, "weight", float("inf")),
        # inf in float32: the penalty of a one-hot input was inf * 0 = NaN.
        (regularizers.Entropy, "weight", 1e39),
        (regularizers.Entropy, "weight", "0.1"),
        (regularizers.Entropy, "groups", 0),
        (regularizers.Entropy, "groups", 1.5),
        (regularizers.Entropy, "groups", True),
        (regularizers.KLSparsity, "target", 0.0),
        (regularizers.KLSparsity, "target", 1.0),
        (regularizers.KLSparsity, "target", float("nan")),
        (regularizers.KLSparsity, "weight", -1),
        (regularizers.KLSparsity, "weight", float("inf")),
        (regularizers.KLSparsity, "weight", 1e39),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(make, name, value):
    message = (
        f"Invalid value received for argument `{name}`. Expected .*"
        f"Received: {name}={re.escape(repr(value))}"
    )
    with pytest.raises(ValueError, match=message):
        make(**{name: value})
