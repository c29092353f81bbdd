"""Tests of `gumbel_softmax` and `one_hot_argmax`.

The statistical tests use fixed seeds; each states its false-failure rate,
the probability that a correct op fails it for a fresh seed.
"""

import math
import re

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special
from scipy import stats

from keras_latent.ops import gumbel_softmax
from keras_latent.ops import one_hot_argmax
from keras_latent.ops import relaxed_one_hot_log_sample
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import gradient

# Each statistical test rejects with probability at most 1e-3 when the op is
# correct; tests with several comparisons split it (Bonferroni).
FALSE_FAILURE_RATE = 1e-3


def argmax_counts(samples, axis):
    """Counts of each category's argmax over the draws on axis 0.

    Returns an array of shape `samples.shape[1:]` without `axis`, with the
    categories on the last axis.
    """
    num_categories = samples.shape[axis]
    winners = np.argmax(samples, axis=axis)
    return np.stack(
        [np.sum(winners == k, axis=0) for k in range(num_categories)],
        axis=-1,
    )


@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_argmax_frequencies_match_softmax(temperature):
    """The argmax of a sample is distributed as Categorical(softmax(logits)).

    Chi-square test on 20,000 draws; false-failure rate 1e-3.
    """
    logits = np.array([1.0, -0.5, 0.3, 2.0, 0.0], dtype="float32")
    draws = np.broadcast_to(logits, (20000, 5))
    samples = to_numpy(gumbel_softmax(draws, temperature, seed=11))
    counts = argmax_counts(samples, axis=-1)
    references.assert_counts_match(
        counts, special.softmax(logits.astype(np.float64)), FALSE_FAILURE_RATE
    )


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_argmax_frequencies_of_rank_3_logits_along_any_axis(axis, rng):
    """Rank-3 logits, categories on `axis`: each slice's argmax frequencies
    match its own softmax.

    Nine chi-square tests on 10,000 draws each, at level 1e-3 / 9: the
    false-failure rate is at most 1e-3.
    """
    logits = rng.normal(0.0, 1.0, size=(3, 3, 3)).astype("float32")
    draws = np.broadcast_to(logits, (10000, 3, 3, 3))
    draws_axis = axis if axis < 0 else axis + 1
    samples = to_numpy(gumbel_softmax(draws, 0.5, axis=draws_axis, seed=12))
    counts = argmax_counts(samples, axis=draws_axis)
    probabilities = np.moveaxis(
        special.softmax(logits.astype(np.float64), axis=axis), axis, -1
    )
    references.assert_counts_match(counts, probabilities, FALSE_FAILURE_RATE)


def test_masked_category_is_never_drawn():
    """A `-inf` logit gets weight exactly 0 and is never the argmax; the
    other categories keep their softmax frequencies.

    Chi-square test on 20,000 draws; false-failure rate 1e-3.
    """
    logits = np.array([0.5, -np.inf, -0.2, 1.0, 0.0], dtype="float32")
    draws = np.broadcast_to(logits, (20000, 5))
    samples = to_numpy(gumbel_softmax(draws, 0.5, seed=13))
    assert np.all(samples[:, 1] == 0.0)
    counts = argmax_counts(samples, axis=-1)
    assert counts[1] == 0
    allowed = [0, 2, 3, 4]
    probabilities = special.softmax(logits[allowed].astype(np.float64))
    references.assert_counts_match(
        counts[allowed], probabilities, FALSE_FAILURE_RATE
    )


def test_sample_mean_approaches_uniform_at_high_temperature():
    """At temperature T = 1000 the sample mean is 1/K up to O(1/T).

    Expanding softmax(z / T) around z / T = 0, with z = logits + Gumbel
    noise and l = logits, the mean of coordinate k is
        (1/K) (1 + (l_k - mean(l)) / T
               + ((l_k - mean(l))^2 - mean((l - mean(l))^2)) / (2 T^2))
    up to O(T^-3) (about 1e-8 here). The bias (l_k - mean(l)) / (K T)
    reaches about 200 standard errors, so the test also checks the scaling
    by T.
    Each of the K coordinates is a two-sided z-test at level 1e-3 / K, with
    the standard error estimated from 20,000 draws: false-failure rate 1e-3.
    """
    temperature = 1000.0
    logits = np.array([1.5, -0.5, 0.0, -2.0, 0.5])
    num_categories = len(logits)
    num_draws = 20000
    draws = np.broadcast_to(logits.astype("float32"), (num_draws, 5))
    samples = to_numpy(gumbel_softmax(draws, temperature, seed=14))

    centered = logits - logits.mean()
    expected = (
        1.0
        + centered / temperature
        + (centered**2 - np.mean(centered**2)) / (2.0 * temperature**2)
    ) / num_categories
    standard_error = samples.std(axis=0, ddof=1) / math.sqrt(num_draws)
    z = stats.norm.isf(FALSE_FAILURE_RATE / (2 * num_categories))
    # 1e-7 covers the O(T^-3) remainder and float32 rounding of the mean.
    tolerance = z * standard_error + 1e-7
    np.testing.assert_array_less(
        np.abs(samples.mean(axis=0) - expected), tolerance
    )
    assert np.all(np.abs(samples.mean(axis=0) - 0.2) < 1e-3)


def test_samples_lie_on_the_simplex_with_the_shape_and_dtype_of_logits(rng):
    logits = rng.normal(size=(500, 6)).astype("float32")
    sample = gumbel_softmax(logits, 0.5, seed=1)
    assert tuple(sample.shape) == (500, 6)
    assert keras.backend.standardize_dtype(sample.dtype) == "float32"
    values = to_numpy(sample)
    assert np.all(values >= 0.0)
    np.testing.assert_allclose(values.sum(axis=-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.01, 0.5, 3.0])
