"""Relaxed (binary Concrete) and exact Bernoulli samples, and densities.

A relaxed Bernoulli sample is `sigmoid(x)` with `x = (logits + l) /
temperature`, `l` standard logistic noise: `x` is a logistic variable of
location `logits / temperature` and scale `1 / temperature`. Densities are
taken of `x`, the logit of the sample, which float32 holds exactly where
the sample itself rounds to 0 or 1.
"""

import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.gumbel import EVAL_MODES
from keras_latent.ops.noise import uniform_noise
from keras_latent.ops.straight_through import straight_through


def logistic_noise(shape, seed=None):
    """Float32 standard logistic noise, log(u) - log(1 - u)."""
    u = uniform_noise(shape, seed=seed)
    return ops.log(u) - ops.log1p(-u)


def relaxed_bernoulli_logit_sample(logits, temperature=1.0, seed=None):
    """Draws the logit of a relaxed Bernoulli (binary Concrete) sample.

    The logit sample is `x = (logits + l) / temperature`, `l` standard
    logistic noise, elementwise: a `Logistic(logits / temperature,
    1 / temperature)` variable, whose sigmoid is the sample of
    `relaxed_bernoulli`. Its density is `relaxed_bernoulli_logit_log_prob`.

    Args:
        logits: float tensor, the log-odds of each unit.
        temperature: float >= 1e-30 or a scalar tensor.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.zeros((2, 3))
    >>> x = keras_latent.ops.relaxed_bernoulli_logit_sample(logits, 0.5, seed=1)
    >>> tuple(x.shape)
    (2, 3)

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature("temperature", temperature)
    logits, dtype = as_float32(logits)
    return ops.cast(_logit_sample(logits, temperature, seed), dtype)


def _logit_sample(logits, temperature, seed):
    noisy_logits = logits + logistic_noise(ops.shape(logits), seed=seed)
    return noisy_logits / ops.cast(temperature, "float32")


def relaxed_bernoulli(
    logits, temperature=1.0, hard=False, seed=None, return_logit_sample=False
):
    """Draws a relaxed Bernoulli (binary Concrete) sample in (0, 1).

    The sample is `sigmoid((logits + l) / temperature)` with `l` standard
    logistic noise, elementwise. As the temperature goes to 0 it becomes a
    {0, 1} sample of `Bernoulli(sigmoid(logits))`; as it goes to infinity it
    approaches 1/2. With `hard=True` the forward value is exactly 0 or 1
    (1 where the soft sample exceeds 1/2) and the gradient is that of the
    soft sample (straight-through). NaN logits give NaN.

    Args:
        logits: float tensor, the log-odds of each unit.
        temperature: float >= 1e-30 or a scalar tensor.
        hard: whether to return {0, 1} values with straight-through
            gradients.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        return_logit_sample: whether to return the logit of the sample as
            well, for a Monte Carlo KL (see
            `keras_latent.ops.relaxed_bernoulli_kl`).

    Returns:
        A tensor with the shape and dtype of `logits`; with
        `return_logit_sample=True`, the pair `(sample, logit_sample)`, the
        logit sample in float32.

    Example:

    >>> logits = keras.ops.zeros((2, 3))
    >>> tuple(keras_latent.ops.relaxed_bernoulli(logits, 0.5, seed=1).shape)
    (2, 3)

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature("temperature", temperature)
    validation.check_bool("hard", hard)
    validation.check_bool("return_logit_sample", return_logit_sample)
    logits, dtype = as_float32(logits)
    logit_sample = _logit_sample(logits, temperature, seed)
    sample = ops.sigmoid(logit_sample)
    if hard:
        hard_sample = ops.cast(ops.stop_gradient(logit_sample) > 0, "float32")
        sample = straight_through(hard_sample, sample)
    sample = ops.cast(sample, dtype)
    if return_logit_sample:
        return sample, logit_sample
    return sample


