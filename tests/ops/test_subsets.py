"""Tests of the k-subset ops: `gumbel_top_k`, `relaxed_top_k`,
`straight_through_top_k` and `k_hot_top_k`.

Exact samples are checked against the probabilities of every subset,
enumerated in float64 over the ordered draws without replacement; the
relaxation against Xie and Ermon's algorithm written here in float64 NumPy,
its gradients by central differences. The statistical tests use fixed
seeds; each states its false-failure rate, the probability that a correct
op fails it for a fresh seed.
"""

import itertools

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special

from keras_latent.ops import gumbel_top_k
from keras_latent.ops import k_hot_top_k
from keras_latent.ops import relaxed_top_k
from keras_latent.ops import straight_through_top_k
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import central_differences
from tests.ops.gradients import gradient

FALSE_FAILURE_RATE = 1e-3


def subset_probabilities(logits, k):
    """The probability of each k-subset of the categories, as a dict keyed
    by sorted index tuples: the sum, over the k! orders of drawing it,
    of the product of p_i / (1 - mass drawn before), p = softmax(logits)."""
    p = special.softmax(np.asarray(logits, np.float64))
    result = {}
    for ordered in itertools.permutations(range(len(p)), k):
        probability, remaining = 1.0, 1.0
        for index in ordered:
            probability *= p[index] / remaining
            remaining -= p[index]
        key = tuple(sorted(ordered))
        result[key] = result.get(key, 0.0) + probability
    return result


def reference_relaxed_top_k(logits, k, temperature, uniform):
    """Xie and Ermon (2019), Algorithm 2, in float64: from the keys
    `r = logits + g`, k steps of `a = softmax(s / t)` with
    `s <- s + log(1 - a)`, summed."""
    scores = np.asarray(logits, np.float64) - np.log(
        -np.log(np.asarray(uniform, np.float64))
    )
    selected = np.zeros_like(scores)
    total = np.zeros_like(scores)
    for _ in range(k):
        scores = scores + np.log1p(-selected)
        selected = references.softmax(scores / temperature)
        total = total + selected
    return total


def assert_exact_k_hot(y, k, axis=-1):
    y = np.asarray(y)
    assert np.all((y == 0.0) | (y == 1.0))
    np.testing.assert_array_equal(np.sum(y, axis=axis), k)


@pytest.mark.parametrize(
    "logits, k",
    [
        ([-1.0, 0.4, 1.0, 0.0, -0.5], 2),
        ([-1.0, 0.4, 1.0, 0.0, -0.5], 3),
        ([0.5, -np.inf, -0.2, 1.0, 0.0], 2),
    ],
)
def test_subset_frequencies_match_enumeration(logits, k):
    """k-hot draws are distributed as k draws without replacement from
    softmax(logits), compared subset by subset with the enumeration; a
    masked category is never drawn.

    One chi-square test on 20,000 draws; false-failure rate 1e-3.
    """
    logits = np.asarray(logits, dtype="float32")
    draws = np.broadcast_to(logits, (20000, len(logits)))
    samples = to_numpy(gumbel_top_k(draws, k, seed=41))
    assert_exact_k_hot(samples, k)
    assert np.all(samples[:, np.isinf(logits)] == 0.0)
    probabilities = subset_probabilities(logits, k)
    subsets = [s for s, value in probabilities.items() if value > 0.0]
    drawn = [tuple(np.flatnonzero(sample)) for sample in samples]
    counts = np.array([drawn.count(subset) for subset in subsets])
    assert counts.sum() == len(samples)
    references.assert_counts_match(
        counts,
        np.array([probabilities[subset] for subset in subsets]),
        FALSE_FAILURE_RATE,
    )


