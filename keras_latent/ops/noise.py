"""Seeded uniform noise on the open interval (0, 1), drawn in float32."""

import numpy as np
from keras import ops
from keras import random

from keras_latent import validation

# The smallest normal float32 and the largest float32 below 1. A uniform draw
# clipped to [TINY, ONE_MINUS_EPSILON] keeps log(u), log(1 - u) and
# -log(-log(u)) finite on every backend: some backends' uniform samplers can
# return exactly 0 (or 1 after scaling), which would give an infinite Gumbel
# sample and then NaN in a softmax.
TINY = float(np.finfo(np.float32).tiny)
ONE_MINUS_EPSILON = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def uniform_noise(shape, seed=None):
    """Float32 uniform noise on the open interval (0, 1).

    Args:
        shape: the shape of the draw.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A float32 tensor with values in [tiny, 1 - 2**-24].
    """
    u = random.uniform(
        shape, minval=TINY, maxval=1.0, dtype="float32", seed=seed
    )
    return ops.clip(u, TINY, ONE_MINUS_EPSILON)


def given_or_uniform_noise(noise, shape, seed=None):
    """`noise` as float32, checked against `shape`, or a fresh draw.

    What the ops that take `noise=` in place of `seed` use: passing the
    same uniform draws twice gives the same value and gradient.

    Args:
        noise: None, or uniform draws on (0, 1) of shape `shape`.
        shape: the shape of the draw.
        seed: an integer, a `keras.random.SeedGenerator`, or None; used
            when `noise` is None.

    Returns:
        A float32 tensor of shape `shape`.
    """
    if noise is None:
        return uniform_noise(shape, seed=seed)
    noise = ops.cast(ops.convert_to_tensor(noise), "float32")
    if tuple(noise.shape) != tuple(shape):
        raise validation.invalid_shape(
            "noise", f"uniform noise of shape {tuple(shape)}", noise.shape
        )
    return noise