def relaxed_bernoulli_logit_log_prob(logit_sample, logits, temperature):
    """Log-density of the logit of a relaxed Bernoulli sample.

    The logit `x` of a binary Concrete sample with log-odds `l` and
    temperature `t` is logistic with location `l / t` and scale `1 / t`;
    with `z = t x - l`, its log-density is (Maddison et al. 2017, appendix
    C)

        log p(x) = log t + log sigmoid(z) + log sigmoid(-z),

    elementwise, finite for any finite `x` (TFP's `Logistic(l / t, 1 / t)
    .log_prob`). The density of the sample `y = sigmoid(x)` itself (TFP's
    `RelaxedBernoulli.log_prob`) is this minus `log y + log(1 - y)`; a
    difference of two log-densities at the same `x` needs no such term,
    which is how `keras_latent.ops.relaxed_bernoulli_kl` uses it. NaN in
    either argument gives NaN.

    Args:
        logit_sample: float tensor, the logit of a sample.
        logits: float tensor broadcastable to it, the distribution's
            log-odds.
        temperature: float >= 1e-30 or a scalar tensor.

    Returns:
        The elementwise log-density, in the dtype of `logits`.

    Example:

    >>> logit_sample = keras.ops.zeros((1,))
    >>> float(keras_latent.ops.relaxed_bernoulli_logit_log_prob(
    ...     logit_sample, keras.ops.zeros((1,)), 1.0)[0])  # doctest: +ELLIPSIS
    -1.386...

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature("temperature", temperature)
    logits, dtype = as_float32(logits)
    logit_sample, _ = as_float32(logit_sample)
    temperature = ops.cast(temperature, "float32")
    log_prob = ops.log(temperature) + _logistic_log_kernel(
        temperature * logit_sample - logits
    )
    return ops.cast(log_prob, dtype)


def _logistic_log_kernel(z):
    """log(sigmoid(z) * sigmoid(-z)), the standard logistic log-density."""
    return ops.log_sigmoid(z) + ops.log_sigmoid(-z)


def sample_bernoulli(logits, seed=None):
    """Draws an exact Bernoulli sample, 1 with probability sigmoid(logits).

    Each entry is 1 where a uniform draw `u` is below `sigmoid(logits)`,
    else 0; the result carries no gradient. Logits of `+inf` and `-inf`
    give 1 and 0, the limits; NaN gives NaN.

    The float32 uniform draws lie on a grid of 2**-23 (2**-24 on PyTorch)
    above their smallest value, as those of any float32 sampler (TFP's
    too): a probability below about 1.2e-7 is drawn as that grid's first
    step. A unit of logit -30 (probability 9.4e-14) is 1 in about 1.2e-7
    of the draws (6e-8 on PyTorch); probabilities above 1e-5 are exact to
    1% or better.

    Args:
        logits: float tensor, the log-odds of each unit.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A tensor of zeros and ones with the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([-1e4, 1e4])
    >>> keras.ops.convert_to_numpy(keras_latent.ops.sample_bernoulli(logits))
    array([0., 1.], dtype=float32)
    """
    logits, dtype = as_float32(logits)
    logits = ops.stop_gradient(logits)
    uniform = uniform_noise(ops.shape(logits), seed=seed)
    sample = ops.cast(uniform < ops.sigmoid(logits), "float32")
    return ops.cast(ops.where(ops.isnan(logits), np.nan, sample), dtype)


def bernoulli_inference(logits, eval_mode="mode", seed=None):
    """The output of a binary layer at inference, by `eval_mode`.

    `"mode"`: 1 where the logit is positive, else 0; `"sample"`: an exact
    Bernoulli sample (see `sample_bernoulli`); `"probs"`: `sigmoid(logits)`.
    NaN logits give NaN in every mode.

    Args:
        logits: float tensor, the log-odds of each unit.
        eval_mode: `"mode"`, `"sample"` or `"probs"`.
        seed: an integer, a `keras.random.SeedGenerator`, or None; used by
            `"sample"` only.

    Returns:
        A tensor with the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([-0.5, 2.0])
    >>> keras.ops.convert_to_numpy(
    ...     keras_latent.ops.bernoulli_inference(logits, "mode"))
    array([0., 1.], dtype=float32)
    """
    eval_mode = validation.check_choice("eval_mode", eval_mode, EVAL_MODES)
    logits, dtype = as_float32(logits)
    if eval_mode == "mode":
        mode = ops.cast(ops.stop_gradient(logits) > 0, "float32")
        outputs = ops.where(ops.isnan(logits), np.nan, mode)
    elif eval_mode == "sample":
        outputs = sample_bernoulli(logits, seed=seed)
    else:
        outputs = ops.sigmoid(logits)
    return ops.cast(outputs, dtype)
