"""Softmax, sparsemax or entmax applied within equal groups of units."""

from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.dtypes import is_empty
from keras_latent.ops.simplex import NORMALIZERS
from keras_latent.ops.simplex import check_alpha
from keras_latent.ops.simplex import check_normalizer


def grouped_normalize(
    x, groups=1, normalizer="softmax", temperature=1.0, alpha=None
):
    """Normalizes each of `groups` equal groups of the last axis of `x`.

    The last axis, of size `units`, is split into `groups` consecutive
    groups of `units // groups` entries, and `normalizer` maps each group of
    `x / temperature` onto the probability simplex: `"softmax"` (dense),
    `"sparsemax"` (Martins and Astudillo 2016), `"entmax15"` (Peters et
    al. 2019, 1.5-entmax) or `"entmax"` (alpha-entmax at `alpha`, see
    `keras_latent.ops.entmax_bisect`), the last three giving exact zeros
    (see `keras_latent.ops.simplex` for the shared masking rule: a group of
    `-inf` gives zeros, a group holding NaN or `+inf` gives NaN). With
    `groups=1` the whole axis is one distribution. A lower temperature gives
    more peaked (for sparsemax and entmax, sparser) groups.

    Args:
        x: float tensor of shape `(..., units)`, of rank >= 1, `units`
            known statically.
        groups: an integer >= 1 that divides `units`.
        normalizer: `"softmax"`, `"sparsemax"`, `"entmax15"` or `"entmax"`.
        temperature: a finite float > 0, or a scalar tensor.
        alpha: for `"entmax"` only (None, the default, is 1.5 there): a
            float >= 1, or a float tensor of one alpha per group, of shape
            `(groups,)` or broadcastable against `(..., groups)`, through
            which gradients reach the alphas.

    Returns:
        A tensor of the shape and dtype of `x`; each group sums to 1.

    Example:

    >>> x = keras.ops.convert_to_tensor([[1.0, 2.0, 3.0, 3.0]])
    >>> y = keras_latent.ops.grouped_normalize(
    ...     x, groups=2, normalizer="sparsemax")
    >>> keras.ops.convert_to_numpy(y).tolist()
    [[0.0, 1.0, 0.5, 0.5]]

    References:
        - [Martins and Astudillo, 2016](https://arxiv.org/abs/1602.02068)
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
        - [Correia et al., 2019](https://arxiv.org/abs/1909.00015)
    """
    normalize = NORMALIZERS[check_normalizer(normalizer)]
    alpha = check_alpha(alpha, normalizer)
    # Each group is shifted by its maximum before the division, so that any
    # positive float32 temperature gives the normalizer or its limit.
    temperature = validation.check_temperature(
        "temperature", temperature, minimum=validation.FLOAT32_TINY
    )
    x, dtype = as_float32(x)
    if len(x.shape) == 0:
        raise validation.invalid_shape("x", "a tensor of rank >= 1", x.shape)
    units = x.shape[-1]
    if units is None:
        raise validation.invalid_shape(
            "x", "a statically known last dimension", x.shape
        )
    groups = validation.check_divisor("groups", groups, "units", units)
    shape = ops.shape(x)
    grouped = ops.reshape(x, (*shape[:-1], groups, units // groups))
    if not is_empty(grouped):
        # Each group shifted by its finite maximum (without gradient; no
        # normalizer changes with a constant added) before the division,
        # which a low temperature would otherwise overflow to inf, and so
        # NaN: the largest entry is 0, the others at most -inf.
        group_max = ops.stop_gradient(ops.amax(grouped, axis=-1, keepdims=True))
        grouped = grouped - ops.where(ops.isfinite(group_max), group_max, 0.0)
    grouped = grouped / ops.cast(temperature, "float32")
    if normalizer == "entmax":
        if not isinstance(alpha, float):
            alpha = ops.expand_dims(alpha, -1)
        normalized = normalize(grouped, alpha=alpha, axis=-1)
    else:
        normalized = normalize(grouped, axis=-1)
    normalized = ops.reshape(normalized, shape)
    return ops.cast(normalized, dtype)
