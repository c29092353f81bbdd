"""Sparsemax and entmax15 with the support found by bisection or by sorting.

JAX and TensorFlow find the support by bisection, PyTorch by sorting
(`keras_latent.ops.simplex._bisects_support`); both paths run here on every
backend, on rows that stress the support's edge, and must agree: the
threshold is recomputed exactly from the support on both.
"""

import functools

import numpy as np
import pytest
from keras import ops

from keras_latent.ops import simplex
from tests.ops import sparse_gradients

ROW_SIZE = 8
ROWS = {
    "sparsemax": simplex._sparsemax_rows,
    "entmax15": simplex._entmax15_rows,
}


def normalizer(name, by_bisection):
    return functools.partial(
        simplex._normalize,
        functools.partial(ROWS[name], by_bisection=by_bisection),
        axis=-1,
    )


def row(*values, fill=-9.0):
    return list(values) + [fill] * (ROW_SIZE - len(values))


# Rows without an entry within float32 resolution of the threshold, on
# which both paths must give the same support, so the same gradient.
CLEAR_ROWS = [
    # Ties at the threshold: sparsemax's is -1 and entmax15's is -1 on the
    # halved logits, so the entries at -1 (-2 for entmax15) get exactly 0.
    row(0.0, -1.0, -1.0),
    row(0.0, -2.0, -2.0),
    # Sparsemax's threshold 0.5 on the tied entries 0.5.
    row(1.0, 1.0, 0.5, 0.5),
    # A support of 1, and supports of every entry.
    row(10.0, 0.0, 0.0),
    [0.3] * ROW_SIZE,
    [0.01 * k for k in range(ROW_SIZE)],
    # Logits of size 1e4.
    [1e4 + 0.125 * k for k in range(ROW_SIZE)],
    [-3e4, 1e4, -2e4, 1e4 - 0.5, 5e3, 1e4 - 0.25, 0.0, 1e4 - 2.0],
    # Masked entries, a row of one finite entry, and a fully masked row.
    row(0.5, -np.inf, 0.0, -np.inf, 0.25, fill=-np.inf),
    row(3.0, fill=-np.inf),
    row(fill=-np.inf),
]
# Entries 1e-7 above and below sparsemax's threshold (-1, 0 being the
# maximum) and entmax15's (-1 on the halved logits): in the support or
# out of it by the float32 rounding of each path, with outputs of 1e-7 or
# less either way.
NEAR_ROWS = [
    row(0.0, -1.0 + 1e-7, -1.0 - 1e-7, -1.0),
    row(0.0, -2.0 + 2e-7, -2.0 - 2e-7, -2.0),
]


@pytest.mark.parametrize("name", list(ROWS))
def test_the_bisected_support_gives_the_sorted_values(name):
    x = np.array(CLEAR_ROWS + NEAR_ROWS, dtype="float32")
    bisected = ops.convert_to_numpy(normalizer(name, True)(x))
    sorted_ = ops.convert_to_numpy(normalizer(name, False)(x))
    np.testing.assert_allclose(bisected, sorted_, rtol=0.0, atol=1e-6)
    assert np.all(bisected >= 0.0)
    sums = np.sum(bisected, axis=-1)
    np.testing.assert_allclose(sums[:-3], 1.0, rtol=0.0, atol=1e-6)
    np.testing.assert_allclose(sums[-3], 0.0, rtol=0.0, atol=0.0)
    # Exact zeros stay exact: masked entries, and entries of sparsemax's
    # (entmax15's) logits more than 1 (2) below the maximum.
    margin = 1.0 if name == "sparsemax" else 2.0
    far = x < np.max(x, axis=-1, keepdims=True) - margin - 1e-3
    assert np.all(bisected[far] == 0.0)


@pytest.mark.parametrize("name", list(ROWS))
def test_the_bisected_support_gives_the_sorted_gradients(name, rng):
    x = np.array(CLEAR_ROWS, dtype="float32")
    cotangent = rng.normal(size=x.shape).astype("float32")
    _, bisected = sparse_gradients.value_and_gradient(
        normalizer(name, True), x, cotangent
    )
    _, sorted_ = sparse_gradients.value_and_gradient(
        normalizer(name, False), x, cotangent
    )
    np.testing.assert_allclose(bisected, sorted_, rtol=1e-5, atol=1e-5)
