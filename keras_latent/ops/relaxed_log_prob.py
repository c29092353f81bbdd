"""Log-density of the Concrete (Gumbel-softmax) distribution."""

import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.noise import TINY


def relaxed_one_hot_log_prob(sample, logits, temperature, axis=-1):
    """Log-density of a relaxed one-hot `sample` under Concrete(logits, temp).

    With K categories, class probabilities p = softmax(logits) and
    temperature t, the density on the simplex is (Maddison et al. 2017,
    eq. 11; Jang et al. 2017, eq. 3)

        log p(y) = log((K - 1)!) + (K - 1) log t
                   + sum_k (log p_k - (t + 1) log y_k)
                   - K logsumexp_k (log p_k - t log y_k).

    Every term is computed from `log y` and `log_softmax(logits)` with a
    log-sum-exp, never from `y ** -t`, which overflows float32 as soon as
    t * |log y| passes 88: the result stays finite at temperatures down to
    0.05 and beyond. Entries of `sample` below the smallest normal float32
    (underflowed draws) are read as that value. Categories masked with
    `-inf` logits are left out: the result is the density of the Concrete
    distribution over the other categories (K counts only those).

    Args:
        sample: float tensor on the simplex along `axis`.
        logits: float tensor of the same shape, the distribution's logits.
        temperature: float > 0 or a scalar tensor.
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
    temperature = validation.check_temperature(temperature)
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    sample, _ = as_float32(sample)
    num_categories = logits.shape[axis]
    if num_categories is None:
        raise ValueError(
            "Invalid value received for argument `logits`. Expected a "
            "statically known number of categories along `axis`. Received: "
            f"logits.shape={logits.shape}"
        )
    temperature = ops.cast(temperature, "float32")
    log_sample = ops.log(ops.clip(sample, TINY, 1.0))
    log_probs = ops.log_softmax(logits, axis=axis)
    # Masked categories (logits of -inf) are left out: the density is that
    # of the Concrete distribution over the remaining categories. Each
    # `where` keeps the -inf of a masked term out of values and gradients.
    support = ops.greater(logits, -np.inf)
    support_size = ops.sum(ops.cast(support, "float32"), axis=axis)
    log_numerator = ops.sum(
        ops.where(support, log_probs - (temperature + 1.0) * log_sample, 0.0),
        axis=axis,
    )
    log_denominator = support_size * ops.logsumexp(
        ops.where(support, log_probs - temperature * log_sample, -np.inf),
        axis=axis,
    )
    log_normalizer = log_factorial(support_size - 1.0, num_categories) + (
        support_size - 1.0
    ) * ops.log(temperature)
    log_prob = log_normalizer + log_numerator - log_denominator
    return ops.cast(log_prob, dtype)


def log_factorial(n, largest):
    """log(n!) for a float tensor `n` of integers in [0, largest].

    Keras has no `lgamma`; with the largest value known statically, the sum
    of log(j) for 1 <= j <= n over that fixed range is exact; `n` is a count
    and needs no gradient.
    """
    logs = np.log(np.arange(1, max(largest, 1) + 1, dtype="float32"))
    counted = ops.less_equal(
        np.arange(1, max(largest, 1) + 1, dtype="float32"),
        ops.expand_dims(n, -1),
    )
    return ops.sum(ops.where(counted, logs, 0.0), axis=-1)
