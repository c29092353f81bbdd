"""Tests of `sample_one_hot`, the exact (Gumbel-max) categorical sampler.

The statistical tests use fixed seeds; each states its false-failure rate,
the probability that a correct op fails it for a fresh seed.
"""

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special
from scipy import stats

from keras_latent.ops import gumbel_softmax
from keras_latent.ops import sample_one_hot
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import gradient

FALSE_FAILURE_RATE = 1e-3


def test_frequencies_match_softmax():
    """One-hot draws are distributed as Categorical(softmax(logits)).

    Chi-square test on 20,000 draws; false-failure rate 1e-3.
    """
    logits = np.array([-1.0, 0.4, 2.0, 0.0, -3.0], dtype="float32")
    draws = np.broadcast_to(logits, (20000, 5))
    samples = to_numpy(sample_one_hot(draws, seed=31))
    references.assert_exact_one_hot(samples, axis=-1)
    references.assert_counts_match(
        samples.sum(axis=0),
        special.softmax(logits.astype(np.float64)),
        FALSE_FAILURE_RATE,
    )


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_frequencies_of_rank_3_logits_along_any_axis(axis, rng):
    """Rank-3 logits, categories on `axis`: each slice's frequencies match
    its own softmax.

    Nine chi-square tests on 10,000 draws each, at level 1e-3 / 9: the
    false-failure rate is at most 1e-3.
    """
    logits = rng.normal(0.0, 1.0, size=(3, 3, 3)).astype("float32")
    draws = np.broadcast_to(logits, (10000, 3, 3, 3))
    draws_axis = axis if axis < 0 else axis + 1
    samples = to_numpy(sample_one_hot(draws, axis=draws_axis, seed=32))
    references.assert_exact_one_hot(samples, axis=draws_axis)
    counts = np.moveaxis(samples.sum(axis=0), axis, -1)
    probabilities = np.moveaxis(
        special.softmax(logits.astype(np.float64), axis=axis), axis, -1
    )
    references.assert_counts_match(counts, probabilities, FALSE_FAILURE_RATE)


def test_masked_category_is_never_drawn():
    """A `-inf` logit is never drawn; the other categories keep their
    softmax frequencies.

    Chi-square test on 20,000 draws; false-failure rate 1e-3.
    """
    logits = np.array([0.5, -np.inf, -0.2, 1.0, 0.0], dtype="float32")
    draws = np.broadcast_to(logits, (20000, 5))
    samples = to_numpy(sample_one_hot(draws, seed=33))
    references.assert_exact_one_hot(samples, axis=-1)
    counts = samples.sum(axis=0)
    assert counts[1] == 0
    allowed = [0, 2, 3, 4]
    probabilities = special.softmax(logits[allowed].astype(np.float64))
    references.assert_counts_match(
        counts[allowed], probabilities, FALSE_FAILURE_RATE
    )


@pytest.mark.parametrize("logit", [1e7, 1e8, -3e7])
def test_is_exact_for_equal_huge_logits(logit):
    """Equal logits of 1e7 or more: each of two categories is drawn with
    probability 1/2 (the noise is added after the maximum is subtracted,
    not to logits whose float32 spacing is 1 or more).

    Binomial test on 20,000 draws, two-sided; false-failure rate 1e-3.
    """
    draws = 20000
    logits = np.full((draws, 2), logit, dtype="float32")
    samples = to_numpy(sample_one_hot(logits, seed=34))
    references.assert_exact_one_hot(samples, axis=-1)
    first_counts = int(samples[:, 0].sum())
    p_value = stats.binomtest(first_counts, draws, 0.5).pvalue
    assert p_value >= FALSE_FAILURE_RATE, first_counts


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_output_has_the_shape_and_dtype_of_logits(dtype, rng):
    logits = ops.cast(rng.normal(size=(500, 6)), dtype)
    sample = sample_one_hot(logits, seed=1)
    assert tuple(sample.shape) == (500, 6)
    assert keras.backend.standardize_dtype(sample.dtype) == dtype
    references.assert_exact_one_hot(to_numpy(sample), axis=-1)


def test_shares_its_noise_with_gumbel_softmax(rng):
    """Same integer seed, same Gumbel noise: the exact sample is the argmax
    of the relaxed one, whose argmax does not depend on the temperature."""
    logits = rng.normal(size=(500, 6)).astype("float32")
    exact = to_numpy(sample_one_hot(logits, seed=9))
    relaxed = to_numpy(gumbel_softmax(logits, 1.0, seed=9))
    assert np.array_equal(exact, np.eye(6)[np.argmax(relaxed, axis=-1)])


def test_carries_no_gradient(rng):
    logits = rng.normal(size=(500, 6)).astype("float32")
    weights = rng.normal(size=(500, 6)).astype("float32")
    result = gradient(
        lambda x: ops.multiply(sample_one_hot(x, seed=2), weights), logits
    )
    assert np.array_equal(result, np.zeros_like(logits))
