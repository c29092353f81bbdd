"""Tests for keras_latent.ops.grouped_normalize against NumPy references.

The references are the float64 ones of `tests/references.py`: softmax by
its definition, sparsemax by the sort-based threshold of Martins and
Astudillo (2016, Alg. 1), and 1.5-entmax by root finding for the threshold
`tau` of `sum_i max(z_i / 2 - tau, 0) ** 2 = 1` (a different algorithm from
the sort-based one of the op). Gradients are checked against central finite
differences of those references.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_latent import ops as latent_ops
from tests import references
from tests.ops.gradients import gradient

NORMALIZERS = ("softmax", "sparsemax", "entmax15")
TEMPERATURES = (0.5, 1.0, 2.0)
# Divisible by 1, 2 and 16: groups of 48, 24 and 3 entries.
UNITS = 48


def grouped_normalize(x, **kwargs):
    outputs = latent_ops.grouped_normalize(ops.convert_to_tensor(x), **kwargs)
    return ops.convert_to_numpy(ops.cast(outputs, "float32"))


# Eager JAX compiles every primitive once per shape, and that, not the
# math, sets the run time; so the tests share three grouped shapes: SHAPE
# in 1 or 16 groups, and a rank-3 input in 2 groups.
SHAPE = (6, UNITS)


@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize(
    "shape, groups",
    [(SHAPE, 1), (SHAPE, 16), ((2, 3, UNITS), 2)],
)
def test_matches_numpy_reference_per_group(rng, normalizer, shape, groups):
    x = (2.0 * rng.normal(size=shape)).astype("float32")
    for temperature in TEMPERATURES:
        p = grouped_normalize(
            x, groups=groups, normalizer=normalizer, temperature=temperature
        )
        expected = references.grouped(x, groups, normalizer, temperature)
        assert p.shape == shape
        np.testing.assert_allclose(p, expected, rtol=0, atol=2e-6)
        assert p.min() >= 0.0
        np.testing.assert_allclose(
            references.group_sums(p, groups), 1.0, rtol=0, atol=1e-5
        )


def test_groups_are_normalized_independently(rng):
    # Changing one group's logits leaves every other group unchanged.
    x = rng.normal(size=SHAPE).astype("float32")
    changed = x.copy()
    changed[:, 9:12] += 5.0 * rng.normal(size=(6, 3)).astype("float32")
    for normalizer in NORMALIZERS:
        before = grouped_normalize(x, groups=16, normalizer=normalizer)
        after = grouped_normalize(changed, groups=16, normalizer=normalizer)
        np.testing.assert_array_equal(before[:, :9], after[:, :9])
        np.testing.assert_array_equal(before[:, 12:], after[:, 12:])
        assert not np.array_equal(before[:, 9:12], after[:, 9:12])


@pytest.mark.parametrize("normalizer", ["sparsemax", "entmax15"])
def test_sparse_normalizers_give_exact_zeros(rng, normalizer):
    x = (4.0 * rng.normal(size=SHAPE)).astype("float32")
    p = grouped_normalize(x, groups=16, normalizer=normalizer, temperature=0.5)
    expected = references.grouped(x, 16, normalizer, 0.5)
    assert np.sum(expected == 0.0) > UNITS
    # Zeros exactly where the reference has them, and nowhere else.
    np.testing.assert_array_equal(p == 0.0, expected == 0.0)


def test_softmax_has_no_zeros(rng):
    x = rng.normal(size=SHAPE).astype("float32")
    assert grouped_normalize(x, groups=16, normalizer="softmax").min() > 0.0


def test_lower_temperature_concentrates_each_group(rng):
    x = rng.normal(size=SHAPE).astype("float32")
    for normalizer in NORMALIZERS:
        hot = grouped_normalize(x, groups=16, normalizer=normalizer)
        cold = grouped_normalize(
            x, groups=16, normalizer=normalizer, temperature=0.1
        )
        hot_max = hot.reshape(6, 16, -1).max(axis=-1)
        cold_max = cold.reshape(6, 16, -1).max(axis=-1)
        assert np.all(cold_max >= hot_max - 1e-6)


def test_temperature_may_be_a_scalar_tensor(rng):
    x = rng.normal(size=SHAPE).astype("float32")
    temperature = ops.convert_to_tensor(0.5, "float32")
    p = grouped_normalize(x, groups=16, temperature=temperature)
    expected = references.grouped(x, 16, "softmax", 0.5)
    np.testing.assert_allclose(p, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("normalizer", [*NORMALIZERS, "entmax"])
def test_a_temperature_that_overflows_the_logits_gives_the_argmax(normalizer):
    # 50 / 1e-37 is inf in float32; each group is shifted by its maximum
    # first, so that the scaled logits are 0 and large negative numbers.
    x = np.array([[50.0, 49.0, -3.0, 2.0], [7.0, -np.inf, 1e30, 0.0]])
    p = grouped_normalize(
        x.astype("float32"), groups=2, normalizer=normalizer, temperature=1e-37
    )
    expected = [[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]]
    np.testing.assert_array_equal(p, expected)


# The largest relative error of rounding a float32 value to the dtype.
UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("normalizer", NORMALIZERS)
def test_half_precision_inputs_keep_their_dtype(rng, dtype, normalizer):
    x = ops.cast(rng.normal(size=SHAPE).astype("float32"), dtype)
    outputs = latent_ops.grouped_normalize(x, groups=16, normalizer=normalizer)
    assert keras.backend.standardize_dtype(outputs.dtype) == dtype
    p = ops.convert_to_numpy(ops.cast(outputs, "float32")).astype("float64")
    x_rounded = ops.convert_to_numpy(ops.cast(x, "float32"))
    expected = references.grouped(x_rounded, 16, normalizer, 1.0)
    # The float32 result, rounded once to the half dtype: each entry is off
    # by at most one unit roundoff, relatively, and so is each group's sum.
    roundoff = UNIT_ROUNDOFF[dtype]
    np.testing.assert_allclose(p, expected, rtol=roundoff, atol=1e-6)
    np.testing.assert_allclose(
        references.group_sums(p, 16), 1.0, rtol=0, atol=roundoff + 1e-6
    )


def central_differences(fn, x, groups, weights, step):
    """d/dx of sum(weights * fn(x)) by central differences, in float64.

    Each group's outputs depend on that group's inputs only, so entry `j`
    of every group is stepped at once and the weighted change is summed
    within each group.
    """
    x = np.asarray(x, dtype="float64")
    grouped_shape = (*x.shape[:-1], groups, x.shape[-1] // groups)
    result = np.zeros(grouped_shape)
    for j in range(grouped_shape[-1]):
        bump = np.zeros(grouped_shape)
        bump[..., j] = step
        bump = bump.reshape(x.shape)
        difference = weights * (fn(x + bump) - fn(x - bump))
        result[..., j] = difference.reshape(grouped_shape).sum(axis=-1)
    return result.reshape(x.shape) / (2.0 * step)


@pytest.mark.parametrize("normalizer", NORMALIZERS)
def test_gradient_matches_finite_differences(rng, normalizer):
    groups, temperature = 16, 0.5
    x = rng.normal(size=SHAPE).astype("float32")
    weights = rng.normal(size=SHAPE).astype("float32")

    def weighted(value):
        p = latent_ops.grouped_normalize(
            value, groups=groups, normalizer=normalizer, temperature=temperature
        )
        return p * ops.convert_to_tensor(weights)

    def reference(value):
        return references.grouped(value, groups, normalizer, temperature)

    expected = central_differences(reference, x, groups, weights, 1e-5)
    # No entry sits on a kink of the sparse maps: a smaller step agrees.
    np.testing.assert_allclose(
        central_differences(reference, x, groups, weights, 1e-6),
        expected,
        rtol=0,
        atol=1e-5,
    )
    result = gradient(weighted, x)
    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-4)
    if normalizer != "softmax":
        # Entries outside the support get exactly zero gradient.
        outside = reference(x) == 0.0
        assert outside.any()
        np.testing.assert_array_equal(result[outside], 0.0)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"groups": 5}, "groups"),
        ({"groups": 0}, "groups"),
        ({"normalizer": "relu"}, "normalizer"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"alpha": 1.5}, "alpha"),
        ({"normalizer": "sparsemax", "alpha": 2.0}, "alpha"),
        ({"normalizer": "entmax", "alpha": 0.5}, "alpha"),
        ({"normalizer": "entmax", "alpha": "learned"}, "alpha"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, argument):
    x = np.zeros((2, 12), dtype="float32")
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        latent_ops.grouped_normalize(x, **kwargs)


def test_entmax_normalizes_each_group_at_its_alpha(rng):
    # SHAPE in 16 groups of 3; alpha: a float, or one per group, through
    # which the gradient reaches each group's alpha.
    x = (2.0 * rng.normal(size=SHAPE)).astype("float32")
    temperature = 0.5
    p = grouped_normalize(
        x, groups=16, normalizer="entmax", alpha=2.0, temperature=temperature
    )
    expected = references.grouped(x, 16, "sparsemax", temperature)
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-6)
    p = grouped_normalize(x, groups=16, normalizer="entmax")
    expected = references.grouped(x, 16, "entmax15", 1.0)
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-6)
    alphas = np.linspace(1.0, 3.0, 16).astype("float32")
    p = grouped_normalize(x, groups=16, normalizer="entmax", alpha=alphas)
    groups = x.reshape(SHAPE[0], 16, -1)
    for group, alpha in enumerate(alphas):
        np.testing.assert_allclose(
            p.reshape(SHAPE[0], 16, -1)[:, group],
            references.entmax(groups[:, group], float(alpha)),
            rtol=0,
            atol=1e-6,
        )