def test_hard_forward_value_is_the_one_hot_argmax_of_the_soft_sample(
    temperature, rng
):
    """With the same integer seed soft and hard share their noise; the hard
    forward value is exactly the one-hot encoding of the soft argmax."""
    logits = rng.normal(0.0, 2.0, size=(500, 6)).astype("float32")
    soft = to_numpy(gumbel_softmax(logits, temperature, seed=7))
    hard = to_numpy(gumbel_softmax(logits, temperature, hard=True, seed=7))
    assert np.array_equal(hard, np.eye(6)[np.argmax(soft, axis=-1)])


@pytest.mark.parametrize("logit", [1e7, 1e8, -3e7])
def test_hard_sample_is_exact_for_equal_huge_logits(logit):
    """Logits of 1e7 have a float32 spacing of 1: added to them, Gumbel
    noise would lose its fraction and favour the lowest index through ties.
    The maximum is subtracted first, so each of two equal logits is drawn
    with probability 1/2, in the hard sample and in the argmax of the
    log-sample.

    Binomial tests on 20,000 draws each, two-sided at level 1e-3 / 2.
    """
    draws = 20000
    logits = np.full((draws, 2), logit, dtype="float32")
    hard = to_numpy(gumbel_softmax(logits, 0.5, hard=True, seed=5))
    assert np.all(hard.sum(axis=-1) == 1.0)
    log_sample = to_numpy(relaxed_one_hot_log_sample(logits, 0.5, seed=6))
    log_sample_wins = np.sum(log_sample[:, 0] > log_sample[:, 1])
    for first_counts in [hard[:, 0].sum(), log_sample_wins]:
        p_value = stats.binomtest(int(first_counts), draws, 0.5).pvalue
        assert p_value >= FALSE_FAILURE_RATE / 2, first_counts


def test_hard_sample_is_one_hot_with_extreme_logits_and_tiny_temperature(
    rng,
):
    logits = rng.choice([-1e4, 1e4], size=(500, 6)).astype("float32")
    logits[:, 0] = 1e4
    logits[::3, 1] = -np.inf
    hard = to_numpy(gumbel_softmax(logits, 0.01, hard=True, seed=8))
    assert np.all((hard == 0.0) | (hard == 1.0))
    assert np.all(hard.sum(axis=-1) == 1.0)
    assert np.all(hard[::3, 1] == 0.0)
    assert np.all(hard[logits == -1e4] == 0.0)


def test_one_hot_argmax_sends_ties_to_the_lowest_index():
    x = np.array(
        [
            [1.0, 1.0, 0.0],
            [0.0, 0.0, 0.0],
            [2.0, 5.0, 5.0],
            [-np.inf, -np.inf, 3.0],
            [-np.inf, -np.inf, -np.inf],
        ],
        dtype="float32",
    )
    expected = np.array(
        [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]],
        dtype="float32",
    )
    result = one_hot_argmax(ops.convert_to_tensor(x))
    assert keras.backend.standardize_dtype(result.dtype) == "float32"
    assert np.array_equal(ops.convert_to_numpy(result), expected)
    result_axis_0 = one_hot_argmax(ops.convert_to_tensor(x.T), axis=0)
    assert np.array_equal(ops.convert_to_numpy(result_axis_0), expected.T)


@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_hard_gradient_equals_soft_gradient(temperature, rng):
    """Straight-through: same seed, same noise, same gradient."""
    logits = rng.normal(size=(500, 6)).astype("float32")
    weights = rng.normal(size=(500, 6)).astype("float32")

    def weighted(hard):
        def fn(x):
            sample = gumbel_softmax(x, temperature, hard=hard, seed=7)
            return ops.multiply(sample, weights)

        return fn

    soft_gradient = gradient(weighted(False), logits)
    hard_gradient = gradient(weighted(True), logits)
    assert np.any(soft_gradient != 0.0)
    np.testing.assert_allclose(hard_gradient, soft_gradient, rtol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0])
def test_gradient_matches_finite_differences(axis, rng):
    """A fixed integer seed fixes the noise, so logits -> sample is a
    deterministic map; its gradient matches float32 central differences."""
    temperature = 0.7
    logits = rng.normal(size=(4, 3)).astype("float32")
    weights = rng.normal(size=(4, 3)).astype("float32")

    def objective(x):
        sample = gumbel_softmax(x, temperature, axis=axis, seed=21)
        return ops.multiply(sample, weights)

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
    """An annealed temperature arrives as a tensor; it is not validated
    but gives the same sample as the equal Python float."""
    logits = rng.normal(size=(500, 6)).astype("float32")
    from_float = to_numpy(gumbel_softmax(logits, 0.5, seed=2))
    from_tensor = to_numpy(
        gumbel_softmax(logits, ops.convert_to_tensor(0.5), seed=2)
    )
    np.testing.assert_allclose(from_tensor, from_float, rtol=1e-6)


def test_integer_logits_give_float32_samples():
    logits = np.arange(3000, dtype="int32").reshape(500, 6) % 3
    sample = gumbel_softmax(logits, 0.5, seed=2)
    assert keras.backend.standardize_dtype(sample.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(sample).sum(axis=-1), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "temperature",
    [0.0, -1.0, 0, float("nan"), float("inf"), -float("inf"), 1e-40, 1e39],
)
@pytest.mark.parametrize("hard", [False, True])
def test_invalid_temperature_raises_value_error(temperature, hard):
    pattern = "`temperature`.*" + re.escape(f"temperature={temperature!r}")
    with pytest.raises(ValueError, match=pattern):
        gumbel_softmax(np.zeros((2, 3), "float32"), temperature, hard=hard)
