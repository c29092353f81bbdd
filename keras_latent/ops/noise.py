"""Seeded uniform noise on the open interval (0, 1), drawn in float32."""

import numpy as np
from keras import ops
from keras import random

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