def test_enumeration_reference_on_a_hand_worked_case():
    """p = (1/2, 1/4, 1/4), k = 2: P({0, 1}) = 1/2 * 1/2 + 1/4 * 2/3."""
    probabilities = subset_probabilities(np.log([0.5, 0.25, 0.25]), 2)
    np.testing.assert_allclose(probabilities[(0, 1)], 0.25 + 1.0 / 6.0)
    np.testing.assert_allclose(sum(probabilities.values()), 1.0)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_samples_along_any_axis_use_the_noise_of_that_axis(axis, rng):
    logits = rng.normal(size=(4, 5, 6)).astype("float32")
    noise = rng.uniform(size=logits.shape).astype("float32")
    k = 2
    sample = to_numpy(gumbel_top_k(logits, k, axis=axis, noise=noise))
    assert_exact_k_hot(sample, k, axis=axis)
    keys = logits - np.log(-np.log(noise.astype(np.float64)))
    kth_largest = -np.sort(-keys, axis=axis).take(k - 1, axis=axis)
    expected = keys >= np.expand_dims(kth_largest, axis)
    np.testing.assert_array_equal(sample, expected)


def test_relaxation_sums_to_k_with_entries_in_0_k(rng):
    """Sum k to float32 precision (1e-5 * k), entries in [0, k]."""
    logits = rng.normal(0.0, 2.0, size=(300, 7)).astype("float32")
    for k, temperature in [(1, 1.0), (3, 1.0), (3, 0.1), (6, 0.5)]:
        sample = to_numpy(relaxed_top_k(logits, k, temperature, seed=5))
        np.testing.assert_allclose(sample.sum(-1), k, atol=1e-5 * k)
        assert np.all(sample >= 0.0) and np.all(sample <= k)


def test_relaxation_on_a_hand_worked_case():
    """p = (0.9, 0.1), no noise (u = 1/e gives g = 0), k = 2, t = 1:
    a_1 = (0.9, 0.1), a_2 = softmax(log p + log(1 - a_1)) = (1/2, 1/2),
    so the sum is (1.4, 0.6): the entries are not bounded by 1."""
    logits = np.log(np.array([[0.9, 0.1]], dtype="float32"))
    noise = np.full((1, 2), np.exp(-1.0), dtype="float32")
    sample = to_numpy(relaxed_top_k(logits, 2, 1.0, noise=noise))
    np.testing.assert_allclose(sample, [[1.4, 0.6]], atol=1e-6)


@pytest.mark.parametrize("axis", [0, -1])
def test_relaxation_matches_the_reference(axis, rng):
    logits = rng.normal(size=(6, 5)).astype("float32")
    logits[2, 1] = -np.inf
    noise = rng.uniform(size=logits.shape).astype("float32")
    sample = relaxed_top_k(logits, 3, 0.5, axis=axis, noise=noise)
    expected = np.moveaxis(
        reference_relaxed_top_k(
            np.moveaxis(logits, axis, -1), 3, 0.5, np.moveaxis(noise, axis, -1)
        ),
        -1,
        axis,
    )
    np.testing.assert_allclose(to_numpy(sample), expected, atol=2e-6)


