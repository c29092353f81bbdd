"""Gumbel noise; relaxed (Concrete) and exact categorical samples.

Every sample starts from the noisy logits `logits - max(logits) + g`, `g`
standard Gumbel noise: subtracting the maximum (without gradient) changes
no distribution, but keeps float32 from losing the noise next to large
logits. Relaxed samples are formed in log space,
`log_softmax(noisy_logits / temperature)`, as TensorFlow Probability's
`ExpRelaxedOneHotCategorical` does, so that their log-densities stay exact
where the probabilities underflow float32.
"""

import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops import softmax_kernels
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.dtypes import is_empty
from keras_latent.ops.noise import TINY
from keras_latent.ops.noise import given_or_uniform_noise
from keras_latent.ops.noise import uniform_noise
from keras_latent.ops.simplex import softmax
from keras_latent.ops.straight_through import straight_through

# What a latent layer returns at inference; see `categorical_inference` and
# `keras_latent.ops.bernoulli_inference`.
EVAL_MODES = ("mode", "sample", "probs")


def gumbel_noise(shape, seed=None):
    """Float32 standard Gumbel noise, -log(-log(u)) for u ~ Uniform(0, 1).

    The values lie in about [-4.5, 16.6]: finite by construction.
    """
    return -ops.log(-ops.log(uniform_noise(shape, seed=seed)))


def _noisy_logits(logits, axis, seed, noise=None):
    """`logits - max(logits) + g` along `axis`, the max without gradient.

    `g` is Gumbel noise, `-log(-log(u))` of the uniform draws `noise`, or of
    a fresh draw from `seed`.

    A slice holding NaN or `+inf` gives NaN in every entry; `-inf` entries
    stay `-inf`, unless the whole slice is `-inf`, which has no
    distribution and gives NaN too.
    """
    uniform = given_or_uniform_noise(noise, ops.shape(logits), seed)
    # g = -log(-log(u)), subtracted as log(-log(u)): one pass fewer.
    negative_gumbel = ops.log(-ops.log(uniform))
    if is_empty(logits):
        return logits - negative_gumbel
    maximum = ops.amax(logits, axis=axis, keepdims=True)
    # A slice whose maximum is +inf, or -inf (all masked), has no sample;
    # a NaN maximum makes all of it NaN, which every use keeps, where a
    # fused softmax would return 0 beside the NaN of the infinite entry.
    maximum = ops.where(ops.isfinite(maximum), maximum, np.nan)
    return (logits - ops.stop_gradient(maximum)) - negative_gumbel


def _with_nan_of(x, outputs, axis):
    """`outputs`, with every slice along `axis` where `x` holds NaN set to
    NaN: an argmax would otherwise turn NaN into a plausible one-hot."""
    invalid = ops.any(ops.isnan(x), axis=axis, keepdims=True)
    return ops.where(invalid, np.nan, outputs)


def one_hot_argmax(x, axis=-1):
    """One-hot encoding of the argmax of `x` along `axis`, in x's dtype.

    Ties go to the lowest index, so each slice holds exactly one 1. A slice
    holding NaN gives NaN. The result carries no gradient.

    Args:
        x: float tensor of any rank >= 1.
        axis: the category axis.

    Returns:
        A tensor with the shape and dtype of `x`.

    Example:

    >>> x = keras.ops.convert_to_tensor([[0.2, 1.5, -3.0]])
    >>> keras.ops.convert_to_numpy(keras_latent.ops.one_hot_argmax(x))
    array([[0., 1., 0.]], dtype=float32)
    """
    axis = validation.check_axis("axis", axis)
    x = ops.stop_gradient(ops.convert_to_tensor(x))
    one_hot = _one_hot_of_argmax(x, axis)
    return _with_nan_of(x, ops.cast(one_hot, x.dtype), axis)


