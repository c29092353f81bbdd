"""Fenchel-Young losses of the entmax family: the losses of sparse outputs.

A regularizer `Omega` on the simplex defines a prediction, the regularized
argmax `p = argmax_p <p, z> - Omega(p)` of the scores `z`, and a loss
(Blondel et al., 2020):

    L(z; y) = Omega*(z) - <z, y> + Omega(y) = <p - y, z> + Omega(y) - Omega(p)

with `Omega*` the convex conjugate of `Omega`. The loss is >= 0, is 0 exactly
when `p = y`, and its gradient in `z` is `p - y`. With the Tsallis
negentropy of index `alpha`,
`Omega(p) = (sum_i p_i ** alpha - 1) / (alpha * (alpha - 1))`, the prediction
is `entmax_bisect(z, alpha)`: `alpha=1` gives softmax and the cross-entropy
(in the limit, `Omega(p) = sum_i p_i log p_i`), `alpha=2` sparsemax and the
sparsemax loss (Martins and Astudillo, 2016), `alpha=1.5` the 1.5-entmax loss
(Peters et al., 2019).
"""

import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops import simplex
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.dtypes import is_empty


def tsallis_negentropy(p, alpha, axis=-1):
    """The Tsallis negentropy of index `alpha` of the slices of `p`.

    `Omega(p) = (sum_i p_i ** alpha - 1) / (alpha * (alpha - 1))` for
    `alpha > 1`, and its limit `sum_i p_i log p_i` (the negative Shannon
    entropy) at `alpha = 1`. It is 0 at a one-hot `p` and smallest,
    `(n ** (1 - alpha) - 1) / (alpha * (alpha - 1))`, at the uniform
    distribution over `n` categories. It is computed as
    `sum_i p_i * expm1((alpha - 1) * log(p_i)) / (alpha * (alpha - 1))`,
    equal on the simplex, where `sum_i p_i = 1`: each term is then exact near
    `alpha = 1`, where `sum_i p_i ** alpha - 1` would cancel, and exactly 0
    at `p_i = 0` and `p_i = 1`. A slice off the simplex with a negative or
    NaN entry gives NaN. Computed in float32; the result has the dtype of
    `p`.

    Args:
        p: float tensor of any rank >= 1, with slices on the simplex.
        alpha: float >= 1, the entropy index.
        axis: the category axis.

    Returns:
        A tensor of the shape of `p` without `axis`.

    Example:

    >>> p = keras.ops.convert_to_tensor([[1.0, 0.0], [0.5, 0.5]])
    >>> negentropy = keras_latent.ops.tsallis_negentropy(p, alpha=2.0)
    >>> keras.ops.convert_to_numpy(negentropy).tolist()  # (sum p^2 - 1) / 2
    [0.0, -0.25]

    References:
        - [Blondel et al., 2020](https://arxiv.org/abs/1901.02324)
    """
    alpha = validation.check_float_at_least("alpha", alpha, 1)
    axis = validation.check_axis("axis", axis)
    p, dtype = as_float32(p)
    validation.check_axis_in_rank("axis", axis, len(p.shape))
    return ops.cast(ops.sum(_negentropy_terms(p, alpha), axis=axis), dtype)


def _negentropy_terms(p, alpha):
    """The terms of `tsallis_negentropy`, entry by entry."""
    # `p == 0` rather than `p > 0` selects the zero terms, so that NaN and
    # negative entries reach the logarithm and give NaN.
    is_zero = ops.equal(p, 0.0)
    log_p = ops.log(ops.where(is_zero, 1.0, p))
    if alpha == 1.0:
        terms = p * log_p
    else:
        terms = p * ops.expm1((alpha - 1.0) * log_p) / (alpha * (alpha - 1.0))
    return ops.where(is_zero, 0.0, terms)


