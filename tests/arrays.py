"""Conversion of backend tensors for comparison with NumPy references."""

import numpy as np
from keras import ops


def to_numpy(x):
    """Any Keras tensor as a float64 NumPy array (via float32 for halves)."""
    return ops.convert_to_numpy(ops.cast(x, "float32")).astype(np.float64)
