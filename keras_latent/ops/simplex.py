"""Normalizers onto the probability simplex: softmax, sparsemax, entmax.

Each normalizer maps the slices of a tensor along an axis onto the
simplex. They share one pipeline (`_normalize`) and so one rule for the
edges: entries of `-inf` are masked categories, with output 0 and zero
gradient; a slice whose entries are all `-inf` has no distribution and
gives zeros; a slice holding NaN or `+inf` gives NaN. Each normalizer only
says how it maps a slice whose maximum is 0.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops import softmax_kernels
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.dtypes import is_empty

# Every normalizer p = [x - tau]_+^(1 / (alpha - 1)) of the entmax family,
# applied to x = (alpha - 1) * logits with max(x) = 0, has p_max <= 1 and so
# a threshold tau >= -1. Entries below -1 are never in the support; raising
# them (and -inf masks) to this floor changes no output and keeps infinities
# out of every sum, and so out of values and gradients.
SUPPORT_FLOOR = -2.0
# Caps the gradient weights p ** (2 - alpha) at about 1e26. A weight only
# comes near it for alpha > 2 and an entry just inside the support, whose
# Jacobian row is then set by the other weights, not by its own.
MAX_LOG_WEIGHT = 60.0
# The second entmax bisection (see `_entmax_bisect_rows`) searches a bracket
# widened on each side by a few float32 spacings of numbers near 1, since
# the first one cannot resolve the threshold more finely, and halves it
# FINE_ITERATIONS times, down to about 1e-15.
FINE_BRACKET = 2.0**-22
FINE_ITERATIONS = 30
# The sizes of the partial sorts (top-k) that sparsemax and entmax15 try,
# in turn, before a full sort, on PyTorch (see `_threshold_by_sorting`).
# On one CPU thread a partial sort of 64 or 128 of 512 entries costs about
# a quarter of the full sort. 64 holds the entmax15 supports of standard
# normal logits (at most 36 of 512 in 1024 rows), which 32 would not:
# trying 32 first cost more than it saved (entmax15 of 16384 rows of 256,
# forward and backward: 187 ms from 64, 249 ms from 32 then 64).
PARTIAL_SORT_SIZES = (64, 128)
# The most halvings of the bisection that finds the sparsemax and entmax15
# supports on JAX and TensorFlow (see `_bisects_support`). It stops earlier,
# once the threshold is resolved to float32; 50 halvings of the bracket
# [-1, 0] resolve it to 1e-15, below the float32 spacing of any threshold
# of a row of fewer than 1e8 entries (the threshold is at most -1 / n).
SUPPORT_BISECTIONS = 50


def _normalize(normalize_last_axis, x, axis, row_parameter=None):
    """Applies a normalizer along `axis` with the shared masking rule.

    `normalize_last_axis(x, x_max)` maps the rows of a float32 tensor `x`
    along its last axis, whose entries are finite or `-inf` and whose row
    maxima `x_max` (kept with the last axis of size 1, without gradient)
    are finite. The leading axes are flattened into one before it is
    called, so that sorting works for any rank on every backend
    (TensorFlow sorts tensors of rank <= 5 only).

    A `row_parameter` (a float32 tensor of the rank of `x`, broadcastable
    against it, of size 1 along `axis`) is laid out as one value per row,
    of shape `(rows, 1)`, and passed as a third argument:
    `normalize_last_axis(x, x_max, row_parameter)`. A row whose parameter
    is NaN gives NaN, like a row holding NaN.
    """
    axis = validation.check_axis("axis", axis)
    x, dtype = as_float32(x)
    if len(x.shape) == 0:
        raise validation.invalid_shape("x", "a tensor of rank >= 1", x.shape)
    validation.check_axis_in_rank("axis", axis, len(x.shape))
    if is_empty(x):
        return ops.cast(x, dtype)
    x = ops.moveaxis(x, axis, -1)
    rows, restore_shape = _as_rows(x)
    # One comparison finds NaN and +inf alike (both fail `< inf`); the row
    # maximum cannot, as XLA's reductions skip NaN.
    invalid = ops.logical_not(ops.all(rows < np.inf, axis=-1, keepdims=True))
    parameters = ()
    if row_parameter is not None:
        # Adding zeros of the rows' shape broadcasts the parameter to one
        # value per row, also where that shape is only known symbolically.
        row_parameter = ops.moveaxis(row_parameter, axis, -1) + ops.zeros_like(
            x[..., :1]
        )
        if restore_shape is not None:
            row_parameter = ops.reshape(row_parameter, (-1, 1))
        invalid = ops.logical_or(invalid, ops.isnan(row_parameter))
        parameters = (row_parameter,)
    rows_max = ops.stop_gradient(ops.amax(rows, axis=-1, keepdims=True))
    usable = ops.logical_and(rows_max > -np.inf, ops.logical_not(invalid))
    rows = ops.where(usable, rows, 0.0)
    outputs = normalize_last_axis(
        rows, ops.where(usable, rows_max, 0.0), *parameters
    )
    # An unusable row is all masked (zeros) or invalid (NaN).
    outputs = ops.where(usable, outputs, ops.where(invalid, np.nan, 0.0))
    if restore_shape is not None:
        outputs = ops.reshape(outputs, restore_shape)
    return ops.cast(ops.moveaxis(outputs, -1, axis), dtype)


def _as_rows(x):
    """`x` as a matrix of rows along its last axis, and the shape to restore.

    A symbolic tensor (a `keras.Input`) keeps an unknown dimension as None,
    which a reshape can restore only as its single -1; with two or more
    unknown dimensions `x` is kept as it is (and None returned).
    """
    shape = ops.shape(x)
    if len(shape) == 2:
        return x, None
    unknown = sum(dimension is None for dimension in shape)
    if unknown > 1 or (unknown == 1 and shape[-1] is None):
        return x, None
    restore_shape = tuple(
        -1 if dimension is None else dimension for dimension in shape
    )
    return ops.reshape(x, (-1, shape[-1])), restore_shape


def _sort_descending(x):
    """`x` sorted along its last axis from largest to smallest."""
    return ops.flip(ops.sort(x, axis=-1), axis=-1)


def _bisects_support(by_bisection):
    """Whether sparsemax and entmax15 find their supports by bisection
    rather than by sorting: `by_bisection` when given (for tests), else by
    backend.

    On JAX and TensorFlow, XLA's CPU sort alone takes 58 ms for 1024 rows
    of 512 on one thread, twice the `entmax` package's whole sparsemax
    forward and backward, while the bisection's passes over the rows take
    a fraction of that. PyTorch sorts fast and sorts in part
    (`_threshold_by_sorting`), so it keeps the sort.
    """
    if by_bisection is not None:
        return by_bisection
    return keras.config.backend() in ("jax", "tensorflow")


def _bisected_support(x, exponent):
    """The entries of each row of `x` (with maximum 0) above the threshold
    `t` with `sum(max(x - t, 0) ** exponent) = 1`, found by bisection.

    The bisection's lower end is at or below the threshold, within about
    one float32 spacing, so the support holds the true one and at most
    entries within that spacing of the threshold; those get an output of
    about 1e-7 or less, clamped at 0, from the threshold recomputed on the
    support.
    """
    low, _ = _bisect(
        ops.full_like(x[..., :1], -1.0),
        ops.ones_like(x[..., :1]),
        exponent,
        x,
        SUPPORT_BISECTIONS,
    )
    return x > low


def _threshold_by_sorting(x, threshold_of_largest, full_threshold):
    """The threshold of sparsemax or entmax15 from as few sorted entries as
    the supports need.

    For each partial-sort size `k` in turn (only those at most a quarter of
    the row), `threshold_of_largest` finds the threshold `t` of each row
    from its `k` largest entries. That is the threshold of the whole row
    when the `k`-th largest entry is at most `t`, for then no other entry
    adds to the mass at `t`. If every row passes, `t` is the answer;
    otherwise the next size is tried, and after the last,
    `full_threshold(x)` sorts every entry. The choice is one for all rows,
    so no row is ever solved from too few entries. Like the `k` argument
    of the `entmax` package, but without a gather of the unsolved rows,
    whose shape would depend on the values.
    """
    row_size = x.shape[-1]
    sizes = [
        size
        for size in PARTIAL_SORT_SIZES
        if row_size is not None and 4 * size <= row_size
    ]
    if keras.config.backend() != "torch" or _static_control_flow(x):
        # XLA (JAX, TensorFlow) compiles `ops.cond` but on a CPU the full
        # sort of the untaken branch still costs its whole time (JAX, 1024
        # rows of 512: the threshold from the top 32 takes 5 ms alone, 33
        # ms with the conditional sort beside it), so there a partial sort
        # would only add its own cost.
        sizes = []

    def threshold_from(level):
        if level == len(sizes):
            return full_threshold(x)
        largest, _ = ops.top_k(x, sizes[level])
        threshold = threshold_of_largest(largest)
        solved = ops.all(ops.stop_gradient(largest[..., -1:] <= threshold))
        return ops.cond(
            solved, lambda: threshold, lambda: threshold_from(level + 1)
        )

    return threshold_from(0)


def softmax(x, axis=-1):
    """Softmax along `axis`, with zeros for a fully masked slice.

    `softmax(x)_i = exp(x_i) / sum_j exp(x_j)`, computed after subtracting
    the maximum of each slice. It is `keras.ops.softmax` with the masking
    rule of every normalizer of `keras_latent`: entries of `-inf` get 0 and a
    zero gradient, a slice whose entries are all `-inf` gives zeros (where
    `keras.ops.softmax` gives NaN), and a slice holding NaN or `+inf` gives
    NaN. The computation runs in float32; the result has the dtype of `x`.

    Args:
        x: float tensor of any rank >= 1.
        axis: the category axis.

    Returns:
        A tensor with the shape and dtype of `x` whose slices along `axis`
        are on the probability simplex (or zero where fully masked).

    Example:

    >>> x = keras.ops.convert_to_tensor([[0.0, 0.0], [-np.inf, -np.inf]])
    >>> keras.ops.convert_to_numpy(keras_latent.ops.softmax(x))
    array([[0.5, 0.5],
           [0. , 0. ]], dtype=float32)
    """
    return _normalize(_softmax_rows, x, axis)


def _softmax_rows(x, x_max):
    return softmax_kernels.softmax(x - x_max, axis=-1)


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
    On PyTorch, slices of 256 entries or more are sorted only in part (the
    64, then 128, largest) when every slice's support is among them, as
    with the `k` argument of the `entmax` package; otherwise in full. On
    JAX and TensorFlow, whose sort is slow on CPU, the support is found by
    bisection instead and `tau` recomputed from it as above; an entry
    within float32 resolution of `tau` may then fall on either side, with
    an output of about 1e-7 or less.

    The result does not change when a constant is added to a slice; the
    maximum is subtracted first, so logits of size 1e4 are exact. Entries of
    `-inf` mask categories out: they get exactly 0 and a zero gradient. A
    slice with every entry `-inf` has no distribution; it gives zeros. A
    slice holding NaN or `+inf` gives NaN.

    Gradients are exact almost everywhere: the Jacobian on the support `S`
    is `diag(s) - s s^T / |S|`, with `s` the indicator of `S`, and zero
    elsewhere. Autodiff through the threshold, a function of the entries
    in the support, gives that Jacobian. The computation runs in float32;
    the result has the dtype of `x`.

    Args:
        x: float tensor of any rank >= 1.
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
    return _normalize(_sparsemax_rows, x, axis)


def _sparsemax_rows(x, x_max, by_bisection=None):
    x = ops.maximum(x - x_max, SUPPORT_FLOOR)
    if _bisects_support(by_bisection):
        threshold = _sparsemax_threshold_on_support(
            x, _bisected_support(x, 1.0)
        )
    else:
        threshold = _threshold_by_sorting(
            x, _sparsemax_threshold_of_sorted, _sparsemax_full_threshold
        )
    return ops.relu(x - threshold)


def _sparsemax_threshold_of_sorted(x_sorted):
    """The sparsemax threshold from the largest entries of each row, sorted
    from largest to smallest, when the support is among them.

    With `c_k` the sum of the `k` largest entries, `(c_k - 1) / k` grows
    with `k` exactly while the `k`-th largest entry is in the support (the
    condition of Alg. 1), so its maximum over `k` is the threshold. Taking
    the maximum needs no support count and no gather, and its gradient
    reaches the entries of the support only, each with weight `1 / |S|`.
    """
    rank = ops.cumsum(ops.ones_like(x_sorted), axis=-1)
    candidates = (ops.cumsum(x_sorted, axis=-1) - 1.0) / rank
    return ops.amax(candidates, axis=-1, keepdims=True)


def _sparsemax_full_threshold(x):
    """The threshold from a full sort, without gradient, then recomputed
    from the entries of the support, through which autodiff gives the
    sparsemax Jacobian (cheaper than differentiating the sort)."""
    support = x > _sparsemax_threshold_of_sorted(
        _sort_descending(ops.stop_gradient(x))
    )
    return _sparsemax_threshold_on_support(x, support)


def _sparsemax_threshold_on_support(x, support):
    """`(sum_S x_i - 1) / |S|` on the support `S` of each row (the entries
    of `x` where `support` is true), differentiable in `x`."""
    support_size = ops.sum(ops.cast(support, "float32"), axis=-1, keepdims=True)
    support_sum = ops.sum(ops.where(support, x, 0.0), axis=-1, keepdims=True)
    return (support_sum - 1.0) / support_size


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
    As for `sparsemax`, on PyTorch slices of 256 entries or more are sorted
    only in part where the supports allow, and on JAX and TensorFlow the
    support is found by bisection, then `tau` recomputed from it.

    The result does not change when a constant is added to a slice; the
    maximum is subtracted first, so logits of size 1e4 are exact. Entries of
    `-inf` mask categories out: they get exactly 0 and a zero gradient. A
    slice with every entry `-inf` has no distribution; it gives zeros. A
    slice holding NaN or `+inf` gives NaN.

    Gradients are exact almost everywhere: the Jacobian is
    `diag(g) - g g^T / sum(g)` with `g = sqrt(p)`, `p` the output. The
    support is found without gradient, then the threshold is recomputed
    from its entries, through which autodiff gives that Jacobian. The
    computation runs in float32; the result has the dtype of `x`.

    Args:
        x: float tensor of any rank >= 1.
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
    return _normalize(_entmax15_rows, x, axis)


def _entmax15_rows(x, x_max, by_bisection=None):
    x = ops.maximum((x - x_max) / 2.0, SUPPORT_FLOOR)
    if _bisects_support(by_bisection):
        threshold = _entmax15_threshold_on_support(x, _bisected_support(x, 2.0))
    else:
        threshold = _threshold_by_sorting(
            x, _entmax15_threshold_of_sorted, _entmax15_full_threshold
        )
    return ops.square(ops.relu(x - threshold))


def _entmax15_sorted_threshold(x_sorted):
    """The 1.5-entmax threshold of each row (Alg. 2), from its largest
    entries sorted from largest to smallest, when the support is among
    them; without gradient."""
    x_sorted = ops.stop_gradient(x_sorted)
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


def _entmax15_threshold_on_support(x, support):
    """The smaller root `tau` of `sum_S (x_i - tau) ** 2 = 1` on the support
    `S` of each row (the entries of `x` where `support` is true).

    It is `mean_S - sqrt((1 - ss_S) / k)`, with the sum of squared
    deviations `ss_S` taken about the mean (not as a difference of sums,
    which cancels), and differentiable in `x`.
    """
    support_size = ops.sum(ops.cast(support, "float32"), axis=-1, keepdims=True)
    mean = ops.sum(ops.where(support, x, 0.0), axis=-1, keepdims=True) / (
        support_size
    )
    squared_deviations = ops.where(support, ops.square(x - mean), 0.0)
    sum_squared_deviations = ops.sum(squared_deviations, axis=-1, keepdims=True)
    # On the true support the root's discriminant is (mean - tau) ** 2,
    # at least 1 / k ** 2, so the square root never meets 0.
    return mean - ops.sqrt((1.0 - sum_squared_deviations) / support_size)


def _entmax15_threshold_of_sorted(largest):
    support = largest > _entmax15_sorted_threshold(largest)
    return _entmax15_threshold_on_support(largest, support)


def _entmax15_full_threshold(x):
    support = x > _entmax15_sorted_threshold(_sort_descending(x))
    return _entmax15_threshold_on_support(x, support)


def entmax_bisect(x, alpha=1.5, axis=-1, n_iter=50):
    """Alpha-entmax for any `alpha >= 1`, with the threshold found by bisection.

    Along `axis`, `entmax(x) = max((alpha - 1) * x - tau, 0) ** (1 / (alpha -
    1))`, where the threshold `tau` is the one number that makes the result
    sum to 1. It maximizes `p . x` plus the Tsallis entropy of index `alpha`
    over the simplex. At `alpha=1` it is softmax (computed as such, exactly);
    at `alpha=2` it is sparsemax; `alpha=1.5` is `entmax15`. The larger
    `alpha`, the sparser the output: for `alpha > 1` entries can be exactly 0.

    `alpha` is a Python float, or a float tensor of one alpha per slice (per
    row, group or attention head): of the rank of `x` or lower, broadcastable
    against `x`, and of size 1 along `axis`; for example of shape
    `(groups, 1)` for `x` of shape `(batch, groups, categories)`. A tensor's
    values are checked inside the computation, not at the call: a slice
    whose alpha is exactly 1 gets the softmax (computed from the same
    log-space output as the others, to about 1e-7), and one whose alpha is
    below 1 or NaN gets NaN.

    The threshold lies within 1 below the largest entry of `(alpha - 1) * x`
    and is bisected `n_iter` times, without gradient. A second bisection
    then resolves what float32 cannot hold in the threshold itself: it
    searches the small offset of the distances `x_i - tau / (alpha - 1)`,
    formed in the unshifted input where subtracting nearby numbers is
    exact. The output is then normalized, so that it sums to 1 whatever
    `n_iter` is. Measured against the `entmax` package in float64 on the
    same float32 input (30,000 random rows), the error is below 5e-7 for
    any `alpha` from just above 1 up to 3.5. Beyond, an entry just inside
    the support is resolved only to the float32 spacing of that offset:
    errors reach a few 1e-6 at `alpha=4` and about 1e-4 at 5. From about
    10 on, an entry's output can hang on its distance to the threshold
    below what even float64 resolves: on 40 rows of 6 standard normal
    logits the error is 2e-2 at `alpha=10` and 0.2 at 30, as for the
    `entmax` package in float64 (against a 400-digit reference).

    The result does not change when a constant is added to a slice.
    Entries of `-inf` mask categories out: they get exactly 0 and a zero
    gradient. A slice with every entry `-inf` has no distribution; it gives
    zeros. A slice holding NaN or `+inf` gives NaN.

    The gradient is not taken through the iterations but given in closed
    form (Peters et al., 2019): the Jacobian is `diag(g) - g g^T / sum(g)`
    with `g = p ** (2 - alpha)` on the support of the output `p` and 0 off
    it. For a tensor `alpha` the gradient with respect to alpha is the
    closed form of Correia et al. (2019, Prop. 1): with `p~ = g / sum(g)`
    and `H = sum(p log p)` over the support,
    `dp_i / dalpha = (p_i - p~_i) / (alpha - 1) ** 2 - (p_i log p_i -
    p~_i H) / (alpha - 1)`, 0 off the support. It is computed in a form
    without the cancellations of these two terms, so it stays exact as
    alpha approaches 1, where it tends to its (finite) limit, which a
    slice at `alpha=1` gets. Both are first-order gradients: second
    derivatives come out as zero. The computation runs in float32; the
    result has the dtype of `x`.

    Args:
        x: float tensor of any rank >= 1.
        alpha: a float >= 1, the entmax index, or a float tensor of them,
            one per slice along `axis` (see above).
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
    >>> x = keras.ops.convert_to_tensor([[-2.0, 0.0, 0.5], [-2.0, 0.0, 0.5]])
    >>> alpha = keras.ops.convert_to_tensor([[1.5], [2.0]])
    >>> p = keras_latent.ops.entmax_bisect(x, alpha=alpha)
    >>> keras.ops.convert_to_numpy(p).round(3)
    array([[0.   , 0.326, 0.674],
           [0.   , 0.25 , 0.75 ]], dtype=float32)

    References:
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
        - [Blondel et al., 2020](https://arxiv.org/abs/1901.02324)
        - [Correia et al., 2019](https://arxiv.org/abs/1909.00015)
    """
    n_iter = validation.check_integer("n_iter", n_iter, 1)
    if validation.is_python_number(alpha) or not hasattr(alpha, "shape"):
        alpha = validation.check_float_at_least("alpha", alpha, 1)
        if alpha == 1.0:
            return _normalize(_softmax_rows, x, axis)

        def entmax_rows(rows, rows_max):
            return _entmax_bisect_rows(rows, rows_max, alpha, n_iter)

        return _normalize(entmax_rows, x, axis)
    x = ops.convert_to_tensor(x)
    axis = validation.check_axis_in_rank(
        "axis", validation.check_axis("axis", axis), len(x.shape)
    )
    alpha = _alpha_tensor(alpha, x, axis % len(x.shape))

    def entmax_rows_per_alpha(rows, rows_max, alpha_rows):
        return _entmax_bisect_rows(rows, rows_max, alpha_rows, n_iter)

    return _normalize(entmax_rows_per_alpha, x, axis, row_parameter=alpha)


def _alpha_tensor(alpha, x, axis):
    """A tensor `alpha` checked against `x` and raised to its rank, in
    float32, with NaN where it is below 1 (see `entmax_bisect`)."""
    dtype = keras.backend.standardize_dtype(alpha.dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise validation.invalid_value(
            "alpha", "a float >= 1 or a float tensor", alpha
        )
    rank = len(x.shape)
    shape = tuple(alpha.shape)
    category_dimension = shape[axis - rank] if len(shape) >= rank - axis else 1
    # Aligned from the last axis, as broadcasting aligns them.
    mismatched = any(
        size not in (1, None) and x_size is not None and size != x_size
        for size, x_size in zip(
            reversed(shape), reversed(x.shape), strict=False
        )
    )
    if len(shape) > rank or category_dimension not in (1, None) or mismatched:
        raise validation.invalid_shape(
            "alpha",
            f"a tensor broadcastable against x (shape {tuple(x.shape)}) of "
            f"size 1 along axis {axis}",
            shape,
        )
    alpha = ops.cast(alpha, "float32")
    for _ in range(rank - len(shape)):
        alpha = ops.expand_dims(alpha, 0)
    return ops.where(alpha >= 1.0, alpha, np.nan)


def _shift_with_error(x, x_max):
    """`x - x_max` rounded, and the rounding error, so that their sum is
    exact (Knuth's two-sum); the error is 0 for `-inf` entries."""
    shifted = x - x_max
    x_part = shifted + x_max
    max_part = shifted - x_part
    error = (x - x_part) + (-x_max - max_part)
    return shifted, ops.where(ops.isfinite(shifted), error, 0.0)


def _bisect(low, width, exponent, x, n_iter):
    """The threshold `t` in `[low, low + width]` with
    `sum(max(x - t, 0) ** exponent) = 1`, after `n_iter` halvings.

    Returns `low` and `width` after the halvings. The loop stops early once
    halving the width can no longer move `low` in float32 (`low + width / 2
    == low` in every row; rounding is monotone, so no later halving could):
    the result is that of all `n_iter` halvings, after about 25 instead of
    50 when the threshold is near -1 (but see `_traced_by_torch`). No
    gradient flows through it; the callers give theirs in closed form.
    `exponent` is a Python number or a tensor of one per row.
    """
    low, width, x = (ops.stop_gradient(value) for value in (low, width, x))
    if isinstance(exponent, (int, float)):
        state = (low, width, x)
        halve = _halving(float(exponent))
    else:
        state = (low, width, x, ops.stop_gradient(exponent))
        halve = _halve_by_exponent
    if _traced_by_torch():
        low, *_ = ops.fori_loop(
            0, n_iter, lambda _, state: halve(*state), state
        )
    else:
        low, *_ = ops.while_loop(
            _can_move, halve, state, maximum_iterations=n_iter
        )
    return low, width * 0.5**n_iter


def _static_control_flow(x):
    """Whether the threshold of `x` must be found without branching on its
    values: `x` is symbolic (a Keras functional model cannot hold the
    closures of `ops.cond`), or PyTorch traces it (see `_traced_by_torch`).
    """
    return isinstance(x, keras.KerasTensor) or _traced_by_torch()


def _traced_by_torch():
    """Whether PyTorch is tracing the computation (`torch.jit.trace`,
    `torch.export`, `torch.compile`, and so ONNX export).

    A tracer records Python control flow once, so a branch or a loop count
    would be frozen at those of the example input; there the threshold
    takes its static paths (a full sort, every halving). The other backends
    trace `ops.cond` and `ops.while_loop` as such.
    """
    if keras.config.backend() != "torch":
        return False
    import torch

    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def _can_move(low, width, *_):
    """Whether halving `width` still moves `low` in some row."""
    return ops.any(ops.not_equal(low + width / 2.0, low))


def _halve_by_exponent(low, width, x, exponent):
    """One bisection step, with the exponent of each row a tensor."""
    width = width / 2.0
    middle = low + width
    mass = ops.sum(
        ops.power(ops.relu(x - middle), exponent), axis=-1, keepdims=True
    )
    return ops.where(mass >= 1.0, middle, low), width, x, exponent


def _halving(exponent):
    """One bisection step for the entmax threshold with a fixed `exponent`.

    The mass `sum(max(x - t, 0) ** exponent)` is 1 or more at `t = low` and
    less than 1 at `low + width`. One function per exponent, so that JAX
    reuses its traced loop from call to call; the powers 1 and 2 (alpha 2
    and 1.5) skip the general power, which costs many times a product.
    """

    def power(distances):
        if exponent == 1.0:
            return distances
        if exponent == 2.0:
            return ops.square(distances)
        return ops.power(distances, exponent)

    def halve(low, width, x):
        width = width / 2.0
        middle = low + width
        mass = ops.sum(power(ops.relu(x - middle)), axis=-1, keepdims=True)
        return ops.where(mass >= 1.0, middle, low), width, x

    return _HALVINGS.setdefault(exponent, halve)


# `_halving`'s steps by exponent (a dict, not `functools.lru_cache`, which
# `torch.compile` warns it cannot see through).
_HALVINGS = {}


def _entmax_bisect_rows(x, x_max, alpha, n_iter):
    """Alpha-entmax of the rows of float32 `x`, for a float `alpha > 1` or a
    tensor of shape `(rows, 1)` of one alpha >= 1 per row."""
    alpha_per_row = not isinstance(alpha, float)
    alpha_with_gradient = alpha
    if alpha_per_row:
        # The rows at alpha = 1 take the softmax below; meanwhile any alpha
        # > 1 keeps their bisection finite.
        is_softmax = ops.equal(alpha, 1.0)
        alpha = ops.where(is_softmax, 2.0, ops.stop_gradient(alpha))
    exponent = 1.0 / (alpha - 1.0)
    shifted, error = _shift_with_error(ops.stop_gradient(x), x_max)
    scaled = ops.maximum((alpha - 1.0) * shifted, SUPPORT_FLOOR)
    # max(scaled) = 0, and the threshold lies in [-1, 0): at -1 the largest
    # entry alone has mass 1.
    low = ops.full_like(scaled[..., :1], -1.0)
    low, width = _bisect(low, ops.ones_like(low), exponent, scaled, n_iter)
    # The bisected threshold is a float32 number near -1: the distance to
    # it of an entry just inside the support would keep an absolute
    # rounding error of about 6e-8, which the power 1 / (alpha - 1) turns
    # into errors of 1e-4 for alpha > 2. The distances are formed instead
    # in the unshifted space, where subtracting two nearby numbers is
    # exact, with the rounding error of the shift added back; a second
    # bisection then finds the small remaining offset, resolved relative
    # to its own size.
    distances = (alpha - 1.0) * ((shifted - low / (alpha - 1.0)) + error)
    offset_low = ops.full_like(low, -FINE_BRACKET)
    offset, _ = _bisect(
        offset_low,
        width + 2.0 * FINE_BRACKET,
        exponent,
        distances,
        FINE_ITERATIONS,
    )
    distances = distances - offset
    in_support = distances > 0.0
    largest = ops.amax(distances, axis=-1, keepdims=True)
    # p_i is proportional to (distance_i / largest) ** exponent. Near the
    # largest entry the ratio is 1 + scaled_i / largest, whose log1p does
    # not multiply the rounding of the ratio by the exponent (large for
    # alpha near 1); far from it the distance itself is the exact one.
    relative = ops.where(in_support, (alpha - 1.0) * shifted / largest, 0.0)
    near = relative > -0.5
    log_ratio = ops.where(
        near,
        ops.log1p(ops.where(near, relative, 0.0)),
        ops.log(ops.where(in_support, distances, 1.0)) - ops.log(largest),
    )
    log_unnormalized = ops.where(in_support, exponent * log_ratio, -np.inf)
    log_probabilities = log_unnormalized - ops.logsumexp(
        log_unnormalized, axis=-1, keepdims=True
    )
    if alpha_per_row:
        softmax_log_probabilities = softmax_kernels.log_softmax(
            ops.stop_gradient(x) - x_max, axis=-1
        )
        log_probabilities = ops.where(
            is_softmax, softmax_log_probabilities, log_probabilities
        )
        in_support = ops.where(is_softmax, x > -np.inf, in_support)
    probabilities = ops.exp(log_probabilities)
    # The gradient term multiplies the logits by weights up to 1e26: shifted
    # by their maximum (without gradient, so the Jacobian is the same) they
    # lie within 1 / (alpha - 1) of 0 on the support, where logits near the
    # float32 limit would overflow to inf - inf, NaN.
    return probabilities + _closed_form_gradient_term(
        x - x_max, log_probabilities, in_support, alpha_with_gradient
    )


def _closed_form_gradient_term(x, log_probabilities, in_support, alpha):
    """A term that is exactly zero forward and carries the entmax gradients.

    The Jacobian with respect to the logits `x` is carried by a term that
    is linear in `x`. Its weights p ** (2 - alpha) are taken in log space:
    for alpha > 2 they grow without bound at the edge of the support. A
    tensor `alpha` (one per row) adds a term linear in `alpha` whose
    slope is `dp / dalpha` (see `_alpha_derivative`).
    """
    alpha_per_row = not isinstance(alpha, float)
    alpha_value = ops.stop_gradient(alpha) if alpha_per_row else alpha
    log_weights = (2.0 - alpha_value) * ops.where(
        in_support, log_probabilities, 0.0
    )
    weights = ops.where(
        in_support, ops.exp(ops.minimum(log_weights, MAX_LOG_WEIGHT)), 0.0
    )
    x = ops.where(in_support, x, 0.0)
    weighted_mean = ops.sum(weights * x, axis=-1, keepdims=True) / ops.sum(
        weights, axis=-1, keepdims=True
    )
    linear = weights * (x - weighted_mean)
    if alpha_per_row:
        derivative = _alpha_derivative(
            log_probabilities, in_support, alpha_value
        )
        linear = linear + derivative * alpha
    return linear - ops.stop_gradient(linear)


def _alpha_derivative(log_probabilities, in_support, alpha):
    """`dp / dalpha` of alpha-entmax at its output, row by row.

    Correia et al. (2019, Prop. 1) give, with `e = alpha - 1`, `p~ = p **
    (2 - alpha) / sum(p ** (2 - alpha))` and `H = sum(p log p)`:
    `dp_i / dalpha = (p_i - p~_i) / e ** 2 - (p_i log p_i - p~_i H) / e`.
    For alpha near 1 both terms grow like 1 / e and cancel, and `p - p~`
    is itself a difference of nearby numbers. With `d_i = log p_i - H`,
    `u_i = -e d_i` and `q_i = p_i (exp(u_i) - 1 - u_i) / e ** 2`, the same
    derivative is
    `((1 - e H) (p_i R - q_i) - p_i d_i (e R + H)) / (1 + e ** 2 R)`,
    `R = sum(q)`, in which every term is computed without cancellation
    (`q` by its series where `|u| < 1/4`), and which at `e = 0` is the
    limit of the derivative. `exp(u_i)` is capped as the weights of
    `_closed_form_gradient_term` are.
    """
    epsilon = alpha - 1.0
    log_p = ops.where(in_support, log_probabilities, 0.0)
    p = ops.where(in_support, ops.exp(log_p), 0.0)
    negative_entropy = ops.sum(p * log_p, axis=-1, keepdims=True)
    deviation = log_p - negative_entropy
    exponent = -epsilon * deviation
    small = ops.abs(exponent) < 0.25
    # (exp(u) - 1 - u) / u ** 2, to 1e-8 relative where |u| < 1/4.
    series = exponent / 5040.0 + 1.0 / 720.0
    for coefficient in (1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5):
        series = series * exponent + coefficient
    direct = ops.exp(ops.minimum(log_p + exponent, MAX_LOG_WEIGHT)) - p * (
        1.0 + exponent
    )
    q = ops.where(
        small,
        p * ops.square(deviation) * series,
        direct / ops.where(small, 1.0, ops.square(epsilon)),
    )
    q = ops.where(in_support, q, 0.0)
    q_sum = ops.sum(q, axis=-1, keepdims=True)
    derivative = (1.0 - epsilon * negative_entropy) * (p * q_sum - q) - (
        p * deviation * (epsilon * q_sum + negative_entropy)
    )
    derivative = derivative / (1.0 + ops.square(epsilon) * q_sum)
    return ops.where(in_support, derivative, 0.0)


# The `alpha` of a layer whose alphas are trainable weights.
LEARNED = "learned"


def alpha_from_logits(alpha_logits):
    """The learned entmax alphas `1 + sigmoid(alpha_logits)`, in (1, 2).

    The parametrization of Correia et al. (2019, sec. 3.2): a logit of 0 is
    `alpha=1.5`; the range runs from the softmax (the limit at 1) to
    sparsemax (2) and keeps the alphas where `entmax_bisect` is accurate.
    In float32 a logit below about -16.6 rounds alpha to exactly 1, which
    `entmax_bisect` maps to the softmax with the limit of its gradient.
    """
    return 1.0 + ops.sigmoid(ops.cast(alpha_logits, "float32"))


# Each takes `(x, axis=-1)`; `"entmax"` also takes `alpha`, a float or a
# tensor (see `entmax_bisect`).
NORMALIZERS = {
    "softmax": softmax,
    "sparsemax": sparsemax,
    "entmax15": entmax15,
    "entmax": entmax_bisect,
}


def check_normalizer(normalizer):
    """Checks a normalizer name against `NORMALIZERS`; returns it."""
    return validation.check_choice("normalizer", normalizer, tuple(NORMALIZERS))


def check_alpha(alpha, normalizer, learnable=False):
    """Checks the `alpha` of a normalizer; returns the one to use.

    `alpha` is for `"entmax"` only: None there means 1.5; a float must be
    >= 1; a tensor passes (its values are checked by `entmax_bisect`). A
    layer's alpha is `learnable`: a float or the string `"learned"`, never
    a tensor. With any other normalizer, `alpha` must be None, and None is
    returned.
    """
    if normalizer != "entmax":
        if alpha is not None:
            raise validation.invalid_value(
                "alpha",
                f"None with normalizer={normalizer!r} (alpha is for "
                'normalizer="entmax")',
                alpha,
            )
        return None
    if alpha is None:
        return 1.5
    if learnable and isinstance(alpha, str) and alpha == LEARNED:
        return alpha
    is_tensor = hasattr(alpha, "shape") and not validation.is_python_number(
        alpha
    )
    if is_tensor and not learnable:
        return alpha
    if (
        not validation.is_python_number(alpha)
        or not math.isfinite(alpha)
        or alpha < 1
    ):
        expected = (
            'a finite float value >= 1 or "learned"'
            if learnable
            else "a finite float value >= 1 or a float tensor"
        )
        raise validation.invalid_value("alpha", expected, alpha)
    return float(alpha)