def _one_hot_of_argmax(x, axis):
    """The float32 one-hot of the argmax of `x` along `axis`, ties to the
    lowest index, without a NaN check.

    The argmax is compared with the category indices: one boolean pass
    and a cast, where `keras.ops.one_hot` on the torch backend builds and
    masks an int64 tensor first (three times slower at (65536, 128)).
    """
    axis = axis % len(x.shape)
    num_categories = ops.shape(x)[axis]
    indices = ops.argmax(x, axis=axis, keepdims=True)
    categories_shape = [1] * len(x.shape)
    categories_shape[axis] = num_categories
    categories = ops.reshape(
        ops.arange(num_categories, dtype=indices.dtype), categories_shape
    )
    return ops.cast(ops.equal(indices, categories), "float32")


def relaxed_one_hot_log_sample(logits, temperature=1.0, axis=-1, seed=None):
    """Draws the logarithm of a Gumbel-softmax (Concrete) sample.

    The log-sample is `log_softmax((logits - max(logits) + g) / temperature)`
    along `axis`, `g` independent standard Gumbel noise: a sample of TFP's
    `ExpRelaxedOneHotCategorical(temperature, logits)`, whose exponential is
    the Gumbel-softmax sample of `gumbel_softmax`. In log space the entries
    that underflow float32 as probabilities (at temperature 0.1 most of
    them) keep their values, which `exp_relaxed_one_hot_log_prob` and
    `keras_latent.ops.relaxed_categorical_kl` need.

    Args:
        logits: float tensor of unnormalized log-probabilities. Entries of
            `-inf` mask categories out: their log-sample is `-inf`. A slice
            holding NaN or `+inf` gives NaN.
        temperature: float >= 1e-30, or a scalar tensor.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A tensor with the shape and dtype of `logits`, each slice along
        `axis` a log-probability vector (its `logsumexp` is 0).

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> log_sample = keras_latent.ops.relaxed_one_hot_log_sample(
    ...     logits, 0.1, seed=1)
    >>> round(float(keras.ops.logsumexp(log_sample)), 5)
    0.0

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
    """
    temperature = validation.check_temperature("temperature", temperature)
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    log_sample = _log_sample(logits, temperature, axis, seed)
    return ops.cast(log_sample, dtype)


def _log_sample(logits, temperature, axis, seed):
    temperature = ops.cast(temperature, "float32")
    noisy_logits = _noisy_logits(logits, axis, seed)
    return softmax_kernels.log_softmax(noisy_logits / temperature, axis=axis)


