"""Tests of `relaxed_bernoulli` and `bernoulli_kl`.

The statistical tests use fixed seeds; each states its false-failure rate,
the probability that a correct op fails it for a fresh seed.
"""

import re

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special
from scipy import stats

from keras_latent.ops import bernoulli_kl
from keras_latent.ops import relaxed_bernoulli
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import central_differences
from tests.ops.gradients import gradient

FALSE_FAILURE_RATE = 1e-3


def assert_binomial(successes, num_draws, logits):
    """Exact binomial test of each count against sigmoid(logits), at level
    FALSE_FAILURE_RATE / number of counts."""
    probabilities = special.expit(np.asarray(logits, np.float64))
    p_values = [
        stats.binomtest(int(k), num_draws, p).pvalue
        for k, p in zip(successes, probabilities, strict=True)
    ]
    assert min(p_values) >= FALSE_FAILURE_RATE / len(p_values), p_values


LOGITS = np.array([-3.0, -1.0, -0.2, 0.0, 0.5, 1.5, 4.0], dtype="float32")


@pytest.mark.parametrize("temperature", [0.1, 1.0, 10.0])
def test_frequency_above_one_half_matches_sigmoid(temperature):
    """P(sample > 1/2) = sigmoid(logits) at every temperature.

    Seven exact binomial tests on 20,000 draws each, at level 1e-3 / 7: the
    false-failure rate is at most 1e-3.
    """
    num_draws = 20000
    draws = np.broadcast_to(LOGITS, (num_draws, len(LOGITS)))
    samples = to_numpy(relaxed_bernoulli(draws, temperature, seed=41))
    successes = np.sum(samples > 0.5, axis=0)
    assert_binomial(successes, num_draws, LOGITS)


def test_hard_frequency_of_ones_matches_sigmoid():
    """Hard samples are Bernoulli(sigmoid(logits)).

    Seven exact binomial tests on 20,000 draws each, at level 1e-3 / 7: the
    false-failure rate is at most 1e-3.
    """
    num_draws = 20000
    draws = np.broadcast_to(LOGITS, (num_draws, len(LOGITS)))
    samples = to_numpy(relaxed_bernoulli(draws, 0.5, hard=True, seed=42))
    successes = np.sum(samples, axis=0)
    assert_binomial(successes, num_draws, LOGITS)


def test_soft_samples_lie_in_the_unit_interval(rng):
    logits = rng.normal(0.0, 2.0, size=(500, 6)).astype("float32")
    sample = relaxed_bernoulli(logits, 0.5, seed=1)
    assert tuple(sample.shape) == (500, 6)
    assert keras.backend.standardize_dtype(sample.dtype) == "float32"
    values = to_numpy(sample)
    assert np.all((values >= 0.0) & (values <= 1.0))
    assert np.any((values > 0.0) & (values < 1.0))


@pytest.mark.parametrize("temperature", [0.01, 0.5, 5.0])
def test_hard_sample_is_exactly_zero_or_one_and_thresholds_the_soft_one(
    temperature, rng
):
    """Same integer seed, same noise: hard = 1 exactly where soft > 1/2."""
    logits = rng.normal(0.0, 2.0, size=(500, 6)).astype("float32")
    soft = to_numpy(relaxed_bernoulli(logits, temperature, seed=7))
    hard = to_numpy(relaxed_bernoulli(logits, temperature, hard=True, seed=7))
    assert np.all((hard == 0.0) | (hard == 1.0))
    assert np.array_equal(hard, (soft > 0.5).astype(np.float64))


@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_hard_gradient_equals_soft_gradient(temperature, rng):
    logits = rng.normal(size=(500, 6)).astype("float32")
    weights = rng.normal(size=(500, 6)).astype("float32")

    def weighted(hard):
        def fn(x):
            sample = relaxed_bernoulli(x, temperature, hard=hard, seed=7)
            return ops.multiply(sample, weights)

        return fn

    soft_gradient = gradient(weighted(False), logits)
    hard_gradient = gradient(weighted(True), logits)
    assert np.any(soft_gradient != 0.0)
    np.testing.assert_allclose(hard_gradient, soft_gradient, rtol=1e-6)


def test_soft_gradient_matches_finite_differences(rng):
    """A fixed integer seed fixes the noise, so logits -> sample is a
    deterministic map; its gradient matches float32 central differences."""
    temperature = 0.7
    logits = rng.normal(size=(4, 3)).astype("float32")
    weights = rng.normal(size=(4, 3)).astype("float32")

    def objective(x):
        return ops.multiply(relaxed_bernoulli(x, temperature, seed=43), weights)

    def value(x):
        return float(np.sum(to_numpy(objective(x))))

    step = 1e-2
    numerical = np.zeros(logits.shape)
    for index in np.ndindex(logits.shape):
        shift = np.zeros(logits.shape, dtype="float32")
        shift[index] = step
        difference = value(logits + shift) - value(logits - shift)
        numerical[index] = difference / (2 * step)
    analytic = gradient(objective, logits)
    np.testing.assert_allclose(analytic, numerical, rtol=1e-3, atol=1e-3)


def test_temperature_may_be_a_scalar_tensor(rng):
    logits = rng.normal(size=(500, 6)).astype("float32")
    from_float = to_numpy(relaxed_bernoulli(logits, 0.5, seed=2))
    from_tensor = to_numpy(
        relaxed_bernoulli(logits, ops.convert_to_tensor(0.5), seed=2)
    )
    np.testing.assert_allclose(from_tensor, from_float, rtol=1e-6)


