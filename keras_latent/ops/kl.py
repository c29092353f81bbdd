"""KL divergences of latent variables: analytic, or Monte Carlo in log space.

The analytic KLs are those of the discrete distributions. The relaxed KLs
are single-sample Monte Carlo estimates between two Concrete distributions
of the same temperature, `log q(y) - log p(y)` at a sample `y` of q, taken
from the log-sample (or logit sample) that drew `y`: the Jacobian of the
map to `y` cancels in the difference, and no entry underflows.
"""

import math

import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops import softmax_kernels
from keras_latent.ops.bernoulli import relaxed_bernoulli_logit_log_prob
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.gumbel import exp_relaxed_one_hot_log_prob


def _weighted_log_ratio(weight, log_numerator, log_denominator):
    """`weight * (log_numerator - log_denominator)`, taken as 0 where weight=0.

    This is the summand of a KL divergence with the convention
    0 * log(0 / p) = 0. The inner `where` keeps the NaN of `-inf - -inf`
    (a masked category whose prior is also zero) out of the backward pass: a
    single outer `where` would still multiply a zero cotangent by NaN. A
    NaN weight is not zero, so NaN logits give a NaN KL.
    """
    support = ops.not_equal(weight, 0.0)
    log_ratio = ops.where(support, log_numerator - log_denominator, 0.0)
    return ops.where(support, weight * log_ratio, 0.0)


def categorical_kl(logits, prior_logits=None, axis=-1):
    """KL(softmax(logits) || softmax(prior_logits)), reducing `axis`.

    KL(q || p) = sum_k q_k * (log q_k - log p_k), with the convention
    0 * log(0 / p) = 0. Categories masked with `-inf` logits have q_k = 0 and
    add nothing; both the value and the gradient stay finite for them, also
    where the prior is zero too. The default prior is uniform over the
    unmasked categories, as in `relaxed_categorical_kl`, whose Monte Carlo
    estimates thus average to this KL. A prior of zero where q_k > 0 gives
    +inf, which is the true value. NaN or `+inf` logits give NaN.

    Args:
        logits: float tensor, the posterior's unnormalized log-probabilities.
        prior_logits: float tensor broadcastable to `logits`, or None for the
            uniform prior over the categories whose logits are not `-inf`
            (1 / num_categories where none is).
        axis: the category axis.

    Returns:
        A tensor of the shape of `logits` without `axis`, in the dtype of
        `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[0.0, 0.0]])
    >>> float(keras_latent.ops.categorical_kl(logits)[0])
    0.0
    """
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    log_q = softmax_kernels.log_softmax(logits, axis=axis)
    q = ops.exp(log_q)
    if prior_logits is None:
        num_unmasked = ops.sum(
            ops.cast(ops.not_equal(logits, -np.inf), "float32"),
            axis=axis,
            keepdims=True,
        )
        log_p = -ops.log(num_unmasked)
    else:
        prior_logits, _ = as_float32(prior_logits)
        log_p = softmax_kernels.log_softmax(prior_logits, axis=axis)
    terms = _weighted_log_ratio(q, log_q, log_p)
    return ops.cast(ops.sum(terms, axis=axis), dtype)


