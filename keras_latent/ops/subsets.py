"""Subsets of k categories: exact Gumbel-top-k samples and their relaxation.

Every op perturbs the logits once, `keys = logits - max(logits) + g` with
`g` standard Gumbel noise, as `keras_latent.ops.gumbel` does for one
category. The k largest keys are an exact sample of k categories drawn
without replacement with probabilities `softmax(logits)` (Gumbel-top-k);
the relaxation of Xie and Ermon (2019) replaces their selection by k
successive softmaxes of the same keys. Like the estimators, every op takes
`seed` or, in its place, `noise`: uniform draws on (0, 1) of the shape of
`logits`, so that the exact, relaxed and straight-through subsets can be
drawn from common random numbers.

A slice along the category axis that holds NaN or `+inf`, or has fewer
than `k` categories that are not masked with `-inf`, has no k-subset
distribution: its output is NaN.
"""

import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops import softmax_kernels
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.dtypes import is_empty
from keras_latent.ops.gumbel import _noisy_logits
from keras_latent.ops.gumbel import _one_hot_of_argmax
from keras_latent.ops.noise import given_or_uniform_noise
from keras_latent.ops.straight_through import straight_through


def k_hot_top_k(x, k, axis=-1):
    """The k-hot encoding of the `k` largest entries of `x` along `axis`.

    Each slice holds exactly `k` ones; ties go to the lowest index.
    Entries of `-inf` are masked out: a slice holding NaN, or with fewer
    than `k` entries above `-inf`, gives NaN. The result carries no
    gradient.
    This is the deterministic subset of a layer at inference: the k most
    probable categories.

    Args:
        x: float tensor of any rank >= 1, whose number of entries along
            `axis` is known statically and at least `k`.
        k: integer >= 1, the subset size.
        axis: the category axis.

    Returns:
        A tensor with the shape and dtype of `x`.

    Example:

    >>> x = keras.ops.convert_to_tensor([[0.2, 1.5, -3.0, 0.7]])
    >>> keras.ops.convert_to_numpy(keras_latent.ops.k_hot_top_k(x, 2))
    array([[0., 1., 0., 1.]], dtype=float32)
    """
    axis = validation.check_axis("axis", axis)
    x, dtype = as_float32(x)
    _check_k(k, x, axis)
    x = ops.moveaxis(ops.stop_gradient(x), axis, -1)
    k_hot = _with_nan_of_invalid(x, x, k, _k_hot_top_k(x, k))
    return ops.cast(ops.moveaxis(k_hot, -1, axis), dtype)


def gumbel_top_k(logits, k, axis=-1, seed=None, noise=None):
    """Draws an exact k-subset of categories without replacement, k-hot.

    With `g` standard Gumbel noise, the indices of the `k` largest entries
    of `logits + g` along `axis` are distributed as `k` successive draws
    without replacement from `Categorical(softmax(logits))`: the first
    category with probability `p_i`, the next with probability
    `p_j / (1 - p_i)`, and so on (Gumbel-top-k). The result is their k-hot
    encoding: exactly `k` ones per slice. The maximum of the logits is
    subtracted before the noise is added, which keeps the sample exact for
    any finite logits. The result carries no gradient.

    Args:
        logits: float tensor of unnormalized log-probabilities, whose number
            of categories along `axis` is known statically. Entries of
            `-inf` mask categories out: they are never drawn. A slice
            holding NaN or `+inf`, or with fewer than `k` unmasked
            categories, gives NaN.
        k: integer between 1 and the number of categories.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform draws on (0, 1) of the shape of `logits`,
            used in place of a draw from `seed`.

    Returns:
        A k-hot tensor with the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0, 0.0]])
    >>> sample = keras_latent.ops.gumbel_top_k(logits, 2, seed=1)
    >>> float(keras.ops.sum(sample))
    2.0

    References:
        - [Kool et al., 2019](https://arxiv.org/abs/1903.06059)
        - [Vieira, 2014, "Gumbel-max trick and weighted reservoir sampling"](
          https://timvieira.github.io/blog/post/2014/08/01/gumbel-max-trick-and-weighted-reservoir-sampling/)
    """
    logits, noise, dtype, axis = _prepare(logits, k, axis, noise)
    keys = ops.stop_gradient(_keys(logits, seed, noise))
    k_hot = _with_nan_of_invalid(logits, keys, k, _k_hot_top_k(keys, k))
    return ops.cast(ops.moveaxis(k_hot, -1, axis), dtype)


