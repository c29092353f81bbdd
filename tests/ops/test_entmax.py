"""Tests for keras_latent.ops.entmax15 and entmax_bisect (Peters et al. 2019).

References: Alg. 2 of the paper for 1.5-entmax, written here, and for any
alpha a root of sum_i max((alpha - 1) z_i - tau, 0) ** (1 / (alpha - 1)) = 1
found by `scipy.optimize.brentq` (`tests.references.entmax`), both in
float64.
"""

import keras
import numpy as np
import pytest

from keras_latent import ops as latent_ops
from tests import references
from tests.ops import sparse_gradients


def entmax15_reference(z):
    """Alg. 2 of Peters et al. (2019) on one vector, in float64.

    1.5-entmax(z) = max(z / 2 - tau, 0) ** 2. With x = z / 2 sorted
    descending, for rho = 1, 2, ...: M = mean(x_1..x_rho), S = the sum of
    squared deviations from M, tau = M - sqrt((1 - S) / rho); stop at the
    first rho with x_(rho + 1) <= tau <= x_rho. Entries of -inf get 0.
    """
    z = np.asarray(z, dtype="float64")
    x_sorted = np.sort(z[np.isfinite(z)] / 2.0)[::-1]
    size = len(x_sorted)
    for rho in range(1, size + 1):
        top = x_sorted[:rho]
        mean = top.mean()
        squares = np.sum((top - mean) ** 2)
        if squares > 1.0:
            continue
        threshold = mean - np.sqrt((1.0 - squares) / rho)
        next_value = x_sorted[rho] if rho < size else -np.inf
        if next_value <= threshold <= x_sorted[rho - 1]:
            break
    else:
        raise AssertionError(f"Alg. 2 found no threshold for {z}")
    return np.maximum(z / 2.0 - threshold, 0.0) ** 2


def entmax15_along(x, axis=-1):
    return np.apply_along_axis(entmax15_reference, axis, x)


def entmax15(x, axis=-1):
    return keras.ops.convert_to_numpy(latent_ops.entmax15(x, axis=axis))


def entmax_bisect(x, alpha=1.5, axis=-1, n_iter=50):
    p = latent_ops.entmax_bisect(x, alpha=alpha, axis=axis, n_iter=n_iter)
    return keras.ops.convert_to_numpy(p)


# One shape for the random inputs: eager JAX compiles each primitive once
# per shape, and that, not the math, dominates the run time.
SHAPE = (16, 8)
ALPHAS = [1.0, 1.25, 1.5, 2.0, 3.0]


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_entmax15_matches_the_sort_based_algorithm(rng, scale):
    x = (scale * rng.normal(size=SHAPE)).astype("float32")
    expected = entmax15_along(x)
    np.testing.assert_allclose(entmax15(x), expected, rtol=0, atol=1e-5)
    # The two references agree with each other.
    np.testing.assert_allclose(
        references.entmax(x, 1.5), expected, rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("alpha", [1.001, 1.1, 2.9, *ALPHAS])
def test_entmax_bisect_matches_root_finding(rng, alpha):
    x = (2.0 * rng.normal(size=SHAPE)).astype("float32")
    np.testing.assert_allclose(
        entmax_bisect(x, alpha), references.entmax(x, alpha), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("alpha", [1.001, 1.5, 2.5, 2.9, 3.0, 3.5])
def test_entmax_bisect_matches_the_entmax_package_to_1e_6(rng, alpha):
    """The documented accuracy: 1e-6 against the `entmax` package's float64
    bisection on the same float32 input, for alpha up to 3.5. 2,000 rows put
    entries just inside the support, where for alpha > 2 a float32
    threshold alone errs by 1e-4."""
    entmax = pytest.importorskip("entmax")
    torch = pytest.importorskip("torch")
    x = rng.normal(size=(2000, 12)).astype("float32")
    expected = entmax.entmax_bisect(
        torch.tensor(x, dtype=torch.float64), alpha=alpha, n_iter=200
    ).numpy()
    np.testing.assert_allclose(
        entmax_bisect(x, alpha), expected, rtol=0, atol=1e-6
    )


def test_entmax_bisect_is_softmax_sparsemax_and_entmax15(rng):
    x = (2.0 * rng.normal(size=SHAPE)).astype("float32")
    softmax = keras.ops.convert_to_numpy(keras.ops.softmax(x, axis=-1))
    np.testing.assert_allclose(entmax_bisect(x, 1), softmax, atol=1e-7)
    sparsemax = keras.ops.convert_to_numpy(latent_ops.sparsemax(x))
    np.testing.assert_allclose(entmax_bisect(x, 2), sparsemax, atol=1e-6)
    np.testing.assert_allclose(entmax_bisect(x, 1.5), entmax15(x), atol=1e-6)


def test_entmax_bisect_approaches_softmax_as_alpha_goes_to_1(rng):
    x = (2.0 * rng.normal(size=SHAPE)).astype("float32")
    softmax = references.entmax(x, 1.0)
    np.testing.assert_allclose(entmax_bisect(x, 1 + 1e-6), softmax, atol=1e-5)


@pytest.mark.parametrize("alpha", [1.5, 10.0])
def test_entmax_bisect_sums_to_one_after_few_iterations(rng, alpha):
    x = (2.0 * rng.normal(size=SHAPE)).astype("float32")
    for n_iter in (1, 5):
        p = entmax_bisect(x, alpha, n_iter=n_iter)
        assert p.min() >= 0.0
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-6)


def test_entmax15_outputs_are_on_the_simplex_with_exact_zeros(rng):
    x = (4.0 * rng.normal(size=SHAPE)).astype("float32")
    p = entmax15(x)
    assert p.min() >= 0.0
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-5)
    # max(z / 2 - tau, 0) with tau >= max(z) / 2 - 1: entries more than 2
    # below the maximum are exactly 0.
    far_below = x < x.max(axis=-1, keepdims=True) - 2.0
    assert far_below.any()
    assert np.all(p[far_below] == 0.0)