def bernoulli_kl(logits, prior_logits=None):
    """Elementwise KL(Bernoulli(sigmoid(logits)) || Bernoulli(prior)).

    KL = q (log q - log p) + (1 - q) (log(1 - q) - log(1 - p)), with
    q = sigmoid(logits), every log taken as a log-sigmoid of the logits so
    that logits of +/-1e4 give finite values and gradients, and +/-inf the
    limits. NaN logits give NaN.

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
    kl = _weighted_log_ratio(q, log_q, log_p) + _weighted_log_ratio(
        not_q, log_not_q, log_not_p
    )
    return ops.cast(kl, dtype)


def relaxed_categorical_kl(
    log_sample, logits, prior_logits=None, temperature=1.0, axis=-1
):
    """Monte Carlo KL between two Concrete distributions, from a log-sample.

    With `x` a log-sample of `Concrete(logits, temperature)` (see
    `keras_latent.ops.relaxed_one_hot_log_sample`), the estimate is
    `log q(x) - log p(x)`, the Concrete log-densities (TFP's
    `ExpRelaxedOneHotCategorical.log_prob`) of posterior and prior at the
    same temperature; its mean over draws of `x` is the KL between the two
    Concrete distributions (Maddison et al. 2017, appendix C). That KL does
    not depend on the common temperature: the log-sample is, up to a shift,
    an invertible map of `log_softmax(logits) + g`, the same map for both.
    Computed from the log-sample, the estimate stays exact at low
    temperatures, where most entries of the sample underflow float32. At
    high temperatures the log-sample's entries differ by about 1 /
    temperature, which float32 resolves up to a temperature of about 1e4:
    the mean estimate moves by 4e-4 nats from 1 to 1e4, by 0.05 at 1e5 and
    by 0.4 at 1e6 (10 categories, 200,000 draws each, the same noise).

    Categories masked with `-inf` logits are left out of both densities;
    the default prior is uniform over the unmasked categories. A prior
    masking a category that the posterior holds gives `+inf`, the true
    KL. NaN in gives NaN.

    Args:
        log_sample: float tensor, a log-sample of the posterior.
        logits: float tensor of the same shape, the posterior's logits; the
            number of categories along `axis` must be known statically.
        prior_logits: float tensor broadcastable to `logits`, or None for
            the uniform prior.
        temperature: float >= 1e-30 or a scalar tensor, the temperature of both
            distributions and of the log-sample.
        axis: the category axis.

    Returns:
        The estimate, with `axis` reduced, in the dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> log_sample = keras_latent.ops.relaxed_one_hot_log_sample(
    ...     logits, 0.1, seed=1)
    >>> tuple(keras_latent.ops.relaxed_categorical_kl(
    ...     log_sample, logits, temperature=0.1).shape)
    (1,)

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature("temperature", temperature)
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    log_sample, _ = as_float32(log_sample)
    if prior_logits is None:
        prior_logits = ops.where(ops.not_equal(logits, -np.inf), 0.0, -np.inf)
    else:
        prior_logits, _ = as_float32(prior_logits)
        prior_logits = prior_logits + ops.zeros_like(logits)
    kl = exp_relaxed_one_hot_log_prob(
        log_sample, logits, temperature, axis
    ) - exp_relaxed_one_hot_log_prob(
        log_sample, prior_logits, temperature, axis
    )
    return ops.cast(kl, dtype)


def relaxed_bernoulli_kl(
    logit_sample, logits, prior_logits=None, temperature=1.0
):
    """Monte Carlo KL between two relaxed Bernoullis, from a logit sample.

    With `x` the logit of a relaxed Bernoulli sample of `logits` at
    `temperature` (see `keras_latent.ops.relaxed_bernoulli_logit_sample`),
    the estimate is `log q(x) - log p(x)`, the logistic log-densities of
    `keras_latent.ops.relaxed_bernoulli_logit_log_prob` for posterior and
    prior at the same temperature, elementwise. Its mean over draws is the
    KL between the two binary Concrete distributions, which does not
    depend on the common temperature. NaN in gives NaN.

    Args:
        logit_sample: float tensor, the logit of a posterior sample.
        logits: float tensor of the same shape, the posterior log-odds.
        prior_logits: float tensor broadcastable to `logits`, or None for
            the prior log-odds 0.
        temperature: float >= 1e-30 or a scalar tensor.

    Returns:
        A tensor of the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([2.0, -1.0])
    >>> x = keras_latent.ops.relaxed_bernoulli_logit_sample(logits, 0.5, seed=1)
    >>> tuple(keras_latent.ops.relaxed_bernoulli_kl(
    ...     x, logits, temperature=0.5).shape)
    (2,)

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature("temperature", temperature)
    logits, dtype = as_float32(logits)
    logit_sample, _ = as_float32(logit_sample)
    if prior_logits is None:
        prior_logits = ops.zeros_like(logits)
    kl = relaxed_bernoulli_logit_log_prob(
        logit_sample, logits, temperature
    ) - relaxed_bernoulli_logit_log_prob(
        logit_sample, prior_logits, temperature
    )
    return ops.cast(kl, dtype)