def relaxed_top_k(logits, k, temperature=1.0, axis=-1, seed=None, noise=None):
    """Draws a relaxed k-hot subset: k successive softmaxes of noisy logits.

    The continuous relaxation of `gumbel_top_k` by Xie and Ermon (2019).
    With the keys `r = logits + g` (`g` standard Gumbel noise) and
    temperature `t`, it runs k steps from `s_1 = r`:

        a_j = softmax(s_j / t),    s_{j+1} = s_j + log(1 - a_j),

    and returns `a_1 + ... + a_k`. Each step down-weights what the earlier
    ones selected, as drawing without replacement removes it. As the
    temperature goes to 0, the result tends to the k-hot of the k largest
    keys, that is `gumbel_top_k` with the same noise (slice by slice: keys
    closer together than about the temperature share each step's mass, so
    the convergence is not uniform); the relaxation is
    differentiable with respect to the logits (and the temperature).

    Each slice sums to `k` (to about `k * 1e-6` in float32) and its entries
    lie in [0, k]. They are not bounded by 1 at high temperatures: with two
    categories of probabilities 0.9 and 0.1, no noise, `k = 2` and
    `t = 1`, the result is (1.4, 0.6).

    `log(1 - a_j)` is computed in log space, without clipping: for the
    largest entry of `a_j` (the only one that can round to 1) as the
    `logsumexp` of the other log-probabilities, for the others as
    `log1p(-a_j)`. It stays finite, with finite gradients, at low
    temperatures and under masks.

    Args:
        logits: float tensor of unnormalized log-probabilities, whose number
            of categories along `axis` is known statically. Entries of
            `-inf` mask categories out: their output is 0. A slice holding
            NaN or `+inf`, or with fewer than `k` unmasked categories,
            gives NaN.
        k: integer between 1 and the number of categories.
        temperature: float >= 1e-30, or a scalar tensor.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform draws on (0, 1) of the shape of `logits`,
            used in place of a draw from `seed`.

    Returns:
        A tensor with the shape and dtype of `logits`, each slice along
        `axis` summing to `k`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0, 0.0]])
    >>> sample = keras_latent.ops.relaxed_top_k(logits, 2, 0.5, seed=1)
    >>> round(float(keras.ops.sum(sample)), 5)
    2.0

    References:
        - [Xie and Ermon, 2019](https://arxiv.org/abs/1901.10517)
        - [Kool et al., 2019](https://arxiv.org/abs/1903.06059)
    """
    temperature = validation.check_temperature("temperature", temperature)
    logits, noise, dtype, axis = _prepare(logits, k, axis, noise)
    keys = _keys(logits, seed, noise)
    relaxed = _with_nan_of_invalid(
        logits, keys, k, _relaxed_top_k(keys, k, temperature)
    )
    return ops.cast(ops.moveaxis(relaxed, -1, axis), dtype)


def straight_through_top_k(
    logits, k, temperature=1.0, axis=-1, seed=None, noise=None
):
    """Straight-through k-subset: exact k-hot forward, relaxed gradient.

    The forward value is the k-hot `D` of the k largest keys
    `logits + g`, the exact sample of `gumbel_top_k`; the gradient is that
    of the relaxation `y` of `relaxed_top_k` computed from the same noise:
    `D + y - stop_gradient(y)`. As for `straight_through_gumbel`, the
    gradient is biased; the bias shrinks with the temperature while the
    variance grows.

    Args:
        logits: float tensor of unnormalized log-probabilities, whose number
            of categories along `axis` is known statically. Entries of
            `-inf` mask categories out: they are never drawn. A slice
            holding NaN or `+inf`, or with fewer than `k` unmasked
            categories, gives NaN.
        k: integer between 1 and the number of categories.
        temperature: float >= 1e-30, or a scalar tensor.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform draws on (0, 1) of the shape of `logits`,
            used in place of a draw from `seed`.

    Returns:
        A k-hot tensor with the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0, 0.0]])
    >>> sample = keras_latent.ops.straight_through_top_k(
    ...     logits, 2, 0.5, seed=1)
    >>> float(keras.ops.sum(sample))
    2.0

    References:
        - [Xie and Ermon, 2019](https://arxiv.org/abs/1901.10517)
        - [Bengio et al., 2013](https://arxiv.org/abs/1308.3432)
    """
    temperature = validation.check_temperature("temperature", temperature)
    logits, noise, dtype, axis = _prepare(logits, k, axis, noise)
    keys = _keys(logits, seed, noise)
    hard = _k_hot_top_k(ops.stop_gradient(keys), k)
    sample = straight_through(hard, _relaxed_top_k(keys, k, temperature))
    sample = _with_nan_of_invalid(logits, keys, k, sample)
    return ops.cast(ops.moveaxis(sample, -1, axis), dtype)


