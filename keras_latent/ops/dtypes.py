"""Float32 computation with results in the caller's dtype."""

import keras
from keras import ops


def as_float32(x):
    """Converts `x` to a float32 tensor; returns it and the dtype to give back.

    Every op in `keras_latent.ops` computes in float32, whatever the dtype
    policy, because half-precision logits overflow in `exp` and lose the
    small probabilities that KL terms and log-densities depend on. Results
    are returned in the input's floating dtype (float32 for integer input).
    """
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if not keras.backend.is_float_dtype(dtype):
        dtype = "float32"
    return ops.cast(x, "float32"), dtype


def is_empty(x):
    """Whether `x` has a dimension statically known to be 0.

    Reductions such as `keras.ops.max` refuse an empty tensor on the torch
    backend; an op returns its empty result before reaching them.
    """
    return any(dimension == 0 for dimension in x.shape)
