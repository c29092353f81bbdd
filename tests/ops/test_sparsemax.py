"""Tests for keras_latent.ops.sparsemax against Martins and Astudillo (2016)."""

import keras
import numpy as np
import pytest

from keras_latent import ops as latent_ops
from tests import references
from tests.ops import sparse_gradients


def sparsemax(x, axis=-1):
    return keras.ops.convert_to_numpy(latent_ops.sparsemax(x, axis=axis))


# One shape for the random inputs: eager JAX compiles each primitive once
# per shape, and that, not the math, dominates the run time.
SHAPE = (16, 8)


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_matches_the_sort_based_algorithm(rng, scale):
    x = (scale * rng.normal(size=SHAPE)).astype("float32")
    np.testing.assert_allclose(
        sparsemax(x), references.sparsemax(x), rtol=0, atol=1e-5
    )


def test_is_the_documented_projection():
    x = np.array([0.1, 0.2, 0.3, 0.4, 0.5], dtype="float32")
    expected = [0.0, 0.1, 0.2, 0.3, 0.4]
    np.testing.assert_allclose(sparsemax(x), expected, rtol=0, atol=1e-6)


def test_outputs_are_on_the_simplex_with_exact_zeros(rng):
    x = (3.0 * rng.normal(size=SHAPE)).astype("float32")
    p = sparsemax(x)
    assert p.min() >= 0.0
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-5)
    # Entries more than 1 below the slice maximum are exactly 0.
    far_below = x < x.max(axis=-1, keepdims=True) - 1.0
    assert far_below.any()
    assert np.all(p[far_below] == 0.0)


@pytest.mark.parametrize("constant", [-3.0, 0.5, 10.0])
def test_is_invariant_to_adding_a_constant(rng, constant):
    x = rng.normal(size=SHAPE).astype("float32")
    shifted = sparsemax(x + np.float32(constant))
    np.testing.assert_allclose(shifted, sparsemax(x), rtol=0, atol=1e-5)


