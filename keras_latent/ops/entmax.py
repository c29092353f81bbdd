"""Alpha-entmax: sparse normalizers between softmax and sparsemax."""

import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.sparsemax import shift_and_floor
from keras_latent.ops.sparsemax import sort_descending

TINY = float(np.finfo(np.float32).tiny)
# Caps the gradient weights p ** (2 - alpha) at about 1e26. A weight only
# comes near it for alpha > 2 and an entry just inside the support, whose
# Jacobian row is then set by the other weights, not by its own.
MAX_LOG_WEIGHT = 60.0


def entmax15(x, axis=-1):
    """1.5-entmax: a sparse normalizer between softmax and sparsemax.

    Along `axis`, `entmax15(x) = max(x / 2 - tau, 0) ** 2`, where the
    threshold `tau` is the one number that makes the result sum to 1. It is
    the alpha-entmax of `entmax_bisect` at `alpha=1.5`: its outputs can be
    exactly zero, like sparsemax, but it keeps more categories and its
    output changes smoothly with `x`. The threshold is found exactly by
    sorting (Peters et al., 2019, Alg. 2): on a support `S` of the `k`
    largest entries of `x / 2`, `tau` is the smaller root of
    `sum_S (x_i / 2 - tau) ** 2 = 1`, that is `mean_S - sqrt((1 - ss_S) / k)`
    with `ss_S` the sum of squared deviations from the mean `mean_S`; the
    support is the largest `k` whose root is at most its `k`-th entry.

    The result does not change when a constant is added to a slice; the
    maximum is subtracted first, so logits of size 1e4 are exact. Entries of
    `-inf` mask categories out: they get exactly 0 and a zero gradient. A
    slice with every entry `-inf` has no distribution; it gives zeros.

    Gradients are exact almost everywhere: the Jacobian is
    `diag(g) - g g^T / sum(g)` with `g = sqrt(p)`, `p` the output. The
    support is found without gradient, then the threshold is recomputed
    from its entries, through which autodiff gives that Jacobian. The
    computation runs in float32; the result has the dtype of `x`.

    Args:
        x: float tensor of any rank >= 1; finite values or `-inf`.
        axis: the category axis.

    Returns:
        A tensor with the shape and dtype of `x` whose slices along `axis`
        are on the probability simplex.

    Example:

    >>> x = keras.ops.convert_to_tensor([-2.0, 0.0, 0.5])
    >>> keras.ops.convert_to_numpy(keras_latent.ops.entmax15(x)).round(3)
    array([0.   , 0.326, 0.674], dtype=float32)

    References:
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
    """
    axis = validation.check_axis("axis", axis)
    x, dtype = as_float32(x)
    x = ops.moveaxis(x, axis, -1)
    x, has_support = shift_and_floor(x / 2.0)
    support = x > ops.stop_gradient(_entmax15_sorted_threshold(x))
    support_size = ops.sum(ops.cast(support, "float32"), axis=-1, keepdims=True)
    support_sum = ops.sum(ops.where(support, x, 0.0), axis=-1, keepdims=True)
    mean = support_sum / support_size
    squared_deviations = ops.where(support, ops.square(x - mean), 0.0)
    sum_squared_deviations = ops.sum(squared_deviations, axis=-1, keepdims=True)
    # On the true support the root's discriminant is (mean - tau) ** 2,
    # at least 1 / k ** 2, so the square root never meets 0.
    threshold = mean - ops.sqrt((1.0 - sum_squared_deviations) / support_size)
    outputs = ops.where(
        ops.logical_and(support, has_support), ops.square(x - threshold), 0.0
    )
    return ops.cast(ops.moveaxis(outputs, -1, axis), dtype)


def _entmax15_sorted_threshold(x):
    """The 1.5-entmax threshold of each slice along the last axis (Alg. 2)."""
    x_sorted = sort_descending(x)
    rank = ops.cumsum(ops.ones_like(x_sorted), axis=-1)
    mean = ops.cumsum(x_sorted, axis=-1) / rank
    mean_of_squares = ops.cumsum(ops.square(x_sorted), axis=-1) / rank
    sum_squared_deviations = rank * (mean_of_squares - ops.square(mean))
    discriminant = ops.maximum((1.0 - sum_squared_deviations) / rank, 0.0)
    candidates = mean - ops.sqrt(discriminant)
    support_size = ops.sum(
        ops.cast(candidates <= x_sorted, "float32"), axis=-1, keepdims=True
    )
    return ops.sum(
        ops.where(ops.equal(rank, support_size), candidates, 0.0),
        axis=-1,
        keepdims=True,
    )