def test_relaxation_gradient_matches_central_differences(rng):
    logits = rng.normal(size=(3, 5))
    noise = rng.uniform(size=logits.shape).astype("float32")
    weights = rng.normal(size=logits.shape)
    actual = gradient(
        lambda x: ops.multiply(relaxed_top_k(x, 2, 0.7, noise=noise), weights),
        logits.astype("float32"),
    )
    expected = central_differences(
        lambda x: np.sum(weights * reference_relaxed_top_k(x, 2, 0.7, noise)),
        logits.astype("float32"),
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_relaxation_tends_to_the_exact_sample_as_temperature_falls(rng):
    """With the same noise, the relaxation approaches the k-hot of
    `gumbel_top_k`: its mean error falls with the temperature, and every
    slice whose k + 1 largest keys are at least 0.1 apart is within 1e-3
    of it at temperature 0.005. (Keys closer than about the temperature
    share each step's mass, and the shared penalty log(1/2) can let the
    next key in: the limit holds slice by slice, not uniformly.)"""
    k = 3
    logits = rng.normal(size=(400, 6)).astype("float32")
    noise = rng.uniform(size=logits.shape).astype("float32")
    exact = to_numpy(gumbel_top_k(logits, k, noise=noise))
    errors = [
        np.abs(to_numpy(relaxed_top_k(logits, k, t, noise=noise)) - exact)
        for t in (1.0, 0.3, 0.1, 0.03, 0.005)
    ]
    means = [error.mean() for error in errors]
    assert np.all(np.diff(means) < 0.0), means
    keys = np.sort(logits - np.log(-np.log(noise.astype(np.float64))))
    separated = np.all(np.diff(keys[:, -k - 1 :], axis=-1) > 0.1, axis=-1)
    assert separated.mean() > 0.5
    assert errors[-1][separated].max() < 1e-3


def test_straight_through_is_the_exact_sample_with_relaxed_gradient(rng):
    k = 2
    logits = rng.normal(size=(50, 6)).astype("float32")
    logits[0, 3] = -np.inf
    noise = rng.uniform(size=logits.shape).astype("float32")
    weights = rng.normal(size=logits.shape).astype("float32")
    sample = to_numpy(straight_through_top_k(logits, k, 0.5, noise=noise))
    assert_exact_k_hot(sample, k)
    np.testing.assert_array_equal(
        sample, to_numpy(gumbel_top_k(logits, k, noise=noise))
    )

    def weighted(op):
        return lambda x: ops.multiply(op(x, k, 0.5, noise=noise), weights)

    np.testing.assert_allclose(
        gradient(weighted(straight_through_top_k), logits),
        gradient(weighted(relaxed_top_k), logits),
        rtol=1e-6,
        atol=1e-7,
    )


def test_exact_sample_carries_no_gradient(rng):
    logits = rng.normal(size=(20, 6)).astype("float32")
    result = gradient(lambda x: gumbel_top_k(x, 2, seed=2), logits)
    assert np.array_equal(result, np.zeros_like(logits))


@pytest.mark.parametrize("op", [relaxed_top_k, straight_through_top_k])
@pytest.mark.parametrize("temperature", [0.01, 1.0])
def test_gradients_are_finite_under_masks_and_at_low_temperature(
    op, temperature, rng
):
    """Masked categories get output 0 and gradient 0; no gradient is NaN,
    even where one step's softmax rounds to an exact one-hot."""
    logits = rng.normal(0.0, 3.0, size=(200, 6)).astype("float32")
    logits[:, 0] = -np.inf
    logits[::2, 4] = -np.inf
    weights = rng.normal(size=logits.shape).astype("float32")
    sample = to_numpy(op(logits, 3, temperature, seed=8))
    assert np.all(sample[np.isinf(logits)] == 0.0)
    result = gradient(
        lambda x: ops.multiply(op(x, 3, temperature, seed=8), weights), logits
    )
    assert np.all(np.isfinite(result))
    assert np.all(result[np.isinf(logits)] == 0.0)
    assert np.any(result != 0.0)


ALL_OPS = {
    "gumbel_top_k": lambda x, k, **kw: gumbel_top_k(x, k, seed=3, **kw),
    "relaxed_top_k": lambda x, k, **kw: relaxed_top_k(x, k, 0.5, seed=3, **kw),
    "straight_through_top_k": lambda x, k, **kw: straight_through_top_k(
        x, k, 0.5, seed=3, **kw
    ),
    "k_hot_top_k": lambda x, k, **kw: k_hot_top_k(x, k, **kw),
}


@pytest.mark.parametrize("name", sorted(ALL_OPS))
def test_nan_in_gives_nan_out(name):
    """A slice with NaN, or fewer than k unmasked categories, gives NaN;
    the samplers also give NaN for `+inf` (`inf - inf` in the shifted
    logits); other slices stay finite."""
    logits = np.array(
        [
            [0.1, np.nan, 0.3, -0.2],
            [0.1, np.inf, 0.3, -0.2],
            [-np.inf, -np.inf, 0.3, -np.inf],
            [0.1, 0.2, 0.3, -0.2],
        ],
        dtype="float32",
    )
    result = to_numpy(ALL_OPS[name](logits, 2))
    assert np.all(np.isnan(result[0]))
    assert np.all(np.isnan(result[2]))
    if name == "k_hot_top_k":
        # Without noise, `+inf` is the largest entry, not a NaN.
        np.testing.assert_array_equal(result[1], [0, 1, 1, 0])
    else:
        assert np.all(np.isnan(result[1]))
    assert np.all(np.isfinite(result[3]))
    np.testing.assert_allclose(result[3].sum(), 2.0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ALL_OPS))