def gumbel_softmax(
    logits,
    temperature=1.0,
    hard=False,
    axis=-1,
    seed=None,
    return_log_sample=False,
):
    """Draws a relaxed one-hot sample from the Gumbel-softmax distribution.

    The sample is `softmax((logits + g) / temperature)` along `axis`, where
    `g` holds independent standard Gumbel noise; it is computed as the
    exponential of `relaxed_one_hot_log_sample`. As the temperature goes to
    0 the sample becomes a one-hot vector distributed as
    `Categorical(softmax(logits))`; as it goes to infinity the sample
    approaches the uniform vector `1 / num_categories`.

    With `hard=True` the forward value is the one-hot encoding of the
    argmax of `logits + g` (exactly one 1 per slice): an exact categorical
    sample for any finite logits, since the maximum is subtracted before
    the noise is added. The gradient is that of the soft sample: the
    straight-through Gumbel-softmax estimator.

    The noise is drawn in float32 from a uniform distribution clipped away
    from 0 and 1, so no draw is infinite; the computation runs in float32
    and the result is cast back to the dtype of `logits`.

    Args:
        logits: float tensor of unnormalized log-probabilities. Entries of
            `-inf` mask categories out: they are never sampled. A slice
            holding NaN or `+inf` gives NaN.
        temperature: float >= 1e-30, or a scalar tensor (for example an annealed
            variable).
        hard: whether to return a one-hot sample with straight-through
            gradients.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None. Inside a
            layer pass the layer's `SeedGenerator` so that every call draws
            new noise.
        return_log_sample: whether to return the log-sample as well, for a
            Monte Carlo KL (see `keras_latent.ops.relaxed_categorical_kl`).

    Returns:
        A tensor with the shape and dtype of `logits` whose slices along
        `axis` are on the probability simplex; with
        `return_log_sample=True`, the pair `(sample, log_sample)`, the
        log-sample in float32.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> sample = keras_latent.ops.gumbel_softmax(logits, 0.5, seed=1)
    >>> round(float(keras.ops.sum(sample)), 6)
    1.0

    References:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature("temperature", temperature)
    validation.check_bool("hard", hard)
    validation.check_bool("return_log_sample", return_log_sample)
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    noisy_logits = _noisy_logits(logits, axis, seed)
    scaled = noisy_logits / ops.cast(temperature, "float32")
    if return_log_sample:
        log_sample = softmax_kernels.log_softmax(scaled, axis=axis)
        sample = ops.exp(log_sample)
    else:
        # One fused pass where the log-sample is not asked for.
        sample = softmax_kernels.softmax(scaled, axis=axis)
    if hard:
        # The soft sample is NaN wherever the noisy logits hold NaN, and
        # the straight-through sum carries it: no NaN check is needed here.
        one_hot = _one_hot_of_argmax(ops.stop_gradient(noisy_logits), axis)
        sample = straight_through(one_hot, sample)
    sample = ops.cast(sample, dtype)
    if return_log_sample:
        return sample, log_sample
    return sample


def sample_one_hot(logits, axis=-1, seed=None):
    """Draws an exact categorical sample as a one-hot tensor (Gumbel-max).

    The argmax of `logits + g`, with `g` standard Gumbel noise, is distributed
    as `Categorical(softmax(logits))` along `axis`. The maximum of the
    logits is subtracted first, which keeps the sample exact for any finite
    logits (equal logits of 1e8 are drawn with equal frequencies). The
    result carries no gradient. The float32 uniform draws under the noise
    lie on a grid of 2**-23 (2**-24 on PyTorch), as those of any float32
    sampler: categories of probability below about 1e-7 are drawn at that
    resolution, not at their own probability.

    Args:
        logits: float tensor of unnormalized log-probabilities, any rank;
            `-inf` entries are never drawn. A slice holding NaN or `+inf`
            gives NaN.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A one-hot tensor with the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.log(keras.ops.convert_to_tensor([[0.2, 0.8]]))
    >>> tuple(keras_latent.ops.sample_one_hot(logits, seed=3).shape)
    (1, 2)

    References:
        - [Gumbel, 1954](https://ntrs.nasa.gov/citations/19650001442)
        - [Maddison et al., 2014](https://arxiv.org/abs/1411.0030)
    """
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    noisy_logits = _noisy_logits(ops.stop_gradient(logits), axis, seed)
    return ops.cast(one_hot_argmax(noisy_logits, axis=axis), dtype)


def categorical_inference(logits, eval_mode="mode", axis=-1, seed=None):
    """The output of a categorical layer at inference, by `eval_mode`.

    `"mode"`: the one-hot of the argmax of the logits (ties to the lowest
    index); `"sample"`: an exact one-hot sample of
    `Categorical(softmax(logits))` (see `sample_one_hot`); `"probs"`:
    `softmax(logits)`. A slice holding NaN gives NaN in every mode. A slice
    with every entry `-inf` has no distribution: it has no mode and no
    sample (NaN, as its KL), and its `"probs"` are zeros, the masking rule
    of `softmax`.

    Args:
        logits: float tensor of unnormalized log-probabilities.
        eval_mode: `"mode"`, `"sample"` or `"probs"`.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None; used by
            `"sample"` only.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[0.1, 2.0, -1.0]])
    >>> keras.ops.convert_to_numpy(
    ...     keras_latent.ops.categorical_inference(logits, "mode"))
    array([[0., 1., 0.]], dtype=float32)
    """
    eval_mode = validation.check_choice("eval_mode", eval_mode, EVAL_MODES)
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    if eval_mode == "mode":
        # The argmax of a fully masked slice would be a plausible one-hot of
        # its first category.
        fully_masked = ops.all(
            ops.equal(logits, -np.inf), axis=axis, keepdims=True
        )
        outputs = ops.where(
            fully_masked, np.nan, one_hot_argmax(logits, axis=axis)
        )
    elif eval_mode == "sample":
        outputs = sample_one_hot(logits, axis=axis, seed=seed)
    else:
        outputs = softmax(logits, axis=axis)
    return ops.cast(outputs, dtype)


def exp_relaxed_one_hot_log_prob(log_sample, logits, temperature, axis=-1):
    """Log-density of a Concrete log-sample, as TFP's ExpRelaxedOneHot...

    The log-density of `x = log(y)`, `y` a Concrete (Gumbel-softmax) sample
    with K categories, logits `l` and temperature `t`, is (Maddison et al.
    2017, appendix C; TensorFlow Probability's
    `ExpRelaxedOneHotCategorical.log_prob`)

        log p(x) = log((K - 1)!) + (K - 1) log t
                   + sum_k (l_k - t x_k) - K logsumexp_k (l_k - t x_k).

    It takes the log-sample itself, so it stays exact at temperatures where
    most entries of `y` underflow float32 (see `relaxed_one_hot_log_sample`).
    The difference of two such log-densities at the same log-sample is the
    log-ratio of the Concrete densities of `y`: the Jacobian of `exp`
    cancels. Categories masked with `-inf` logits (whose log-sample is
    `-inf`) are left out: the result is the log-density over the other
    categories, K counting only those. A log-sample that is finite at a
    masked category lies outside the support: its log-density is `-inf`.
    NaN in either argument gives NaN.

    Args:
        log_sample: float tensor, a log-sample along `axis`.
        logits: float tensor of the same shape, the distribution's logits;
            the number of categories along `axis` must be known statically.
        temperature: float >= 1e-30 or a scalar tensor.
        axis: the category axis.

    Returns:
        The log-density, with `axis` reduced, in the dtype of `logits`.

    Example:

    >>> logits = keras.ops.zeros((1, 2))
    >>> log_sample = keras.ops.log(keras.ops.convert_to_tensor([[0.5, 0.5]]))
    >>> float(keras_latent.ops.exp_relaxed_one_hot_log_prob(
    ...     log_sample, logits, 1.0)[0])  # doctest: +ELLIPSIS
    -1.386...

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature("temperature", temperature)
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    log_sample, _ = as_float32(log_sample)
    log_prob = _exp_relaxed_log_prob(log_sample, logits, temperature, axis)
    return ops.cast(log_prob, dtype)


