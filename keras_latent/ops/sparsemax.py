"""Sparsemax: the Euclidean projection of logits onto the simplex."""

from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32

# Every normalizer p = [x - tau]_+^(1 / (alpha - 1)) of the entmax family,
# applied to x = (alpha - 1) * logits with max(x) = 0, has p_max <= 1 and so
# a threshold tau >= -1. Entries below -1 are never in the support; raising
# them (and -inf masks) to this floor changes no output and keeps infinities
# out of every sum, and so out of values and gradients.
SUPPORT_FLOOR = -2.0


def shift_and_floor(x):
    """Prepares the last axis of `x` for a thresholded normalizer.

    Args:
        x: float32 tensor whose last axis is the category axis. Entries may
            be `-inf`; `+inf` and NaN are not supported.

    Returns:
        A pair: `x` minus its maximum over the last axis, with entries below
        `SUPPORT_FLOOR` raised to it; and a boolean tensor, with the last
        axis kept as size 1, that is False where a slice is entirely `-inf`.
        Such a slice comes back as zeros, which keeps NaN out of its
        (discarded) result and its gradient; the caller zeroes its output.
    """
    has_support = ops.max(x, axis=-1, keepdims=True) > float("-inf")
    x = ops.where(has_support, x, 0.0)
    x_max = ops.stop_gradient(ops.max(x, axis=-1, keepdims=True))
    return ops.maximum(x - x_max, SUPPORT_FLOOR), has_support


def sort_descending(x):
    """`x` sorted along its last axis from largest to smallest."""
    return ops.flip(ops.sort(x, axis=-1), axis=-1)


def sparsemax(x, axis=-1):
    """Sparsemax: the Euclidean projection of `x` onto the simplex.

    Along `axis`, `sparsemax(x) = max(x - tau, 0)`, where the threshold
    `tau` is the one number that makes the result sum to 1. Unlike softmax
    it returns exact zeros: entries 1 or more below the largest are always
    0. Following Martins and Astudillo (2016, Alg. 1), `tau` is
    found by sorting: with `z_(1) >= ... >= z_(n)` the sorted slice and
    `c_k` the sum of its first `k` entries, the support holds the `k` largest
    entries for the largest `k` with `1 + k * z_(k) > c_k`, and
    `tau = (c_k - 1) / k`. Sparsemax is the 2-entmax (see `entmax_bisect`).

    The result does not change when a constant is added to a slice; the
    maximum is subtracted first, so logits of size 1e4 are exact. Entries of
    `-inf` mask categories out: they get exactly 0 and a zero gradient. A
    slice with every entry `-inf` has no distribution; it gives zeros.

    Gradients are exact almost everywhere: the Jacobian on the support `S`
    is `diag(s) - s s^T / |S|`, with `s` the indicator of `S`, and zero
    elsewhere. The threshold is found without gradient, then recomputed
    from the entries in the support, through which autodiff gives that
    Jacobian. The computation runs in float32; the result has the dtype of
    `x`.

    Args:
        x: float tensor of any rank >= 1; finite values or `-inf`.
        axis: the category axis.

    Returns:
        A tensor with the shape and dtype of `x` whose slices along `axis`
        are on the probability simplex.

    Example:

    >>> x = keras.ops.convert_to_tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    >>> keras.ops.convert_to_numpy(keras_latent.ops.sparsemax(x)).round(6)
    array([0. , 0.1, 0.2, 0.3, 0.4], dtype=float32)

    References:
        - [Martins and Astudillo, 2016](https://arxiv.org/abs/1602.02068)
    """
    axis = validation.check_axis("axis", axis)
    x, dtype = as_float32(x)
    x = ops.moveaxis(x, axis, -1)
    x, has_support = shift_and_floor(x)
    support = x > ops.stop_gradient(_sorted_threshold(x))
    support_size = ops.sum(ops.cast(support, "float32"), axis=-1, keepdims=True)
    support_sum = ops.sum(ops.where(support, x, 0.0), axis=-1, keepdims=True)
    threshold = (support_sum - 1.0) / support_size
    outputs = ops.where(
        ops.logical_and(support, has_support), x - threshold, 0.0
    )
    return ops.cast(ops.moveaxis(outputs, -1, axis), dtype)


def _sorted_threshold(x):
    """The sparsemax threshold of each slice along the last axis.

    With `c_k` the sum of the `k` largest entries, `(c_k - 1) / k` grows
    with `k` exactly while the `k`-th largest entry is in the support (the
    condition of Alg. 1), so its maximum over `k` is the threshold. Taking
    the maximum needs no support count and no gather.
    """
    x_sorted = sort_descending(x)
    rank = ops.cumsum(ops.ones_like(x_sorted), axis=-1)
    candidates = (ops.cumsum(x_sorted, axis=-1) - 1.0) / rank
    return ops.max(candidates, axis=-1, keepdims=True)
