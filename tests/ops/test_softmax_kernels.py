"""`softmax_kernels`: Keras's softmax and log-softmax, by PyTorch's fast
kernel where its last-axis one is slow; the same values and gradients."""

import keras
import numpy as np
import pytest

from keras_latent.ops import softmax_kernels
from tests.arrays import to_numpy
from tests.ops import gradients

CASES = {
    "10 categories, last axis": ((6, 5, 10), -1),
    "3 categories, middle axis": ((4, 3, 7), 1),
    "2 categories": ((8, 2), -1),
    "16 categories, Keras's kernel": ((4, 16), -1),
}


def numpy_log_softmax(x, axis):
    x = x.astype("float64")
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_values_and_gradients_match_numpy_and_keras(case, log, rng):
    shape, axis = CASES[case]
    x = rng.normal(size=shape).astype("float32")
    x.reshape(-1)[1] = -np.inf  # a masked entry: 0, or -inf in log space
    function = softmax_kernels.log_softmax if log else softmax_kernels.softmax
    keras_function = keras.ops.log_softmax if log else keras.ops.softmax
    expected = numpy_log_softmax(x, axis)
    expected = expected if log else np.exp(expected)
    value = to_numpy(function(keras.ops.convert_to_tensor(x), axis=axis))
    np.testing.assert_allclose(value, expected, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(
        value, to_numpy(keras_function(x, axis=axis)), rtol=2e-6, atol=1e-7
    )
    # The gradient of sum(w * f(x)) by the backend's autodiff, against
    # the same for Keras's op (finite entries only: -inf gets 0).
    weights = rng.normal(size=shape).astype("float32")
    weights[~np.isfinite(expected)] = 0.0
    weights = keras.ops.convert_to_tensor(weights)
    finite = keras.ops.convert_to_tensor(np.isfinite(expected))

    def weighted(function):
        def objective(z):
            y = keras.ops.where(finite, function(z, axis=axis), 0.0)
            return keras.ops.sum(y * weights)

        return objective

    np.testing.assert_allclose(
        gradients.gradient(weighted(function), x),
        gradients.gradient(weighted(keras_function), x),
        rtol=1e-5,
        atol=1e-6,
    )


def test_nan_stays_in_its_slice():
    # NaN gives NaN (the normalizers then spread it over its slice).
    x = np.zeros((3, 4), "float32")
    x[1, 2] = np.nan
    value = to_numpy(softmax_kernels.softmax(keras.ops.convert_to_tensor(x)))
    assert np.isnan(value[1, 2])
    np.testing.assert_allclose(value[[0, 2]], 0.25)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch only")
def test_torch_cpu_takes_the_first_axis_kernel_below_16_categories():
    import torch

    assert softmax_kernels._on_slow_torch_kernel(torch.zeros(4, 10), -1)
    assert softmax_kernels._on_slow_torch_kernel(torch.zeros(4, 3, 5), 1)
    assert not softmax_kernels._on_slow_torch_kernel(torch.zeros(4, 16), -1)
    assert not softmax_kernels._on_slow_torch_kernel(torch.zeros(10), 0)
    assert not softmax_kernels._on_slow_torch_kernel(
        torch.zeros(4, 10, dtype=torch.float16), -1
    )