def _exp_relaxed_log_prob(log_sample, logits, temperature, axis):
    """`exp_relaxed_one_hot_log_prob` on float32 tensors."""
    num_categories = logits.shape[axis]
    if num_categories is None:
        raise validation.invalid_shape(
            "logits",
            "a statically known number of categories along `axis`",
            logits.shape,
        )
    temperature = ops.cast(temperature, "float32")
    # Masked categories are left out; NaN logits are not masked, so that
    # they reach the result. Zeroing their log-sample first keeps the NaN of
    # -inf + inf out of every value and gradient, the temperature's too.
    support = ops.not_equal(logits, -np.inf)
    support_size = ops.sum(ops.cast(support, "float32"), axis=axis)
    # A log-sample with a finite (or NaN) entry at a masked category lies
    # outside the support, where the density is 0; its NaN is kept.
    outside = ops.any(
        ops.logical_and(
            ops.logical_not(support), ops.not_equal(log_sample, -np.inf)
        ),
        axis=axis,
    )
    invalid = ops.any(ops.isnan(log_sample), axis=axis)
    log_sample = ops.where(support, log_sample, 0.0)
    scores = logits - temperature * log_sample
    log_numerator = ops.sum(ops.where(support, scores, 0.0), axis=axis)
    log_denominator = support_size * ops.logsumexp(
        ops.where(support, scores, -np.inf), axis=axis
    )
    log_normalizer = _log_factorial(support_size - 1.0, num_categories) + (
        support_size - 1.0
    ) * ops.log(temperature)
    log_prob = log_normalizer + log_numerator - log_denominator
    log_prob = ops.where(outside, -np.inf, log_prob)
    return ops.where(invalid, np.nan, log_prob)