def _check_k(k, x, axis):
    """Checks `k` against the static number of categories along `axis`."""
    validation.check_axis_in_rank("axis", axis, len(x.shape))
    num_categories = x.shape[axis]
    if num_categories is None:
        raise validation.invalid_shape(
            "logits",
            "a statically known number of categories along `axis`",
            x.shape,
        )
    k = validation.check_integer("k", k, minimum=1)
    if k > num_categories:
        raise validation.invalid_value(
            "k",
            "an integer between 1 and the number of categories along "
            f"`axis` ({num_categories})",
            k,
        )


def _prepare(logits, k, axis, noise=None):
    """Float32 logits and noise with the category axis last, the dtype of
    `logits` and the checked axis."""
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    _check_k(k, logits, axis)
    if noise is not None:
        noise = given_or_uniform_noise(noise, logits.shape)
        noise = ops.moveaxis(noise, axis, -1)
    return ops.moveaxis(logits, axis, -1), noise, dtype, axis


def _keys(logits, seed, noise):
    """`logits - max(logits) + g` along the last axis, the max without
    gradient, `g` Gumbel noise from `noise` or a fresh uniform draw."""
    return _noisy_logits(logits, -1, seed, noise)


def _k_hot_top_k(x, k):
    """The k-hot of the k largest entries along the last axis of `x`, ties
    to the lowest index.

    From the k-th largest value: the entries above it, then as many of
    those equal to it as make k, first by index. The memory of `x`, where
    summing the one-hots of the top-k indices took k times as much.
    """
    if is_empty(x):
        return ops.zeros_like(x)
    values, _ = ops.top_k(x, k)
    kth_largest = values[..., k - 1 :]
    above = x > kth_largest
    equal = x == kth_largest
    missing = k - ops.sum(ops.cast(above, "int32"), axis=-1, keepdims=True)
    rank_among_equal = ops.cumsum(ops.cast(equal, "int32"), axis=-1)
    chosen = ops.logical_or(
        above, ops.logical_and(equal, rank_among_equal <= missing)
    )
    return ops.cast(chosen, "float32")


def _relaxed_top_k(keys, k, temperature):
    """Xie and Ermon's relaxed top-k of float32 keys along the last axis."""
    temperature = ops.cast(temperature, "float32")
    scores = keys
    total = ops.zeros_like(keys)
    for step in range(k):
        log_probabilities = softmax_kernels.log_softmax(
            scores / temperature, axis=-1
        )
        total = total + ops.exp(log_probabilities)
        if step + 1 < k:
            scores = scores + _log1m_softmax(log_probabilities)
    return total


def _log1m_softmax(log_probabilities):
    """log(1 - p) for p = exp(log_probabilities), a softmax on the last axis.

    `log1p(-p)` loses 1 - p where p rounds to 1 in float32; only the largest
    entry can exceed 1/2, and for it 1 - p is the sum of the others, whose
    `logsumexp` is exact. Each branch of the `where` gets inputs on which it
    is finite, so that neither sends NaN into the gradient.
    """
    if is_empty(log_probabilities):
        return log_probabilities
    is_largest = ops.cast(_one_hot_of_argmax(log_probabilities, -1), "bool")
    others = ops.logsumexp(
        ops.where(is_largest, -np.inf, log_probabilities),
        axis=-1,
        keepdims=True,
    )
    small = ops.where(is_largest, -1.0, log_probabilities)
    return ops.where(is_largest, others, ops.log1p(-ops.exp(small)))


def _with_nan_of_invalid(logits, keys, k, outputs):
    """`outputs`, NaN where the keys hold NaN (NaN or `+inf` logits, or all
    masked) or fewer than `k` categories are unmasked: no k-subset
    distribution exists there, and a top-k would pick masked ones."""
    if is_empty(logits):
        return outputs
    unmasked = ops.sum(
        ops.cast(ops.not_equal(logits, -np.inf), "float32"),
        axis=-1,
        keepdims=True,
    )
    invalid = ops.logical_or(
        ops.any(ops.isnan(keys), axis=-1, keepdims=True),
        ops.less(unmasked, float(k)),
    )
    return ops.where(invalid, np.nan, outputs)
