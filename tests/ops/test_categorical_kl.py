"""Tests of `categorical_kl` against NumPy and TensorFlow Probability."""

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special

from keras_latent.ops import categorical_kl
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import central_differences
from tests.ops.gradients import gradient

SHAPES = [(5,), (4, 3), (2, 3, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_numpy_formula(shape, rng):
    logits = rng.normal(0.0, 2.0, size=shape).astype("float32")
    prior_logits = rng.normal(0.0, 2.0, size=shape).astype("float32")
    result = categorical_kl(logits, prior_logits)
    assert tuple(result.shape) == shape[:-1]
    np.testing.assert_allclose(
        to_numpy(result),
        references.categorical_kl(logits, prior_logits),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("axis", [0, 1, -2])
def test_matches_numpy_formula_along_a_non_last_axis(axis, rng):
    logits = rng.normal(0.0, 2.0, size=(2, 3, 5)).astype("float32")
    prior_logits = rng.normal(0.0, 2.0, size=(2, 3, 5)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits, prior_logits, axis=axis)),
        references.categorical_kl(logits, prior_logits, axis=axis),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_tfp_one_hot_categorical_kl(shape, rng):
    import tensorflow_probability as tfp

    distributions = tfp.distributions
    logits = rng.normal(0.0, 2.0, size=shape).astype("float32")
    prior_logits = rng.normal(0.0, 2.0, size=shape).astype("float32")
    expected = distributions.kl_divergence(
        distributions.OneHotCategorical(logits=logits.astype(np.float64)),
        distributions.OneHotCategorical(logits=prior_logits.astype(np.float64)),
    ).numpy()
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits, prior_logits)),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )


def test_broadcasts_prior_logits(rng):
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    prior_logits = rng.normal(size=(5,)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits, prior_logits)),
        references.categorical_kl(
            logits, np.broadcast_to(prior_logits, logits.shape)
        ),
        rtol=1e-5,
        atol=1e-6,
    )


def test_no_prior_means_the_uniform_prior(rng):
    """KL(q || uniform) = sum_k q_k log q_k + log K."""
    logits = rng.normal(0.0, 2.0, size=(4, 3)).astype("float32")
    q = special.softmax(logits.astype(np.float64), axis=-1)
    expected = np.sum(special.xlogy(q, q), axis=-1) + np.log(3.0)
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits)), expected, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits)),
        to_numpy(categorical_kl(logits, np.zeros((4, 3), "float32"))),
        rtol=1e-6,
        atol=1e-7,
    )


def test_no_prior_is_uniform_over_the_unmasked_categories(rng):
    """Masked in some rows: KL(q || uniform over the K' unmasked categories)
    = sum_k q_k log q_k + log K', the prior of `relaxed_categorical_kl`."""
    logits = rng.normal(0.0, 2.0, size=(3, 4)).astype("float32")
    logits[0, 1] = -np.inf
    logits[1, [0, 3]] = -np.inf
    q = special.softmax(logits.astype(np.float64), axis=-1)
    unmasked = np.isfinite(logits).sum(axis=-1)
    expected = np.sum(special.xlogy(q, q), axis=-1) + np.log(unmasked)
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits)), expected, rtol=1e-5, atol=1e-6
    )


def test_kl_of_a_distribution_with_itself_is_zero(rng):
    logits = rng.normal(0.0, 3.0, size=(4, 3)).astype("float32")
    shifted = logits + 5.0
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits, shifted)), 0.0, atol=1e-6
    )


def test_masked_categories_add_nothing(rng):
    """A `-inf` logit gives q_k = 0, contributing 0, whatever the prior,
    also a prior of zero (a `-inf` prior logit) at the same place."""
    logits = rng.normal(size=(4, 3)).astype("float32")
    logits[:, 2] = -np.inf
    prior_logits = rng.normal(size=(4, 3)).astype("float32")
    expected = references.categorical_kl(logits, prior_logits)
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits, prior_logits)),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )
    prior_logits[:, 2] = -np.inf
    np.testing.assert_allclose(
        to_numpy(categorical_kl(logits, prior_logits)),
        references.categorical_kl(logits, prior_logits),
        rtol=1e-5,
        atol=1e-6,
    )


def test_prior_zero_where_posterior_is_positive_gives_infinity():
    logits = np.zeros((4, 3), "float32")
    logits[1:, 1] = -np.inf
    prior_logits = np.zeros((4, 3), "float32")
    prior_logits[:, 1] = -np.inf
    result = to_numpy(categorical_kl(logits, prior_logits))
    assert result[0] == np.inf
    np.testing.assert_allclose(result[1:], 0.0, atol=1e-7)


def test_gradients_match_finite_differences_of_the_numpy_formula(rng):
    logits = rng.normal(0.0, 1.5, size=(4, 3)).astype("float32")
    prior_logits = rng.normal(0.0, 1.5, size=(4, 3)).astype("float32")
    weights = rng.normal(size=(4,))

    def objective(x, y):
        return np.sum(weights * references.categorical_kl(x, y))

    expected_logits = central_differences(
        lambda x: objective(x, prior_logits), logits
    )
    expected_prior = central_differences(
        lambda y: objective(logits, y), prior_logits
    )
    weights_tensor = ops.convert_to_tensor(weights.astype("float32"))
    gradient_logits = gradient(
        lambda x: ops.multiply(categorical_kl(x, prior_logits), weights_tensor),
        logits,
    )
    gradient_prior = gradient(
        lambda y: ops.multiply(categorical_kl(logits, y), weights_tensor),
        prior_logits,
    )
    np.testing.assert_allclose(
        gradient_logits, expected_logits, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        gradient_prior, expected_prior, rtol=1e-4, atol=1e-5
    )


def test_gradient_of_uniform_prior_kl_matches_finite_differences(rng):
    logits = rng.normal(0.0, 1.5, size=(4, 3)).astype("float32")
    expected = central_differences(
        lambda x: np.sum(references.categorical_kl(x, np.zeros_like(x))), logits
    )
    np.testing.assert_allclose(
        gradient(categorical_kl, logits), expected, rtol=1e-4, atol=1e-5
    )


def test_gradient_is_finite_and_zero_on_masked_categories(rng):
    """Masked posterior categories have no influence on the KL, so their
    gradient is exactly 0; also where the prior is zero too."""
    logits = rng.normal(size=(4, 3)).astype("float32")
    logits[:, 2] = -np.inf
    prior_logits = rng.normal(size=(4, 3)).astype("float32")
    prior_logits[:, 2] = -np.inf
    gradient_logits = gradient(
        lambda x: categorical_kl(x, prior_logits), logits
    )
    gradient_prior = gradient(lambda y: categorical_kl(logits, y), prior_logits)
    assert np.all(np.isfinite(gradient_logits))
    assert np.all(np.isfinite(gradient_prior))
    assert np.all(gradient_logits[:, 2] == 0.0)
    expected = central_differences(
        lambda x: np.sum(references.categorical_kl(x, prior_logits)), logits
    )
    np.testing.assert_allclose(gradient_logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_returns_the_dtype_of_logits(dtype, rng):
    logits = rng.normal(size=(4, 3)).astype("float32")
    prior_logits = rng.normal(size=(4, 3)).astype("float32")
    result = categorical_kl(ops.cast(logits, dtype), prior_logits)
    assert keras.backend.standardize_dtype(result.dtype) == dtype
    rounded = to_numpy(ops.cast(logits, dtype))
    np.testing.assert_allclose(
        to_numpy(result),
        references.categorical_kl(rounded, prior_logits),
        rtol=1e-2,
        atol=1e-3,
    )