def sparsemax_loss(target, logits, axis=-1):
    """The sparsemax loss: the Fenchel-Young loss of sparsemax.

    `L(z; y) = <p - y, z> + (|y| ** 2 - |p| ** 2) / 2` with `p = sparsemax(z)`
    (Martins and Astudillo, 2016): the Fenchel-Young loss of the Tsallis
    negentropy of index 2, whose prediction is sparsemax. See
    `entmax_bisect_loss` for the properties every loss of the family shares.

    Args:
        target: float tensor of the shape of `logits` whose slices along
            `axis` are on the simplex: one-hot labels or label
            distributions.
        logits: float tensor of any rank >= 1, the scores.
        axis: the category axis.

    Returns:
        A tensor of the shape of `logits` without `axis`, in its dtype.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.0, -1.0]])
    >>> target = keras.ops.convert_to_tensor([[0.0, 1.0, 0.0]])
    >>> loss = keras_latent.ops.sparsemax_loss(target, logits)
    >>> keras.ops.convert_to_numpy(loss).tolist()  # 2 - 0 + 0 - 0
    [2.0]

    References:
        - [Martins and Astudillo, 2016](https://arxiv.org/abs/1602.02068)
    """
    return _fenchel_young_loss(target, logits, simplex.sparsemax, 2.0, axis)


def entmax15_loss(target, logits, axis=-1):
    """The 1.5-entmax loss: the Fenchel-Young loss of `entmax15`.

    `L(z; y) = <p - y, z> + Omega(y) - Omega(p)` with `p = entmax15(z)` and
    `Omega(p) = (sum_i p_i ** 1.5 - 1) / 0.75` (Peters et al., 2019). It is
    `entmax_bisect_loss` at `alpha=1.5`, with the exact sort-based
    threshold of `entmax15`.

    Args:
        target: float tensor of the shape of `logits` whose slices along
            `axis` are on the simplex: one-hot labels or label
            distributions.
        logits: float tensor of any rank >= 1, the scores.
        axis: the category axis.

    Returns:
        A tensor of the shape of `logits` without `axis`, in its dtype.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[4.0, 0.0, -1.0]])
    >>> target = keras.ops.convert_to_tensor([[1.0, 0.0, 0.0]])
    >>> loss = keras_latent.ops.entmax15_loss(target, logits)
    >>> keras.ops.convert_to_numpy(loss).tolist()  # p is the target
    [0.0]

    References:
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
    """
    return _fenchel_young_loss(target, logits, simplex.entmax15, 1.5, axis)


def entmax_bisect_loss(target, logits, alpha=1.5, axis=-1, n_iter=50):
    """The alpha-entmax loss: the Fenchel-Young loss of `entmax_bisect`.

    For scores `z` and a target `y` on the simplex,
    `L(z; y) = <p - y, z> + Omega(y) - Omega(p)`, where
    `p = entmax_bisect(z, alpha)` and `Omega` is the Tsallis negentropy of
    index `alpha` (`tsallis_negentropy`); `p` maximizes `<p, z> - Omega(p)`,
    so `L` is `Omega*(z) - <z, y> + Omega(y)` (Blondel et al., 2020). The
    loss is >= 0, and 0 exactly when the prediction `p` equals `y`: unlike
    the cross-entropy, a one-hot target is reached at finite scores, once
    the target's score leads the others by `1 / (alpha - 1)`. At `alpha=1`
    it is the softmax cross-entropy minus the entropy of `y`,
    `KL(y || softmax(z))`; `alpha=2` is `sparsemax_loss`.

    The gradient in `z` is `p - y`, exactly: it is carried by the term
    `<p - y, z>` with `p` held constant, so no gradient flows through the
    normalizer; the target gets none. The scores are shifted by their
    maximum first, so the loss does not change when a constant is added to
    them. Entries of `-inf`
    mask categories out, with zero gradient; a target with mass on a masked
    category has an infinite loss (its score is `-inf`), and so has a slice
    whose scores are all `-inf`. Scores holding NaN or `+inf`, and NaN or
    negative targets, give NaN. Computed in float32; the result has the
    dtype of `logits`.

    Args:
        target: float tensor of the shape of `logits` whose slices along
            `axis` are on the simplex: one-hot labels or label
            distributions.
        logits: float tensor of any rank >= 1, the scores.
        alpha: float >= 1, the entmax index.
        axis: the category axis.
        n_iter: integer >= 1, the bisection steps of `entmax_bisect`.

    Returns:
        A tensor of the shape of `logits` without `axis`, in its dtype.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[0.0, 0.0]])
    >>> target = keras.ops.convert_to_tensor([[1.0, 0.0]])
    >>> # p = [0.5, 0.5]: 0 + 0 - (2 * 0.5 ** 1.5 - 1) / 0.75
    >>> loss = keras_latent.ops.entmax_bisect_loss(target, logits, alpha=1.5)
    >>> keras.ops.convert_to_numpy(loss).tolist()
    [0.39052...]

    References:
        - [Blondel et al., 2020](https://arxiv.org/abs/1901.02324)
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
    """
    alpha = validation.check_float_at_least("alpha", alpha, 1)
    n_iter = validation.check_integer("n_iter", n_iter, 1)

    def normalizer(x, axis):
        return simplex.entmax_bisect(x, alpha=alpha, axis=axis, n_iter=n_iter)

    return _fenchel_young_loss(target, logits, normalizer, alpha, axis)


