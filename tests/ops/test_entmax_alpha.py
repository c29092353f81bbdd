"""Tests for keras_latent.ops.entmax_bisect with a tensor alpha.

One alpha per slice, and the gradient with respect to it (Correia et al.
2019, Prop. 1). References: `tests.references.entmax`, alpha-entmax by
float64 root finding, with central finite differences in alpha; and the
`entmax` package's `entmax_bisect` (PyTorch, float64), whose autograd gives
its own closed-form alpha gradient, where it is installed.
"""

import numpy as np
import pytest
from keras import ops

from keras_latent import ops as latent_ops
from tests import references
from tests.ops.gradients import gradient

# Every input is laid out as rows of this shape: eager JAX compiles each
# primitive once per shape, and that, not the math, sets the run time.
SHAPE = (6, 8)
ALPHAS = np.array([[1.05], [1.25], [1.5], [2.0], [2.5], [3.0]], "float32")


def entmax_per_row(x, alphas):
    """The float64 reference, one alpha per row of a matrix."""
    return np.stack(
        [
            references.entmax(row, float(alpha))
            for row, alpha in zip(x, alphas, strict=True)
        ]
    )


def alpha_gradient(x, alphas, cotangent):
    """d sum(cotangent * entmax_bisect(x, alphas)) / d alphas."""
    cotangent = ops.convert_to_tensor(cotangent, "float32")
    return gradient(
        lambda alpha: latent_ops.entmax_bisect(x, alpha) * cotangent, alphas
    )


def reference_alpha_gradient(x, alphas, cotangent, step=1e-6):
    """Central differences in alpha of the float64 reference, row by row."""
    result = []
    for row, alpha, weights in zip(x, alphas[:, 0], cotangent, strict=True):

        def loss(value, row=row, weights=weights):
            return np.sum(weights * references.entmax(row, value))

        alpha = float(alpha)
        result.append((loss(alpha + step) - loss(alpha - step)) / (2 * step))
    return np.array(result)[:, None]


@pytest.fixture
def logits(rng):
    # Scaled so that every row keeps several entries in its support and
    # drops others, at every alpha of ALPHAS.
    return (0.8 * rng.normal(size=SHAPE)).astype("float32")


def test_one_alpha_per_row_matches_the_reference(logits):
    p = ops.convert_to_numpy(latent_ops.entmax_bisect(logits, ALPHAS))
    np.testing.assert_allclose(
        p, entmax_per_row(logits, ALPHAS[:, 0]), rtol=0, atol=1e-6
    )


def test_alpha_per_group_broadcasts_over_the_batch(rng):
    # x: (batch, groups, categories); alpha: (groups, 1), one per group.
    x = (1.5 * rng.normal(size=(3, 2, 8))).astype("float32")
    alphas = np.array([[1.2], [2.5]], "float32")
    p = ops.convert_to_numpy(latent_ops.entmax_bisect(x, alphas))
    for group, alpha in enumerate(alphas[:, 0]):
        expected = references.entmax(x[:, group], float(alpha))
        np.testing.assert_allclose(p[:, group], expected, rtol=0, atol=1e-6)


def test_alpha_along_a_middle_axis(rng):
    # x: (batch, categories, heads), normalized along axis 1.
    x = (1.5 * rng.normal(size=(2, 8, 3))).astype("float32")
    alphas = np.array([[[1.1, 1.5, 2.2]]], "float32")
    p = ops.convert_to_numpy(latent_ops.entmax_bisect(x, alphas, axis=1))
    for head, alpha in enumerate(alphas[0, 0]):
        expected = references.entmax(x[:, :, head], float(alpha))
        np.testing.assert_allclose(p[:, :, head], expected, atol=1e-6)


def test_alpha_gradient_matches_finite_differences(rng, logits):
    cotangent = rng.normal(size=SHAPE)
    result = alpha_gradient(logits, ALPHAS, cotangent)
    expected = reference_alpha_gradient(logits, ALPHAS, cotangent)
    assert np.all(np.abs(expected) > 1e-3)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-6)


def test_alpha_gradient_stays_exact_near_1(rng, logits):
    # (p - p~) / (alpha - 1) ** 2 and (p log p - p~ H) / (alpha - 1) both
    # grow like 1 / (alpha - 1) and cancel: computed as written in float32
    # they would err by about 1e-7 / (alpha - 1) ** 2, 1e-1 here.
    alphas = np.full((SHAPE[0], 1), 1.001, "float32")
    cotangent = rng.normal(size=SHAPE)
    result = alpha_gradient(logits, alphas, cotangent)
    expected = reference_alpha_gradient(logits, alphas, cotangent, step=1e-5)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-4)


