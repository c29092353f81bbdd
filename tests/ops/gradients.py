"""Gradients for tests: a backend-agnostic one (Keras 3 has no
`keras.ops.grad`) and float64 central differences of NumPy references."""

import keras
import numpy as np
from keras import ops


def gradient(fn, x):
    """The gradient of `sum(fn(x))` with respect to `x`, as a NumPy array.

    Uses `tf.GradientTape`, `jax.grad` or `torch.autograd` according to
    `keras.backend.backend()`. `fn` maps a tensor to a tensor built with
    `keras.ops`; its entries are summed, so pass a weighted `fn` to take a
    vector-Jacobian product. The gradient keeps the dtype of `x`; where
    `fn(x)` does not depend differentiably on `x` it is zero, as in JAX.

    Args:
        fn: a function of one tensor, written with `keras.ops`.
        x: a NumPy array or a tensor of the current backend, of float dtype.

    Returns:
        A NumPy array of the shape and dtype of `x`.
    """
    x = ops.convert_to_tensor(x)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            total = ops.sum(fn(x))
        result = tape.gradient(
            total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
    elif backend == "jax":
        import jax

        result = jax.grad(lambda value: ops.sum(fn(value)))(x)
    elif backend == "torch":
        import torch

        x = x.detach().requires_grad_(True)
        total = ops.sum(fn(x))
        if total.requires_grad:
            total.backward()
        result = torch.zeros_like(x) if x.grad is None else x.grad
    else:
        raise ValueError(f"No gradient helper for backend {backend!r}.")
    return ops.convert_to_numpy(result)


def central_differences(fn, x, step=1e-6):
    """Float64 central differences of the scalar `fn` at `x`."""
    x = np.asarray(x, np.float64)
    result = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        shift = np.zeros(x.shape)
        shift[index] = step
        result[index] = (fn(x + shift) - fn(x - shift)) / (2 * step)
    return result