def test_empty_batch_gives_empty_output(name):
    result = ALL_OPS[name](np.zeros((0, 5), dtype="float32"), 2)
    assert tuple(result.shape) == (0, 5)


@pytest.mark.parametrize("name", sorted(ALL_OPS))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_output_has_the_dtype_of_logits(name, dtype, rng):
    logits = ops.cast(rng.normal(size=(8, 5)), dtype)
    result = ALL_OPS[name](logits, 2)
    assert keras.backend.standardize_dtype(result.dtype) == dtype
    np.testing.assert_allclose(to_numpy(result).sum(-1), 2.0, atol=2e-2)


@pytest.mark.parametrize("name", sorted(ALL_OPS))
@pytest.mark.parametrize("k", [0, 6, 2.0, True, None])
def test_rejects_a_bad_k(name, k):
    with pytest.raises(ValueError, match="Invalid value received for .*`k`"):
        ALL_OPS[name](np.zeros((2, 5), dtype="float32"), k)


def test_rejects_noise_of_another_shape():
    with pytest.raises(ValueError, match="argument `noise`"):
        gumbel_top_k(np.zeros((2, 5)), 2, noise=np.full((5, 2), 0.5))


def test_k_hot_top_k_keeps_the_largest_entries():
    x = np.array([[0.2, 1.5, -3.0, 0.7], [4.0, -1.0, 2.0, 3.0]], "float32")
    np.testing.assert_array_equal(
        to_numpy(k_hot_top_k(x, 2)), [[0, 1, 0, 1], [1, 0, 0, 1]]
    )
    np.testing.assert_array_equal(
        to_numpy(k_hot_top_k(x, 1, axis=0)), [[0, 1, 0, 0], [1, 0, 1, 1]]
    )


def test_k_hot_top_k_breaks_ties_towards_the_lowest_index(rng):
    # Few distinct values, so most slices tie at their k-th largest; the
    # reference is a stable sort of -x (lowest index first among equals).
    x = rng.integers(0, 4, size=(64, 9)).astype("float32")
    x[::5, :3] = -np.inf
    for k in (1, 3, 5):
        order = np.argsort(-x, axis=-1, kind="stable")[:, :k]
        expected = np.zeros_like(x)
        np.put_along_axis(expected, order, 1.0, axis=-1)
        np.testing.assert_array_equal(to_numpy(k_hot_top_k(x, k)), expected)


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="XLA's memory analysis"
)
def test_the_k_hot_takes_memory_independent_of_k():
    # The compiled k-hot's temporary bytes, over the input's: 3 for any k
    # (the k-th largest value, and masks), where one-hot rows of the top-k
    # indices took k times the input.
    import jax

    x = np.zeros((16, 20000), "float32")
    for k in (8, 64):
        compiled = jax.jit(lambda x, k=k: k_hot_top_k(x, k)).lower(x).compile()
        temp_bytes = compiled.memory_analysis().temp_size_in_bytes
        assert temp_bytes <= 4 * x.nbytes, (k, temp_bytes / x.nbytes)