def test_alpha_1_is_the_softmax_with_the_limit_gradient(rng, logits):
    ones = np.ones((SHAPE[0], 1), "float32")
    p = ops.convert_to_numpy(latent_ops.entmax_bisect(logits, ones))
    np.testing.assert_allclose(p, references.softmax(logits), rtol=0, atol=1e-7)
    # The derivative at 1 is the limit from above: one-sided differences
    # of the reference, extrapolated to step 0 (Richardson); they converge
    # only like the step, as if p had a term in e log e, and the reference
    # loses digits below 1e-5, whose error is then a few 1e-6.
    cotangent = rng.normal(size=SHAPE)
    step = 1e-5

    def loss(row, alpha):
        return np.sum(cotangent[row] * references.entmax(logits[row], alpha))

    expected = [
        (
            4 * (loss(row, 1 + step) - loss(row, 1.0)) / step
            - (loss(row, 1 + 2 * step) - loss(row, 1.0)) / (2 * step)
        )
        / 3
        for row in range(SHAPE[0])
    ]
    result = alpha_gradient(logits, ones, cotangent)
    np.testing.assert_allclose(result[:, 0], expected, rtol=0, atol=1e-5)


def test_matches_the_entmax_package_with_alpha_requiring_grad(rng, logits):
    entmax = pytest.importorskip("entmax")
    torch = pytest.importorskip("torch")
    cotangent = rng.normal(size=SHAPE)
    x64 = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    alpha64 = torch.tensor(ALPHAS, dtype=torch.float64, requires_grad=True)
    p64 = entmax.entmax_bisect(x64, alpha=alpha64, n_iter=200)
    (p64 * torch.tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(
        ops.convert_to_numpy(latent_ops.entmax_bisect(logits, ALPHAS)),
        p64.detach().numpy(),
        rtol=0,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        alpha_gradient(logits, ALPHAS, cotangent),
        alpha64.grad.numpy(),
        rtol=1e-4,
        atol=1e-6,
    )
    cotangent32 = ops.convert_to_tensor(cotangent, "float32")
    logits_gradient = gradient(
        lambda x: latent_ops.entmax_bisect(x, ALPHAS) * cotangent32, logits
    )
    np.testing.assert_allclose(
        logits_gradient, x64.grad.numpy(), rtol=1e-4, atol=1e-6
    )


def test_masked_entries_get_zero_and_no_gradient(rng):
    x = (0.8 * rng.normal(size=SHAPE)).astype("float32")
    x[0, 1] = x[1, 0] = x[1, 5] = x[4, 2] = -np.inf
    alphas = ALPHAS
    cotangent = rng.normal(size=x.shape)
    cotangent32 = ops.convert_to_tensor(cotangent, "float32")
    p = ops.convert_to_numpy(latent_ops.entmax_bisect(x, alphas))
    masked = np.isneginf(x)
    assert np.all(p[masked] == 0.0)
    logits_gradient = gradient(
        lambda z: latent_ops.entmax_bisect(z, alphas) * cotangent32, x
    )
    assert np.all(logits_gradient[masked] == 0.0)
    # The alpha gradient is the one of each row with its masked entries
    # left out.
    result = alpha_gradient(x, alphas, cotangent)
    for row, kept in enumerate(~masked):
        expected = reference_alpha_gradient(
            x[row : row + 1, kept],
            alphas[row : row + 1],
            cotangent[row : row + 1, kept],
        )
        np.testing.assert_allclose(result[row], expected[0], atol=1e-6)


def test_nan_or_below_1_alpha_gives_nan_in_its_row_only(logits):
    alphas = ALPHAS.copy()
    alphas[1, 0] = np.nan
    alphas[4, 0] = 0.5
    p = ops.convert_to_numpy(latent_ops.entmax_bisect(logits, alphas))
    assert np.all(np.isnan(p[[1, 4]]))
    kept = [0, 2, 3, 5]
    np.testing.assert_allclose(
        p[kept], entmax_per_row(logits[kept], ALPHAS[kept, 0]), atol=1e-6
    )


@pytest.mark.parametrize(
    "alpha, message",
    [
        (np.ones((6, 1), "int32"), "Expected a float >= 1 or a float tensor"),
        (np.full((6, 8), 1.5, "float32"), "of size 1 along axis 1"),
        (np.full((1, 6, 1), 1.5, "float32"), "of size 1 along axis 1"),
        (np.full((4, 1), 1.5, "float32"), "broadcastable against x"),
    ],
)
def test_rejects_a_tensor_alpha_of_the_wrong_dtype_or_shape(alpha, message):
    with pytest.raises(
        ValueError, match=r"Invalid value received for argument `alpha`"
    ) as error:
        latent_ops.entmax_bisect(np.zeros(SHAPE, "float32"), alpha)
    assert message in str(error.value)
