"""Log-density of the Concrete (Gumbel-softmax) distribution."""

import math

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
    (underflowed draws) are read as that value.

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
    log_normalizer = math.lgamma(num_categories) + (
        num_categories - 1
    ) * ops.log(temperature)
    log_numerator = ops.sum(
        log_probs - (temperature + 1.0) * log_sample, axis=axis
    )
    log_denominator = num_categories * ops.logsumexp(
        log_probs - temperature * log_sample, axis=axis
    )
    log_prob = log_normalizer + log_numerator - log_denominator
    return ops.cast(log_prob, dtype)