def test_ties_share_the_mass_equally():
    x = np.array(
        [
            [1.0, 1.0, 1.0, 0.0],
            [2.0, 2.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [3.0, 1.0, 1.0, 1.0],
        ],
        dtype="float32",
    )
    expected = [
        [1 / 3, 1 / 3, 1 / 3, 0.0],
        [0.5, 0.5, 0.0, 0.0],
        [0.25, 0.25, 0.25, 0.25],
        [1.0, 0.0, 0.0, 0.0],
    ]
    np.testing.assert_allclose(sparsemax(x), expected, rtol=0, atol=1e-6)


def test_large_logits_are_exact():
    x = np.array(
        [
            [1e4, 1e4 - 0.5, 1e4 - 3.0, -1e4],
            [-1e4, -1e4 + 0.25, -1e4 - 2.0, -3e4],
            [1e4, 1e4, -1e4, 0.0],
            [5e3, 5e3 - 0.25, 5e3 - 0.5, 5e3 - 8.0],
        ],
        dtype="float32",
    )
    expected = [
        [0.75, 0.25, 0.0, 0.0],
        [0.375, 0.625, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0],
        [7 / 12, 4 / 12, 1 / 12, 0.0],
    ]
    np.testing.assert_allclose(sparsemax(x), expected, rtol=0, atol=1e-6)
    jacobian = sparse_gradients.jacobian(latent_ops.sparsemax, x)
    assert np.all(np.isfinite(jacobian))
    shifted = x - x.max(axis=-1, keepdims=True)
    np.testing.assert_allclose(
        jacobian,
        sparse_gradients.jacobian(latent_ops.sparsemax, shifted),
        rtol=0,
        atol=1e-6,
    )


MASKED = np.array(
    [
        [0.3, -np.inf, 1.0, 0.6],
        [-np.inf, 2.0, -np.inf, -np.inf],
        [-np.inf, -np.inf, 0.0, 0.1],
        [0.5, 0.4, 0.2, 0.1],
    ],
    dtype="float32",
)


def test_minus_inf_masks_get_exact_zeros_and_zero_gradients():
    p = sparsemax(MASKED)
    masked = ~np.isfinite(MASKED)
    assert np.all(p[masked] == 0.0)
    np.testing.assert_allclose(
        p, references.sparsemax(MASKED), rtol=0, atol=1e-6
    )
    jacobian = sparse_gradients.jacobian(latent_ops.sparsemax, MASKED)
    assert np.all(np.isfinite(jacobian))
    for row, kept in enumerate(~masked):
        block = jacobian[row, :, row]
        assert np.all(block[~kept] == 0.0)
        assert np.all(block[:, ~kept] == 0.0)
        s = (references.sparsemax(MASKED[row, kept]) > 0).astype("float64")
        expected = np.diag(s) - np.outer(s, s) / s.sum()
        np.testing.assert_allclose(
            block[np.ix_(kept, kept)], expected, rtol=0, atol=1e-6
        )


def test_a_fully_masked_slice_gives_zeros_without_nan():
    x = MASKED.copy()
    x[1] = -np.inf
    p = sparsemax(x)
    np.testing.assert_array_equal(p[1], np.zeros(4))
    np.testing.assert_allclose(
        np.delete(p, 1, axis=0),
        np.delete(references.sparsemax(MASKED), 1, axis=0),
        rtol=0,
        atol=1e-6,
    )
    jacobian = sparse_gradients.jacobian(latent_ops.sparsemax, x)
    assert np.all(np.isfinite(jacobian))
    assert np.all(jacobian[1] == 0.0)


@pytest.mark.parametrize("axis", [1, -2])
def test_rank_3_along_a_middle_axis(rng, axis):
    x = (2.0 * rng.normal(size=(2, 8, 16))).astype("float32")
    np.testing.assert_allclose(
        sparsemax(x, axis=axis),
        references.sparsemax(x, axis=1),
        rtol=0,
        atol=1e-5,
    )


def test_jacobian_matches_finite_differences_of_the_reference(rng):
    x = (1.5 * rng.normal(size=(2, 8))).astype("float32")
    expected = sparse_gradients.numeric_jacobian(references.sparsemax, x)
    jacobian = sparse_gradients.jacobian(latent_ops.sparsemax, x)
    np.testing.assert_allclose(jacobian, expected, rtol=0, atol=1e-5)


def test_jacobian_is_the_support_projection(rng):
    # Martins and Astudillo (2016), section 2.5: on the support S the
    # Jacobian is diag(s) - s s^T / |S|, with s the indicator of S. Rows do
    # not interact.
    x = rng.normal(size=(2, 8)).astype("float32")
    jacobian = sparse_gradients.jacobian(latent_ops.sparsemax, x)
    expected = np.zeros((2, 8, 2, 8))
    for row in range(2):
        s = (references.sparsemax(x[row]) > 0).astype("float64")
        assert 1 < s.sum() < len(s)
        expected[row, :, row] = np.diag(s) - np.outer(s, s) / s.sum()
    np.testing.assert_allclose(jacobian, expected, rtol=0, atol=1e-6)


def test_compiled_value_and_gradient_match_eager(rng):
    x = rng.normal(size=SHAPE).astype("float32")
    x[0, 2] = -np.inf
    cotangent = rng.normal(size=x.shape).astype("float32")
    eager = sparse_gradients.value_and_gradient(
        latent_ops.sparsemax, x, cotangent
    )
    compiled = sparse_gradients.value_and_gradient(
        latent_ops.sparsemax, x, cotangent, compiled=True
    )
    np.testing.assert_allclose(
        eager[0], references.sparsemax(x), rtol=0, atol=1e-5
    )
    for compiled_result, eager_result in zip(compiled, eager, strict=True):
        assert np.all(np.isfinite(compiled_result))
        np.testing.assert_allclose(
            compiled_result, eager_result, rtol=0, atol=1e-6
        )


def test_trains_inside_a_keras_model(rng):
    # model.fit compiles the train step (jax.jit, tf.function) by default.
    inputs = keras.Input(shape=(4,))
    dense = keras.layers.Dense(5, kernel_initializer="glorot_uniform")
    outputs = keras.layers.Lambda(latent_ops.sparsemax)(dense(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    features = rng.normal(size=(32, 4)).astype("float32")
    targets = np.eye(5, dtype="float32")[rng.integers(0, 5, size=32)]
    kernel_before = keras.ops.convert_to_numpy(dense.kernel).copy()
    history = model.fit(features, targets, batch_size=16, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    kernel = keras.ops.convert_to_numpy(dense.kernel)
    assert not np.allclose(kernel, kernel_before)
    logits = features @ kernel + keras.ops.convert_to_numpy(dense.bias)
    np.testing.assert_allclose(
        model.predict(features, verbose=0),
        references.sparsemax(logits),
        rtol=0,
        atol=1e-5,
    )


def test_builds_a_functional_model_from_symbolic_inputs(rng):
    inputs = keras.Input(shape=(8,))
    outputs = latent_ops.sparsemax(inputs)
    assert tuple(outputs.shape) == (None, 8)
    model = keras.Model(inputs, outputs)
    x = rng.normal(size=SHAPE).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), references.sparsemax(x), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_returns_the_input_dtype(rng, dtype):
    x = keras.ops.convert_to_tensor(rng.normal(size=SHAPE), dtype=dtype)
    p = latent_ops.sparsemax(x)
    assert keras.backend.standardize_dtype(p.dtype) == dtype
    x32 = keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(p, "float32")),
        references.sparsemax(x32),
        rtol=0,
        atol=1e-2,
    )


def test_integer_input_gives_float32():
    p = latent_ops.sparsemax(np.array([0, 1, 3, 0, 0], dtype="int32"))
    assert keras.backend.standardize_dtype(p.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(p), [0, 0, 1, 0, 0])


@pytest.mark.parametrize("axis", [1.0, "last", None, True])
def test_rejects_a_non_integer_axis(axis):
    with pytest.raises(
        ValueError, match="Invalid value received for argument `axis`"
    ):
        latent_ops.sparsemax(np.zeros((2, 3), "float32"), axis=axis)


def test_keras_sparsemax_gets_this_case_wrong_where_ours_does_not():
    # keras.ops.sparsemax (Keras 3.15.1, the same code on TensorFlow, JAX
    # and PyTorch) takes as threshold the sum of the cumulative sums over the
    # support, not the last one: here (0.5 + 0.9 + 1.2 + 1.4 - 1) / 4 = 0.75,
    # above every entry, so every output is 0. It is right only when the
    # support has one entry (last check).
    x = np.array([0.1, 0.2, 0.3, 0.4, 0.5], dtype="float32")
    expected = references.sparsemax(x)
    np.testing.assert_allclose(sparsemax(x), expected, rtol=0, atol=1e-6)
    keras_ops_value = keras.ops.convert_to_numpy(keras.ops.sparsemax(x))
    activation_value = keras.ops.convert_to_numpy(
        keras.activations.sparsemax(x)
    )
    np.testing.assert_array_equal(activation_value, keras_ops_value)
    assert not np.allclose(keras_ops_value, expected, atol=1e-3), (
        f"keras.ops.sparsemax is now right on this input under Keras "
        f"{keras.__version__}; update this test."
    )
    np.testing.assert_array_equal(keras_ops_value, np.zeros(5))
    one_entry_support = np.array([-1.0, 0.0, 1.0], dtype="float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.sparsemax(one_entry_support)),
        sparsemax(one_entry_support),
        rtol=0,
        atol=1e-6,
    )