@pytest.mark.parametrize(
    "temperature", [0.0, -2.0, 0, float("nan"), float("inf"), 1e-40, 1e39]
)
@pytest.mark.parametrize("hard", [False, True])
def test_invalid_temperature_raises_value_error(temperature, hard):
    pattern = "`temperature`.*" + re.escape(f"temperature={temperature!r}")
    with pytest.raises(ValueError, match=pattern):
        relaxed_bernoulli(np.zeros((2, 3), "float32"), temperature, hard=hard)


@pytest.mark.parametrize("shape", [(7,), (4, 3), (2, 3, 5)])
def test_kl_matches_numpy_formula(shape, rng):
    logits = rng.normal(0.0, 3.0, size=shape).astype("float32")
    prior_logits = rng.normal(0.0, 3.0, size=shape).astype("float32")
    result = bernoulli_kl(logits, prior_logits)
    assert tuple(result.shape) == shape
    np.testing.assert_allclose(
        to_numpy(result),
        references.bernoulli_kl(logits, prior_logits),
        rtol=1e-5,
        atol=1e-6,
    )


def test_kl_matches_tfp_bernoulli_kl(rng):
    import tensorflow_probability as tfp

    distributions = tfp.distributions
    logits = rng.normal(0.0, 3.0, size=(4, 3)).astype("float32")
    prior_logits = rng.normal(0.0, 3.0, size=(4, 3)).astype("float32")
    expected = distributions.kl_divergence(
        distributions.Bernoulli(logits=logits.astype(np.float64)),
        distributions.Bernoulli(logits=prior_logits.astype(np.float64)),
    ).numpy()
    np.testing.assert_allclose(
        to_numpy(bernoulli_kl(logits, prior_logits)),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )


def test_kl_broadcasts_prior_logits(rng):
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    prior_logits = rng.normal(size=(5,)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(bernoulli_kl(logits, prior_logits)),
        references.bernoulli_kl(logits, prior_logits),
        rtol=1e-5,
        atol=1e-6,
    )


def test_no_prior_means_prior_probability_one_half(rng):
    """KL(q || 1/2) = q log q + (1 - q) log(1 - q) + log 2."""
    logits = rng.normal(0.0, 3.0, size=(4, 3)).astype("float32")
    q = special.expit(logits.astype(np.float64))
    expected = special.xlogy(q, q) + special.xlogy(1.0 - q, 1.0 - q)
    expected += np.log(2.0)
    np.testing.assert_allclose(
        to_numpy(bernoulli_kl(logits)), expected, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(bernoulli_kl(logits)),
        to_numpy(bernoulli_kl(logits, np.zeros((4, 3), "float32"))),
        rtol=1e-6,
        atol=1e-7,
    )


def test_kl_of_saturated_logits_is_the_log_odds_gap():
    """For q = sigmoid(a) with a -> +inf, KL -> -log sigmoid(b), the exact
    limit; logits of 1e4 or inf must not give NaN through log(1 - q)."""
    logits = np.array([1e4, np.inf, -1e4, -np.inf], dtype="float32")
    prior_logits = np.array([-3.0, 2.0, 3.0, -2.0], dtype="float32")
    expected = np.array(
        [
            -np.log(special.expit(-3.0)),
            -np.log(special.expit(2.0)),
            -np.log(special.expit(-3.0)),
            -np.log(special.expit(2.0)),
        ]
    )
    np.testing.assert_allclose(
        to_numpy(bernoulli_kl(logits, prior_logits)), expected, rtol=1e-6
    )


def test_kl_gradients_match_finite_differences_of_the_numpy_formula(rng):
    logits = rng.normal(0.0, 2.0, size=(4, 3)).astype("float32")
    prior_logits = rng.normal(0.0, 2.0, size=(4, 3)).astype("float32")
    weights = rng.normal(size=(4, 3))
    weights_tensor = ops.convert_to_tensor(weights.astype("float32"))
    expected_logits = central_differences(
        lambda x: np.sum(weights * references.bernoulli_kl(x, prior_logits)),
        logits,
    )
    expected_prior = central_differences(
        lambda y: np.sum(weights * references.bernoulli_kl(logits, y)),
        prior_logits,
    )
    gradient_logits = gradient(
        lambda x: ops.multiply(bernoulli_kl(x, prior_logits), weights_tensor),
        logits,
    )
    gradient_prior = gradient(
        lambda y: ops.multiply(bernoulli_kl(logits, y), weights_tensor),
        prior_logits,
    )
    np.testing.assert_allclose(
        gradient_logits, expected_logits, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        gradient_prior, expected_prior, rtol=1e-4, atol=1e-5
    )
    expected_uniform = central_differences(
        lambda x: np.sum(references.bernoulli_kl(x, np.zeros_like(x))), logits
    )
    np.testing.assert_allclose(
        gradient(bernoulli_kl, logits), expected_uniform, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_kl_returns_the_dtype_of_logits(dtype, rng):
    logits = rng.normal(size=(4, 3)).astype("float32")
    prior_logits = rng.normal(size=(4, 3)).astype("float32")
    result = bernoulli_kl(ops.cast(logits, dtype), prior_logits)
    assert keras.backend.standardize_dtype(result.dtype) == dtype
    rounded = to_numpy(ops.cast(logits, dtype))
    np.testing.assert_allclose(
        to_numpy(result),
        references.bernoulli_kl(rounded, prior_logits),
        rtol=1e-2,
        atol=1e-3,
    )
