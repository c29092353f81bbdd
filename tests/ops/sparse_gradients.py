"""Jacobians and compiled functions for the sparse-normalizer tests.

Autodiff and compilation are the two places where a test must reach past
`keras.ops` to the backend; these helpers hide that behind one interface
for TensorFlow, JAX and PyTorch.
"""

import keras
import numpy as np


def jacobian(function, x):
    """The Jacobian of `function` at `x` by the backend's autodiff.

    Args:
        function: maps a float32 tensor to a tensor.
        x: a NumPy array, taken as float32.

    Returns:
        A float64 NumPy array of shape `output.shape + x.shape`.
    """
    x = np.asarray(x, dtype="float32")
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        # Under jit: op-by-op, reverse mode over a JAX jacobian takes seconds.
        result = jax.jit(jax.jacrev(function))(x)
    elif backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        result = tape.jacobian(y, x)
    elif backend == "torch":
        import torch

        result = torch.autograd.functional.jacobian(function, torch.tensor(x))
    else:
        raise NotImplementedError(f"No autodiff for backend {backend!r}.")
    return keras.ops.convert_to_numpy(result).astype("float64")


def numeric_jacobian(function, x, step=1e-6):
    """The Jacobian of a NumPy `function` at `x` by central differences.

    Args:
        function: maps a float64 NumPy array to a NumPy array.
        x: a NumPy array, taken as float64.
        step: the finite-difference step.

    Returns:
        A float64 NumPy array of shape `output.shape + x.shape`.
    """
    x = np.asarray(x, dtype="float64")
    output_shape = np.shape(function(x))
    result = np.zeros(output_shape + x.shape)
    for index in np.ndindex(x.shape):
        shift = np.zeros_like(x)
        shift[index] = step
        difference = function(x + shift) - function(x - shift)
        result[(...,) + index] = difference / (2.0 * step)
    return result


def value_and_gradient(function, x, cotangent, compiled=False):
    """`function(x)` and the gradient of `sum(cotangent * function(x))`.

    With `compiled=True` both are computed the way each backend compiles a
    training step. JAX: the whole computation under `jax.jit`. TensorFlow:
    under `tf.function` with XLA. PyTorch: `function` under `torch.compile`
    with the `aot_eager` backend, which traces the forward and backward
    graphs with Dynamo and AOTAutograd but needs no C++ toolchain.

    Args:
        function: maps a float32 tensor to a tensor of the same shape.
        x: a NumPy array, taken as float32.
        cotangent: a NumPy array of the shape of `x`.
        compiled: whether to compile.

    Returns:
        A pair of float64 NumPy arrays, both of the shape of `x`.
    """
    x = np.asarray(x, dtype="float32")
    cotangent = np.asarray(cotangent, dtype="float32")
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def value_and_pullback(x, cotangent):
            y, pullback = jax.vjp(function, x)
            return y, pullback(cotangent)[0]

        if compiled:
            value_and_pullback = jax.jit(value_and_pullback)
        result = value_and_pullback(x, cotangent)
    elif backend == "tensorflow":
        import tensorflow as tf

        def value_and_pullback(x, cotangent):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = function(x)
            return y, tape.gradient(y, x, output_gradients=cotangent)

        if compiled:
            value_and_pullback = tf.function(
                value_and_pullback, jit_compile=True
            )
        result = value_and_pullback(tf.constant(x), tf.constant(cotangent))
    elif backend == "torch":
        import torch

        if compiled:
            function = torch.compile(function, backend="aot_eager")
        x = torch.tensor(x, requires_grad=True)
        y = function(x)
        (gradient,) = torch.autograd.grad(
            y, x, grad_outputs=torch.tensor(cotangent)
        )
        result = (y.detach(), gradient)
    else:
        raise NotImplementedError(f"No autodiff for backend {backend!r}.")
    return tuple(
        keras.ops.convert_to_numpy(tensor).astype("float64")
        for tensor in result
    )