def _fenchel_young_loss(target, logits, normalizer, alpha, axis):
    """`<p - y, z> + Omega(y) - Omega(p)` with `p = normalizer(z)`."""
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    target, _ = as_float32(target)
    target = ops.stop_gradient(target)
    if len(logits.shape) == 0:
        raise validation.invalid_shape(
            "logits", "a tensor of rank >= 1", logits.shape
        )
    if not _same_shape(target.shape, logits.shape):
        expected = f"the shape of logits, {tuple(logits.shape)}"
        raise validation.invalid_shape("target", expected, target.shape)
    validation.check_axis_in_rank("axis", axis, len(logits.shape))
    logits = ops.moveaxis(logits, axis, -1)
    target = ops.moveaxis(target, axis, -1)
    if is_empty(logits):
        return ops.cast(ops.sum(ops.zeros_like(logits), axis=-1), dtype)
    prediction = ops.stop_gradient(normalizer(logits, axis=-1))
    masked = ops.equal(logits, -np.inf)
    logits_max = ops.stop_gradient(ops.amax(logits, axis=-1, keepdims=True))
    logits_max = ops.where(ops.isfinite(logits_max), logits_max, 0.0)
    # The shift changes no loss, as p - y sums to 0, but keeps large scores
    # from cancelling in the inner product; masked entries, where p = 0,
    # add nothing unless the target puts mass on them.
    shifted = ops.where(masked, 0.0, logits - logits_max)
    inner_product = ops.sum((prediction - target) * shifted, axis=-1)
    regularizers = ops.sum(
        _negentropy_terms(target, alpha) - _negentropy_terms(prediction, alpha),
        axis=-1,
    )
    target_on_mask = ops.any(
        ops.logical_and(masked, ops.not_equal(target, 0.0)), axis=-1
    )
    # The loss is >= 0; float32 rounding can leave it a few 1e-8 below, and
    # clipping the value alone keeps the gradient p - y. `where` rather
    # than `maximum` keeps NaN on every backend.
    value = inner_product + regularizers
    value = ops.where(value < 0.0, 0.0, value)
    value = ops.stop_gradient(ops.where(target_on_mask, np.inf, value))
    loss = value + inner_product - ops.stop_gradient(inner_product)
    return ops.cast(loss, dtype)


def _same_shape(shape, other):
    """Whether two shapes can be equal: the same rank, and the same size
    along every axis where both are known (symbolic tensors have None)."""
    return len(shape) == len(other) and all(
        size is None or other_size is None or size == other_size
        for size, other_size in zip(shape, other, strict=True)
    )
