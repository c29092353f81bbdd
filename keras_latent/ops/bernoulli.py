"""The binary Concrete (relaxed Bernoulli) distribution and Bernoulli KL."""

import math

from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.noise import logistic_noise
from keras_latent.ops.safe_math import weighted_log_ratio
from keras_latent.ops.straight_through import straight_through


def relaxed_bernoulli(logits, temperature=1.0, hard=False, seed=None):
    """Draws a relaxed Bernoulli (binary Concrete) sample in (0, 1).

    The sample is `sigmoid((logits + l) / temperature)` with `l` standard
    logistic noise, elementwise. As the temperature goes to 0 it becomes a
    {0, 1} sample of `Bernoulli(sigmoid(logits))`; as it goes to infinity it
    approaches 1/2. With `hard=True` the forward value is exactly 0 or 1
    (1 where the soft sample exceeds 1/2) and the gradient is that of the
    soft sample (straight-through).

    Args:
        logits: float tensor, the log-odds of each unit.
        temperature: float > 0 or a scalar tensor.
        hard: whether to return {0, 1} values with straight-through
            gradients.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.zeros((2, 3))
    >>> tuple(keras_latent.ops.relaxed_bernoulli(logits, 0.5, seed=1).shape)
    (2, 3)

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature(temperature)
    validation.check_bool("hard", hard)
    logits, dtype = as_float32(logits)
    temperature = ops.cast(temperature, "float32")
    noisy_logits = logits + logistic_noise(ops.shape(logits), seed=seed)
    soft = ops.sigmoid(noisy_logits / temperature)
    if hard:
        hard_sample = ops.cast(noisy_logits > 0, "float32")
        sample = straight_through(hard_sample, soft)
    else:
        sample = soft
    return ops.cast(sample, dtype)


def bernoulli_kl(logits, prior_logits=None):
    """Elementwise KL(Bernoulli(sigmoid(logits)) || Bernoulli(prior)).

    KL = q (log q - log p) + (1 - q) (log(1 - q) - log(1 - p)), with
    q = sigmoid(logits), every log taken as a log-sigmoid of the logits so
    that logits of +/-1e4 (and +/-inf) give finite values and gradients.

    Args:
        logits: float tensor, the posterior log-odds.
        prior_logits: float tensor broadcastable to `logits`, or None for the
            prior probability 1/2.

    Returns:
        A tensor of the shape and dtype of `logits`.

    Example:

    >>> float(keras_latent.ops.bernoulli_kl(keras.ops.zeros(())))
    0.0
    """
    logits, dtype = as_float32(logits)
    log_q = ops.log_sigmoid(logits)
    log_not_q = ops.log_sigmoid(-logits)
    if prior_logits is None:
        log_p = log_not_p = -math.log(2.0)
    else:
        prior_logits, _ = as_float32(prior_logits)
        log_p = ops.log_sigmoid(prior_logits)
        log_not_p = ops.log_sigmoid(-prior_logits)
    q = ops.exp(log_q)
    not_q = ops.exp(log_not_q)
    kl = weighted_log_ratio(q, log_q, log_p) + weighted_log_ratio(
        not_q, log_not_q, log_not_p
    )
    return ops.cast(kl, dtype)
