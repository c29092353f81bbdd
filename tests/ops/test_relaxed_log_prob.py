"""Tests of `relaxed_one_hot_log_prob`, the Concrete log-density."""

import re

import keras
import numpy as np
import pytest
from keras import ops
from scipy import integrate

from keras_latent.ops import relaxed_one_hot_log_prob
from tests.arrays import to_numpy
from tests.ops.gradients import gradient


def simplex_points(rng, shape):
    """Float32 points of the simplex along the last axis, corners included.

    Dirichlet(0.3) draws reach entries near 1e-10; entries below 1e-30 are
    raised to it so that no coordinate underflows float32.
    """
    points = rng.dirichlet(np.full(shape[-1], 0.3), size=shape[:-1])
    points = np.maximum(points, 1e-30)
    return (points / points.sum(axis=-1, keepdims=True)).astype("float32")


def tfp_log_prob(sample, logits, temperature):
    """TensorFlow Probability's Concrete log-density, in float64."""
    import tensorflow_probability as tfp

    distribution = tfp.distributions.RelaxedOneHotCategorical(
        np.float64(temperature), logits=np.asarray(logits, np.float64)
    )
    return distribution.log_prob(np.asarray(sample, np.float64)).numpy()


@pytest.mark.parametrize("temperature", [0.05, 0.2, 1.0, 5.0])
@pytest.mark.parametrize("shape", [(2,), (3,), (6, 5), (2, 3, 4)])
def test_matches_tfp_relaxed_one_hot_categorical(shape, temperature, rng):
    logits = rng.normal(0.0, 2.0, size=shape).astype("float32")
    sample = simplex_points(rng, shape)
    expected = tfp_log_prob(sample, logits, temperature)
    result = relaxed_one_hot_log_prob(sample, logits, temperature)
    assert tuple(result.shape) == shape[:-1]
    np.testing.assert_allclose(to_numpy(result), expected, rtol=2e-5, atol=2e-4)


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_matches_tfp_at_its_own_samples(temperature, rng):
    """Points drawn from the distribution itself, where its mass is."""
    import tensorflow_probability as tfp

    logits = rng.normal(0.0, 1.0, size=(6, 5))
    distribution = tfp.distributions.RelaxedOneHotCategorical(
        np.float64(temperature), logits=logits
    )
    sample = distribution.sample(200, seed=17).numpy()
    # Compare where every coordinate is a normal float32: at low
    # temperature many draws hold entries that underflow it.
    representable = np.all(sample > 1e-30, axis=-1)
    assert representable.sum() > 100
    sample = np.maximum(sample, 1e-30).astype("float32")
    logits = np.broadcast_to(logits, sample.shape).astype("float32")
    expected = tfp_log_prob(sample, logits, temperature)
    result = relaxed_one_hot_log_prob(sample, logits, temperature)
    np.testing.assert_allclose(
        to_numpy(result)[representable],
        expected[representable],
        rtol=2e-5,
        atol=2e-4,
    )


@pytest.mark.parametrize("axis", [0, 1])
def test_matches_tfp_along_a_non_last_axis(axis, rng):
    logits = rng.normal(size=(2, 3, 4)).astype("float32")
    sample = simplex_points(rng, (2, 3, 4))
    expected = tfp_log_prob(sample, logits, 0.5)
    result = relaxed_one_hot_log_prob(
        np.moveaxis(sample, -1, axis),
        np.moveaxis(logits, -1, axis),
        0.5,
        axis=axis,
    )
    np.testing.assert_allclose(to_numpy(result), expected, rtol=2e-5, atol=2e-4)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 5.0])