def entmax_bisect(x, alpha=1.5, axis=-1, n_iter=50):
    """Alpha-entmax for any `alpha >= 1`, with the threshold found by bisection.

    Along `axis`, `entmax(x) = max((alpha - 1) * x - tau, 0) ** (1 / (alpha -
    1))`, where the threshold `tau` is the one number that makes the result
    sum to 1. It maximizes `p . x` plus the Tsallis entropy of index `alpha`
    over the simplex. At `alpha=1` it is softmax (computed as such, exactly);
    at `alpha=2` it is sparsemax; `alpha=1.5` is `entmax15`. The larger
    `alpha`, the sparser the output: for `alpha > 1` entries can be exactly 0.

    The threshold lies within 1 below the largest entry of `(alpha - 1) * x`
    and is bisected `n_iter` times, without gradient; the output is then
    normalized, so that it sums to 1 whatever `n_iter` is. In float32 about
    25 halvings reach full precision, and the result is then accurate to
    about 1e-6 for any `alpha` from just above 1 up to 3. Beyond 3, an entry
    just inside the support is resolved only to the last bit of the
    threshold: at `alpha=5` errors reach about 1e-3.

    The result does not change when a constant is added to a slice; the
    maximum is subtracted first, so logits of size 1e4 are exact. Entries of
    `-inf` mask categories out: they get exactly 0 and a zero gradient. A
    slice with every entry `-inf` has no distribution; it gives zeros.

    The gradient is not taken through the iterations but given in closed
    form (Peters et al., 2019): the Jacobian is `diag(g) - g g^T / sum(g)`
    with `g = p ** (2 - alpha)` on the support of the output `p` and 0 off
    it. It is a first-order gradient: second derivatives come out as zero.
    The computation runs in float32; the result has the dtype of `x`.

    Args:
        x: float tensor of any rank >= 1; finite values or `-inf`.
        alpha: float >= 1, the entmax index.
        axis: the category axis.
        n_iter: integer >= 1, the number of bisection steps.

    Returns:
        A tensor with the shape and dtype of `x` whose slices along `axis`
        are on the probability simplex.

    Example:

    >>> x = keras.ops.convert_to_tensor([-2.0, 0.0, 0.5])
    >>> p = keras_latent.ops.entmax_bisect(x, alpha=1.5)
    >>> keras.ops.convert_to_numpy(p).round(3)
    array([0.   , 0.326, 0.674], dtype=float32)

    References:
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
        - [Blondel et al., 2020](https://arxiv.org/abs/1901.02324)
    """
    alpha = validation.check_float_at_least("alpha", alpha, 1)
    axis = validation.check_axis("axis", axis)
    n_iter = validation.check_integer("n_iter", n_iter, 1)
    x, dtype = as_float32(x)
    x = ops.moveaxis(x, axis, -1)
    if alpha == 1.0:
        outputs = _masked_softmax(x)
    else:
        outputs = _entmax_bisect_last_axis(x, alpha, n_iter)
    return ops.cast(ops.moveaxis(outputs, -1, axis), dtype)


def _masked_softmax(x):
    """Softmax over the last axis; zeros, not NaN, for all-`-inf` slices."""
    has_support = ops.max(x, axis=-1, keepdims=True) > float("-inf")
    outputs = ops.softmax(ops.where(has_support, x, 0.0), axis=-1)
    return ops.where(has_support, outputs, 0.0)


def _halve(_, state):
    """One bisection step for the entmax threshold.

    `state` holds, along its last axis, `[low, width, exponent, *x]`: the
    mass `sum(max(x - t, 0) ** exponent)` is 1 or more at `t = low` and less
    than 1 at `low + width`. One tensor rather than a tuple, because
    `keras.ops.fori_loop` on symbolic tensors takes only one; `x` and
    `exponent` ride along, unchanged, because a module-level body lets JAX
    reuse its traced loop from call to call, and a closure would not.
    """
    low = state[..., 0:1]
    width = state[..., 1:2] / 2.0
    exponent = state[..., 2:3]
    middle = low + width
    unnormalized = ops.power(
        ops.maximum(state[..., 3:] - middle, 0.0), exponent
    )
    mass = ops.sum(unnormalized, axis=-1, keepdims=True)
    low = ops.where(mass >= 1.0, middle, low)
    return ops.concatenate([low, width, state[..., 2:]], axis=-1)


def _entmax_bisect_last_axis(x, alpha, n_iter):
    """Alpha-entmax over the last axis of float32 `x`, for `alpha > 1`."""
    exponent = 1.0 / (alpha - 1.0)
    x, has_support = shift_and_floor((alpha - 1.0) * x)
    x_constant = ops.stop_gradient(x)
    # max(x) = 0, and the threshold lies in [-1, 0): at -1 the largest entry
    # alone has mass 1.
    low = ops.full_like(x_constant[..., :1], -1.0)
    state = ops.concatenate(
        [low, ops.ones_like(low), ops.full_like(low, exponent), x_constant],
        axis=-1,
    )
    threshold = ops.fori_loop(0, n_iter, _halve, state)[..., :1]
    in_support = x_constant > threshold
    # (x - threshold) ** exponent is proportional to
    # exp(exponent * log1p(x / -threshold)), which is 1 at the largest entry
    # and, unlike the power, does not multiply the rounding of
    # x - threshold by the exponent, which is large for alpha near 1.
    scale = ops.maximum(-threshold, TINY)
    relative = ops.where(in_support, x_constant / scale, 0.0)
    log_unnormalized = ops.where(
        in_support, exponent * ops.log1p(relative), float("-inf")
    )
    log_probabilities = log_unnormalized - ops.logsumexp(
        log_unnormalized, axis=-1, keepdims=True
    )
    probabilities = ops.exp(log_probabilities)
    # The Jacobian with respect to the logits, x / (alpha - 1), is carried by
    # a term that is linear in x and exactly zero in the forward pass. Its
    # weights p ** (2 - alpha) are taken in log space: for alpha > 2 they
    # grow without bound at the edge of the support.
    log_weights = (2.0 - alpha) * ops.where(in_support, log_probabilities, 0.0)
    weights = ops.where(
        in_support, ops.exp(ops.minimum(log_weights, MAX_LOG_WEIGHT)), 0.0
    )
    weighted_mean = ops.sum(weights * x, axis=-1, keepdims=True) / ops.sum(
        weights, axis=-1, keepdims=True
    )
    linear = exponent * weights * (x - weighted_mean)
    outputs = probabilities + (linear - ops.stop_gradient(linear))
    return ops.where(has_support, outputs, 0.0)
