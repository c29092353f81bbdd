"""Exact enumeration: values against float64 NumPy, gradients against
central differences and the backend's automatic differentiation."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from keras_latent import diagnostics
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import central_differences
from tests.ops.gradients import gradient

TARGETS = np.array([0.45, 0.1, 0.3])


def quadratic(codes):
    """Tucker et al.'s toy loss, sum over variables of (z . 0..K-1 - t)^2."""
    num_categories = codes.shape[-1]
    values = ops.sum(codes * np.arange(num_categories, dtype="float32"), -1)
    return ops.sum((values - TARGETS[: codes.shape[1]]) ** 2, axis=-1)


def numpy_expectation(logits):
    """sum over the configurations of prod_n p_n[k_n] * quadratic, float64."""
    probabilities = references.softmax(logits)
    num_variables, num_categories = probabilities.shape
    total = 0.0
    for categories in itertools.product(
        range(num_categories), repeat=num_variables
    ):
        weight = np.prod(probabilities[np.arange(num_variables), categories])
        value = np.sum((np.array(categories) - TARGETS[:num_variables]) ** 2)
        total += weight * value
    return total


def test_configurations_are_every_one_hot_code_once():
    codes = to_numpy(diagnostics.one_hot_configurations(3, 4))
    assert codes.shape == (64, 3, 4)
    np.testing.assert_array_equal(codes.sum(-1), 1.0)
    categories = codes.argmax(-1)
    assert len({tuple(row) for row in categories}) == 64
    # Lexicographic, the first variable slowest: row 6 is 0, 1, 2 in base 4.
    np.testing.assert_array_equal(categories[6], [0, 1, 2])


@pytest.mark.parametrize("shape", [(2, 3), (3, 2), (1, 5)])
def test_expectation_matches_float64_enumeration(rng, shape):
    logits = rng.normal(size=shape).astype("float32")
    value = diagnostics.exact_expectation(quadratic, logits)
    np.testing.assert_allclose(
        to_numpy(value), numpy_expectation(logits), rtol=1e-5
    )


@pytest.mark.parametrize("shape", [(2, 3), (3, 2)])
def test_gradient_matches_central_differences(rng, shape):
    logits = rng.normal(size=shape).astype("float32")
    result = diagnostics.exact_gradient(quadratic, logits)
    reference = central_differences(numpy_expectation, logits)
    np.testing.assert_allclose(to_numpy(result), reference, atol=2e-5)


def test_gradient_matches_automatic_differentiation_of_the_expectation(rng):
    logits = rng.normal(size=(2, 4)).astype("float32")
    automatic = gradient(
        lambda x: diagnostics.exact_expectation(quadratic, x), logits
    )
    result = diagnostics.exact_gradient(quadratic, logits)
    np.testing.assert_allclose(to_numpy(result), automatic, atol=2e-5)


def test_batched_logits_give_one_expectation_per_batch_entry(rng):
    logits = rng.normal(size=(4, 2, 3)).astype("float32")
    scales = np.arange(1.0, 5.0, dtype="float32")

    def scaled(codes):
        return ops.expand_dims(quadratic(codes), -1) * scales

    values = diagnostics.exact_expectation(scaled, logits)
    gradients = diagnostics.exact_gradient(scaled, logits)
    for index in range(4):
        np.testing.assert_allclose(
            to_numpy(values)[index],
            scales[index] * numpy_expectation(logits[index]),
            rtol=1e-5,
        )
        np.testing.assert_allclose(
            to_numpy(gradients)[index],
            scales[index]
            * central_differences(numpy_expectation, logits[index]),
            atol=5e-5,
        )


def log_of_zero_on_the_masked_category(codes):
    """`quadratic`, plus the log of 0 (-inf) on every configuration that
    uses category 2, and 0 elsewhere."""
    uses_masked = ops.sum(codes[:, :, 2], axis=-1)
    return ops.log(1.0 - uses_masked) + quadratic(codes)


@pytest.mark.parametrize(
    "fn",
    [quadratic, log_of_zero_on_the_masked_category],
    ids=lambda f: f.__name__,
)
def test_masked_category_is_left_out_of_value_and_gradient(fn, rng):
    """A `-inf` logit gives the configurations that use it probability 0:
    the expectation and gradient are those over the other categories, also
    where `fn` is infinite on them (not NaN from 0 * inf)."""
    logits = rng.normal(size=(2, 3)).astype("float32")
    masked = logits.copy()
    masked[:, 2] = -np.inf

    value = diagnostics.exact_expectation(fn, masked)
    result = to_numpy(diagnostics.exact_gradient(fn, masked))
    np.testing.assert_allclose(
        to_numpy(value), numpy_expectation(logits[:, :2]), rtol=1e-5
    )
    np.testing.assert_allclose(
        result[:, :2],
        central_differences(numpy_expectation, logits[:, :2]),
        atol=2e-5,
    )
    np.testing.assert_array_equal(result[:, 2], 0.0)


def test_nan_logits_beside_a_masked_category_give_nan(rng):
    masked = rng.normal(size=(2, 3)).astype("float32")
    masked[:, 2] = -np.inf
    masked[0, 0] = np.nan
    assert np.isnan(to_numpy(diagnostics.exact_expectation(quadratic, masked)))
    assert np.all(
        np.isnan(to_numpy(diagnostics.exact_gradient(quadratic, masked)))
    )


def test_too_many_configurations_are_refused():
    with pytest.raises(ValueError, match="Invalid value received for arg"):
        diagnostics.exact_expectation(quadratic, np.zeros((5, 64)))
    with pytest.raises(ValueError, match="1000 configurations"):
        diagnostics.exact_gradient(
            quadratic, np.zeros((3, 10)), max_configurations=999
        )


def test_a_function_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="fn"):
        diagnostics.exact_expectation(
            lambda codes: codes[:, 0], keras.ops.zeros((2, 3))
        )


def test_logits_without_a_variable_axis_are_refused():
    with pytest.raises(ValueError, match="logits"):
        diagnostics.exact_expectation(quadratic, np.zeros((3,)))