def test_two_category_density_integrates_to_one(temperature):
    """With K = 2 the density is taken with respect to Lebesgue measure on
    the first coordinate y1, with y2 = 1 - y1; it integrates to 1 on (0, 1).
    Below temperature 1 it has integrable singularities at both ends."""
    logits = np.array([0.7, -0.4], dtype="float32")

    def density(y1):
        sample = np.array([y1, 1.0 - y1], dtype="float32")
        log_prob = relaxed_one_hot_log_prob(sample, logits, temperature)
        return float(np.exp(to_numpy(log_prob)))

    # The density is evaluated in float32: ask quad for what float32 allows.
    # Each half holds one endpoint singularity (for temperatures below 1).
    total = 0.0
    for lower, upper in [(0.0, 0.5), (0.5, 1.0)]:
        part, error = integrate.quad(
            density, lower, upper, epsabs=1e-6, epsrel=1e-5, limit=200
        )
        assert error < 1e-4
        total += part
    assert abs(total - 1.0) < 1e-4


def test_gradient_matches_finite_differences_of_tfp(rng):
    """The gradient with respect to the logits matches float64 central
    differences of TensorFlow Probability's log-density."""
    temperature = 0.5
    logits = rng.normal(size=(4, 3)).astype("float32")
    sample = simplex_points(rng, (4, 3))
    # Every one-coordinate shift at once, as a batch for TFP.
    step = 1e-6
    shifts = step * np.eye(logits.size).reshape((-1,) + logits.shape)
    differences = np.sum(
        tfp_log_prob(sample, logits + shifts, temperature)
        - tfp_log_prob(sample, logits - shifts, temperature),
        axis=-1,
    )
    expected = (differences / (2 * step)).reshape(logits.shape)
    result = gradient(
        lambda x: relaxed_one_hot_log_prob(sample, x, temperature), logits
    )
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_returns_the_dtype_of_logits(dtype, rng):
    logits = rng.normal(size=(4, 3)).astype("float32")
    sample = simplex_points(rng, (4, 3))
    result = relaxed_one_hot_log_prob(sample, ops.cast(logits, dtype), 1.0)
    assert keras.backend.standardize_dtype(result.dtype) == dtype
    rounded_logits = to_numpy(ops.cast(logits, dtype))
    np.testing.assert_allclose(
        to_numpy(result),
        tfp_log_prob(sample, rounded_logits, 1.0),
        rtol=1e-2,
        atol=1e-1,
    )


@pytest.mark.parametrize(
    "temperature", [0.0, -0.5, 0, float("nan"), float("inf"), 1e-40, 1e39]
)
def test_invalid_temperature_raises_value_error(temperature):
    pattern = "`temperature`.*" + re.escape(f"temperature={temperature!r}")
    with pytest.raises(ValueError, match=pattern):
        relaxed_one_hot_log_prob(
            np.full((2, 3), 1.0 / 3.0, "float32"),
            np.zeros((2, 3), "float32"),
            temperature,
        )


@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_masked_categories_are_left_out(temperature, rng):
    """With category 1 masked (and 0 in the sample), the density is TFP's
    Concrete density over the other categories, row by row; rows mask
    different numbers of categories, so K differs between rows."""
    logits = rng.normal(0.0, 2.0, size=(3, 5)).astype("float32")
    sample = simplex_points(rng, (3, 5))
    masked = np.zeros((3, 5), bool)
    masked[0, 1] = True
    masked[1, [1, 3]] = True
    logits[masked] = -np.inf
    sample[masked] = 0.0
    sample /= sample.sum(axis=-1, keepdims=True)
    expected = [
        tfp_log_prob(
            sample[row][~masked[row]], logits[row][~masked[row]], temperature
        )
        for row in range(3)
    ]
    result = relaxed_one_hot_log_prob(sample, logits, temperature)
    np.testing.assert_allclose(to_numpy(result), expected, rtol=2e-5, atol=2e-4)
    logits_gradient = gradient(
        lambda x: relaxed_one_hot_log_prob(sample, x, temperature), logits
    )
    assert np.all(np.isfinite(logits_gradient))
    np.testing.assert_array_equal(logits_gradient[masked], 0.0)