def relaxed_one_hot_log_prob(sample, logits, temperature, axis=-1):
    """Log-density of a relaxed one-hot `sample` under Concrete(logits, temp).

    With K categories, class probabilities p = softmax(logits) and
    temperature t, the density on the simplex is (Maddison et al. 2017,
    eq. 11; Jang et al. 2017, eq. 3)

        log p(y) = log((K - 1)!) + (K - 1) log t
                   + sum_k (log p_k - (t + 1) log y_k)
                   - K logsumexp_k (log p_k - t log y_k),

    that is `exp_relaxed_one_hot_log_prob(log(y)) - sum_k log y_k`, which is
    how it is computed. Its limit: a sample in the probability domain has
    lost the entries that underflow float32, which happens to most entries
    at temperatures of 0.1 and below. Such entries are read as the smallest
    normal float32 and the density is then wrong. For a Monte Carlo KL or
    any density of low-temperature samples, keep the sample in log space:
    `relaxed_one_hot_log_sample` with `exp_relaxed_one_hot_log_prob`.
    Categories masked with `-inf` logits are left out (K counts only the
    others); a sample that is positive at a masked category lies outside
    the support, and its log-density is `-inf`.

    Args:
        sample: float tensor on the simplex along `axis`.
        logits: float tensor of the same shape, the distribution's logits.
        temperature: float >= 1e-30 or a scalar tensor.
        axis: the category axis.

    Returns:
        The log-density, with `axis` reduced, in the dtype of `logits`.

    Example:

    >>> logits = keras.ops.zeros((1, 2))
    >>> sample = keras.ops.convert_to_tensor([[0.5, 0.5]])
    >>> float(keras_latent.ops.relaxed_one_hot_log_prob(sample, logits, 1.0)[0])
    ... # doctest: +ELLIPSIS
    0.0...

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
    """
    temperature = validation.check_temperature("temperature", temperature)
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    sample, _ = as_float32(sample)
    # The clip keeps NaN: NaN compares false, and clip is min(max(...)).
    log_sample = ops.where(
        ops.isnan(sample), np.nan, ops.log(ops.clip(sample, TINY, 1.0))
    )
    support = ops.not_equal(logits, -np.inf)
    # A zero at a masked category is in the support's face: -inf, not the
    # log of the smallest float32 that an underflowed entry is read as.
    log_sample = ops.where(
        ops.logical_and(ops.logical_not(support), ops.equal(sample, 0.0)),
        -np.inf,
        log_sample,
    )
    log_jacobian = ops.sum(ops.where(support, log_sample, 0.0), axis=axis)
    log_prob = (
        _exp_relaxed_log_prob(log_sample, logits, temperature, axis)
        - log_jacobian
    )
    return ops.cast(log_prob, dtype)


def _log_factorial(n, largest):
    """log(n!) for a float tensor `n` of integers in [0, largest].

    Keras has no `lgamma`; with the largest value known statically, the sum
    of log(j) for 1 <= j <= n over that fixed range is exact; `n` is a count
    and needs no gradient.
    """
    values = np.arange(1, max(largest, 1) + 1, dtype="float32")
    counted = ops.less_equal(values, ops.expand_dims(n, -1))
    return ops.sum(ops.where(counted, np.log(values), 0.0), axis=-1)
