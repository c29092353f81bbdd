"""Sparsemax and entmax15 on rows long enough for a partial sort.

On PyTorch, on rows of 256 or more entries the threshold comes from the 64
(then 128) largest entries when every row's support is among them, and from
a full sort otherwise (`keras_latent.ops.simplex.PARTIAL_SORT_SIZES`); the
other backends find the support by bisection (see
`test_support_bisection.py`). Values and gradients are checked against the
float64 references on both paths.
"""

import keras
import numpy as np
import pytest

from keras_latent import ops as latent_ops
from tests import references
from tests.ops import sparse_gradients

ROW_SIZE = 256
NORMALIZERS = {
    # name: (op, reference, a scale of standard normal logits that gives
    # supports of 64 to 128 of 512 entries)
    "sparsemax": (latent_ops.sparsemax, references.sparsemax, 0.03),
    "entmax15": (latent_ops.entmax15, references.entmax15, 0.3),
}


def reference_gradient(name, x, cotangent):
    """`cotangent @ J` row by row, with the closed-form Jacobian: `diag(g) -
    g g^T / sum(g)`, `g` the support indicator (sparsemax) or `sqrt(p)`."""
    p = NORMALIZERS[name][1](x)
    g = (p > 0).astype("float64") if name == "sparsemax" else np.sqrt(p)
    weighted = np.sum(g * cotangent, axis=-1, keepdims=True)
    return g * cotangent - g * weighted / np.sum(g, axis=-1, keepdims=True)


def largest_support(name, x):
    """The largest support size of the rows of `x`."""
    return int(np.max(np.sum(NORMALIZERS[name][1](x) > 0, axis=-1)))


def small_supports(rng):
    """Rows whose supports fit in the smallest partial sort, with masked
    entries; one row has fewer finite entries than the partial sort."""
    x = (4.0 * rng.normal(size=(6, ROW_SIZE))).astype("float32")
    x[1, ::3] = -np.inf
    x[2, 40:] = -np.inf
    return x


def one_large_support(rng):
    """`small_supports`, but one row has every entry in its support."""
    x = small_supports(rng)
    x[3] = (0.01 * rng.normal(size=ROW_SIZE)).astype("float32")
    return x


def tied_supports(size):
    """Rows whose supports are `size` tied largest entries: one fewer than
    the partial sort holds (solved by it), or as many (not solved)."""
    x = np.full((2, ROW_SIZE), -5.0, dtype="float32")
    x[0, :size] = 0.0
    x[1, -size:] = 3.0
    return x


@pytest.mark.parametrize("name", list(NORMALIZERS))
@pytest.mark.parametrize(
    "inputs, partial",
    [
        (small_supports, True),
        (one_large_support, False),
        (lambda rng: tied_supports(63), True),
        (lambda rng: tied_supports(64), False),
    ],
    ids=["small_supports", "one_large_support", "tied_63", "tied_64"],
)
def test_values_and_gradients_match_the_references(rng, name, inputs, partial):
    x = inputs(rng)
    assert (largest_support(name, x) < 64) == partial
    cotangent = rng.normal(size=x.shape).astype("float32")
    value, gradient = sparse_gradients.value_and_gradient(
        NORMALIZERS[name][0], x, cotangent
    )
    np.testing.assert_allclose(
        value, NORMALIZERS[name][1](x), rtol=0, atol=1e-6
    )
    expected = reference_gradient(name, x, cotangent)
    np.testing.assert_allclose(gradient, expected, rtol=0, atol=1e-5)
    assert np.all(gradient[np.isneginf(x)] == 0.0)


@pytest.mark.parametrize("name", list(NORMALIZERS))
def test_compiled_partial_and_full_sorts_match_the_references(rng, name):
    for x in (small_supports(rng), one_large_support(rng)):
        cotangent = rng.normal(size=x.shape).astype("float32")
        value, gradient = sparse_gradients.value_and_gradient(
            NORMALIZERS[name][0], x, cotangent, compiled=True
        )
        np.testing.assert_allclose(
            value, NORMALIZERS[name][1](x), rtol=0, atol=1e-6
        )
        np.testing.assert_allclose(
            gradient, reference_gradient(name, x, cotangent), atol=1e-5
        )


@pytest.mark.parametrize("name", list(NORMALIZERS))
def test_rows_of_512_use_the_larger_partial_sort(rng, name):
    # Supports of more than 64 entries but fewer than 128.
    scale = NORMALIZERS[name][2]
    x = (scale * rng.normal(size=(4, 512))).astype("float32")
    assert 64 < largest_support(name, x) < 128
    np.testing.assert_allclose(
        sparse_gradients.value_and_gradient(
            NORMALIZERS[name][0], x, np.zeros_like(x)
        )[0],
        NORMALIZERS[name][1](x),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize("name", list(NORMALIZERS))
def test_a_functional_model_on_long_rows_matches_the_reference(rng, name):
    # On a symbolic input the threshold cannot branch on the values (a
    # functional model cannot hold the branches); on PyTorch it sorts
    # every entry.
    inputs = keras.Input((ROW_SIZE,))
    model = keras.Model(inputs, NORMALIZERS[name][0](inputs))
    x = small_supports(rng)[:, :ROW_SIZE]
    x[np.isneginf(x)] = -30.0
    np.testing.assert_allclose(
        model.predict(x, verbose=0), NORMALIZERS[name][1](x), atol=1e-6
    )


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="a PyTorch tracer"
)
@pytest.mark.parametrize("name", list(NORMALIZERS))
def test_a_trace_from_small_supports_serves_large_ones(rng, name):
    # `torch.jit.trace` records one path; traced on rows that a partial
    # sort solves, it must still solve rows that need the full sort.
    import torch

    traced = torch.jit.trace(
        NORMALIZERS[name][0], torch.from_numpy(small_supports(rng))
    )
    x = one_large_support(rng)
    np.testing.assert_allclose(
        traced(torch.from_numpy(x)).numpy(),
        NORMALIZERS[name][1](x),
        rtol=0,
        atol=1e-6,
    )