@pytest.mark.parametrize(
    "normalizer",
    [entmax15, lambda x: entmax_bisect(x, 1.0), lambda x: entmax_bisect(x, 3)],
    ids=["entmax15", "alpha_1", "alpha_3"],
)
def test_is_invariant_to_adding_a_constant(rng, normalizer):
    x = rng.normal(size=SHAPE).astype("float32")
    for constant in (-3.0, 10.0):
        np.testing.assert_allclose(
            normalizer(x + np.float32(constant)),
            normalizer(x),
            rtol=0,
            atol=1e-5,
        )


def test_ties_share_the_mass_equally():
    x = np.array(
        [
            [1.0, 1.0, 1.0, -5.0],
            [2.0, 2.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [3.0, 0.0, 0.0, 0.0],
        ],
        dtype="float32",
    )
    expected = [
        [1 / 3, 1 / 3, 1 / 3, 0.0],
        [0.5, 0.5, 0.0, 0.0],
        [0.25, 0.25, 0.25, 0.25],
        [1.0, 0.0, 0.0, 0.0],
    ]
    np.testing.assert_allclose(entmax15(x), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(entmax_bisect(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_large_logits_are_exact(alpha):
    x = np.array(
        [
            [1e4, 1e4 - 1.0, 1e4 - 5.0, -1e4],
            [-1e4, -1e4 + 0.5, -1e4 - 2.0, -3e4],
            [1e4, 1e4, -1e4, 0.0],
            [5e3, 5e3 - 0.25, 5e3 - 1.0, 5e3 - 8.0],
        ],
        dtype="float32",
    )
    expected = references.entmax(x, alpha)
    np.testing.assert_allclose(
        entmax_bisect(x, alpha), expected, rtol=0, atol=1e-6
    )
    if alpha == 1.5:
        np.testing.assert_allclose(entmax15(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("alpha", [1.5, 3.0, 100.0])
def test_logits_near_the_float32_limit_are_exact(alpha):
    """Finite logits up to 3e38 in size give the entmax of their
    differences: the gradient term, exactly zero forward, multiplies the
    logits by weights up to 1e26 and so must see them shifted, or its
    inf - inf makes the value NaN."""
    x = np.array(
        [[3e38, 3e38, 0.0], [-3e38, -3e38, -3e38], [1e30, 1e30, 0.0]],
        dtype="float32",
    )
    expected = [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]]
    np.testing.assert_allclose(
        entmax_bisect(x, alpha), expected, rtol=0, atol=1e-6
    )
    per_row = keras.ops.full((3, 1), alpha)
    np.testing.assert_allclose(
        entmax_bisect(x, per_row), expected, rtol=0, atol=1e-6
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


def closed_form_jacobian(p, alpha):
    """The Jacobian of alpha-entmax at output `p` (Peters et al., 2019).

    diag(g) - g g^T / sum(g), with g = p ** (2 - alpha) on the support and 0
    off it.
    """
    support = p > 0
    g = np.zeros_like(p)
    g[support] = p[support] ** (2.0 - alpha)
    return np.diag(g) - np.outer(g, g) / g.sum()


def normalizer(name):
    if name == "entmax15":
        return latent_ops.entmax15, 1.5
    return lambda x: latent_ops.entmax_bisect(x, alpha=name), name


@pytest.mark.parametrize("name", ["entmax15", 1.0, 1.25, 3.0])
def test_minus_inf_masks_get_exact_zeros_and_zero_gradients(name):
    function, alpha = normalizer(name)
    p = keras.ops.convert_to_numpy(function(MASKED))
    masked = ~np.isfinite(MASKED)
    assert np.all(p[masked] == 0.0)
    np.testing.assert_allclose(
        p, references.entmax(MASKED, alpha), rtol=0, atol=1e-6
    )
    jacobian = sparse_gradients.jacobian(function, MASKED)
    assert np.all(np.isfinite(jacobian))
    for row, kept in enumerate(~masked):
        block = jacobian[row, :, row]
        assert np.all(block[~kept] == 0.0)
        assert np.all(block[:, ~kept] == 0.0)
        expected = closed_form_jacobian(
            references.entmax(MASKED[row, kept], alpha), alpha
        )
        np.testing.assert_allclose(
            block[np.ix_(kept, kept)], expected, rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("name", ["entmax15", 1.0, 1.25, 10.0])
def test_a_fully_masked_slice_gives_zeros_without_nan(name):
    function, alpha = normalizer(name)
    x = MASKED.copy()
    x[1] = -np.inf
    p = keras.ops.convert_to_numpy(function(x))
    np.testing.assert_array_equal(p[1], np.zeros(4))
    np.testing.assert_allclose(
        np.delete(p, 1, axis=0).sum(axis=-1), 1.0, rtol=0, atol=1e-6
    )
    jacobian = sparse_gradients.jacobian(function, x)
    assert np.all(np.isfinite(jacobian))
    assert np.all(jacobian[1] == 0.0)


@pytest.mark.parametrize("axis", [1, -2])
def test_rank_3_along_a_middle_axis(rng, axis):
    x = (2.0 * rng.normal(size=(2, 8, 16))).astype("float32")
    np.testing.assert_allclose(
        entmax15(x, axis=axis), entmax15_along(x, axis=1), rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        entmax_bisect(x, 1.25, axis=axis),
        references.entmax(x, 1.25, axis=1),
        rtol=0,
        atol=1e-5,
    )


def test_entmax15_jacobian_matches_finite_differences_of_alg_2(rng):
    x = (1.5 * rng.normal(size=(2, 8))).astype("float32")
    expected = sparse_gradients.numeric_jacobian(entmax15_along, x)
    jacobian = sparse_gradients.jacobian(latent_ops.entmax15, x)
    np.testing.assert_allclose(jacobian, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_entmax_bisect_jacobian_matches_finite_differences(rng, alpha):
    x = (1.5 * rng.normal(size=(2, 8))).astype("float32")
    expected = sparse_gradients.numeric_jacobian(
        lambda z: references.entmax(z, alpha), x
    )
    jacobian = sparse_gradients.jacobian(
        lambda z: latent_ops.entmax_bisect(z, alpha=alpha), x
    )
    np.testing.assert_allclose(jacobian, expected, rtol=1e-4, atol=1e-5)


def test_entmax15_jacobian_is_the_closed_form(rng):
    # For alpha = 1.5, g = sqrt(p). Rows do not interact.
    x = (1.5 * rng.normal(size=(2, 8))).astype("float32")
    jacobian = sparse_gradients.jacobian(latent_ops.entmax15, x)
    expected = np.zeros((2, 8, 2, 8))
    for row in range(2):
        p = entmax15_reference(x[row])
        assert 1 < np.count_nonzero(p) < len(p)
        g = np.sqrt(p)
        expected[row, :, row] = np.diag(g) - np.outer(g, g) / g.sum()
    np.testing.assert_allclose(jacobian, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "function, alpha",
    [
        (latent_ops.entmax15, 1.5),
        (lambda x: latent_ops.entmax_bisect(x, alpha=1.0), 1.0),
        (lambda x: latent_ops.entmax_bisect(x, alpha=1.3, n_iter=6), 1.3),
    ],
    ids=["entmax15", "alpha_1", "alpha_1.3"],
)
def test_compiled_value_and_gradient_match_eager(rng, function, alpha):
    x = rng.normal(size=SHAPE).astype("float32")
    x[0, 2] = -np.inf
    cotangent = rng.normal(size=x.shape).astype("float32")
    eager = sparse_gradients.value_and_gradient(function, x, cotangent)
    compiled = sparse_gradients.value_and_gradient(
        function, x, cotangent, compiled=True
    )
    np.testing.assert_allclose(
        eager[0], references.entmax(x, alpha), rtol=0, atol=1e-5
    )
    for compiled_result, eager_result in zip(compiled, eager, strict=True):
        assert np.all(np.isfinite(compiled_result))
        np.testing.assert_allclose(
            compiled_result, eager_result, rtol=0, atol=1e-6
        )


def test_entmax_bisect_trains_inside_a_keras_model(rng):
    # model.fit compiles the train step (jax.jit, tf.function) by default,
    # bisection loop included.
    alpha = 1.3

    def function(x):
        return latent_ops.entmax_bisect(x, alpha=alpha)

    inputs = keras.Input(shape=(4,))
    dense = keras.layers.Dense(5)
    outputs = keras.layers.Lambda(function)(dense(inputs))
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
        references.entmax(logits, alpha),
        rtol=0,
        atol=1e-5,
    )


@pytest.mark.parametrize("name", ["entmax15", 1.0, 1.3])
def test_builds_a_functional_model_from_symbolic_inputs(rng, name):
    function, alpha = normalizer(name)
    inputs = keras.Input(shape=(8,))
    outputs = function(inputs)
    assert tuple(outputs.shape) == (None, 8)
    model = keras.Model(inputs, outputs)
    x = (2.0 * rng.normal(size=SHAPE)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0),
        references.entmax(x, alpha),
        rtol=0,
        atol=1e-5,
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_returns_the_input_dtype(rng, dtype):
    x = keras.ops.convert_to_tensor(rng.normal(size=SHAPE), dtype=dtype)
    x32 = keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))
    for function, alpha in [
        (latent_ops.entmax15, 1.5),
        (lambda x: latent_ops.entmax_bisect(x, alpha=1.25), 1.25),
    ]:
        p = function(x)
        assert keras.backend.standardize_dtype(p.dtype) == dtype
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(keras.ops.cast(p, "float32")),
            references.entmax(x32, alpha),
            rtol=0,
            atol=1e-2,
        )


@pytest.mark.parametrize(
    "alpha", [0.5, 0.999, -1.0, float("inf"), float("nan"), "1.5", True, None]
)
def test_entmax_bisect_rejects_an_invalid_alpha(alpha):
    with pytest.raises(
        ValueError,
        match=r"Invalid value received for argument `alpha`\. Expected a "
        r"finite float value >= 1\. Received: alpha=",
    ):
        latent_ops.entmax_bisect(np.zeros(3, "float32"), alpha=alpha)


@pytest.mark.parametrize("n_iter", [0, -3, 2.5, True, "50"])
def test_entmax_bisect_rejects_an_invalid_n_iter(n_iter):
    with pytest.raises(
        ValueError,
        match=r"Invalid value received for argument `n_iter`\. Expected an "
        r"integer >= 1\. Received: n_iter=",
    ):
        latent_ops.entmax_bisect(np.zeros(3, "float32"), n_iter=n_iter)


@pytest.mark.parametrize(
    "function", [latent_ops.entmax15, latent_ops.entmax_bisect]
)
def test_rejects_a_non_integer_axis(function):
    with pytest.raises(
        ValueError, match="Invalid value received for argument `axis`"
    ):
        function(np.zeros((2, 3), "float32"), axis=1.0)
