"""The straight-through estimator, with an exact forward value."""

from keras import ops


def straight_through(hard, soft):
    """Returns `hard` in the forward pass and the gradient of `soft` backward.

    Written as `hard + (soft - stop_gradient(soft))`: the bracket is exactly
    zero in floating point, so the forward value is bit-for-bit `hard`. The
    more common `soft + stop_gradient(hard - soft)` rounds, and can return
    0.99999994 instead of 1.

    Args:
        hard: the forward value (for example a one-hot tensor).
        soft: a tensor of the same shape whose gradient is used.

    Returns:
        A tensor equal to `hard` whose gradient is that of `soft`.
    """
    return hard + (soft - ops.stop_gradient(soft))
