"""KL divergence between categorical distributions given by logits."""

from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.safe_math import weighted_log_ratio


def categorical_kl(logits, prior_logits=None, axis=-1):
    """KL(softmax(logits) || softmax(prior_logits)), reducing `axis`.

    KL(q || p) = sum_k q_k * (log q_k - log p_k), with the convention
    0 * log(0 / p) = 0. Categories masked with `-inf` logits have q_k = 0 and
    add nothing; both the value and the gradient stay finite for them, also
    where the prior is zero too. A prior of zero where q_k > 0 gives +inf,
    which is the true value.

    Args:
        logits: float tensor, the posterior's unnormalized log-probabilities.
        prior_logits: float tensor broadcastable to `logits`, or None for the
            uniform prior 1 / num_categories.
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
    log_q = ops.log_softmax(logits, axis=axis)
    q = ops.exp(log_q)
    if prior_logits is None:
        num_categories = ops.cast(ops.shape(logits)[axis], "float32")
        log_p = -ops.log(num_categories)
    else:
        prior_logits, _ = as_float32(prior_logits)
        log_p = ops.log_softmax(prior_logits, axis=axis)
    terms = weighted_log_ratio(q, log_q, log_p)
    return ops.cast(ops.sum(terms, axis=axis), dtype)
