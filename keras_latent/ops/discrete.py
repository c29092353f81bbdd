"""Log-probabilities of exact discrete samples.

The densities of the discrete model: what an importance-weighted bound, an
exact enumeration or a score-function estimator scores a one-hot or binary
sample with. Zero entries of a sample select nothing, so a category masked
with a `-inf` logit adds nothing unless the sample picks it (then the
log-probability is `-inf`, the true value), and no `0 * -inf` makes a NaN.
"""

from keras import ops

from keras_latent import validation
from keras_latent.ops import softmax_kernels
from keras_latent.ops.dtypes import as_float32


def one_hot_categorical_log_prob(sample, logits, axis=-1):
    """Log-probability of a one-hot sample under `Categorical(logits)`.

    `log q(z) = sum_k z_k * log_softmax(logits)_k` along `axis`, the terms
    with `z_k = 0` left out (so that masked categories, `-inf` logits, add
    nothing). NaN logits give NaN.

    Args:
        sample: one-hot float tensor broadcastable with `logits`.
        logits: float tensor of unnormalized log-probabilities.
        axis: the category axis.

    Returns:
        A tensor of the broadcast shape without `axis`, in the dtype of
        `logits`.

    Example:

    >>> logits = keras.ops.log(keras.ops.convert_to_tensor([0.25, 0.75]))
    >>> sample = keras.ops.convert_to_tensor([0.0, 1.0])
    >>> round(float(keras_latent.ops.one_hot_categorical_log_prob(
    ...     sample, logits)), 4)
    -0.2877
    """
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    sample, _ = as_float32(sample)
    log_probs = softmax_kernels.log_softmax(logits, axis=axis)
    selected = ops.not_equal(sample, 0.0)
    terms = ops.where(selected, sample * log_probs, 0.0)
    return ops.cast(ops.sum(terms, axis=axis), dtype)


def bernoulli_log_prob(sample, logits):
    """Elementwise log-probability of a binary sample under Bernoulli.

    `log q(z) = z * log_sigmoid(logits) + (1 - z) * log_sigmoid(-logits)`,
    each term left out where its weight is 0, so that logits of `+/-inf`
    give the limits (0, or `-inf` for an impossible value). NaN logits give
    NaN.

    Args:
        sample: float tensor of zeros and ones, broadcastable with
            `logits`.
        logits: float tensor, the log-odds of 1.

    Returns:
        A tensor of the broadcast shape, in the dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([0.0, 0.0])
    >>> sample = keras.ops.convert_to_tensor([1.0, 0.0])
    >>> keras.ops.convert_to_numpy(
    ...     keras_latent.ops.bernoulli_log_prob(sample, logits)).round(4)
    array([-0.6931, -0.6931], dtype=float32)
    """
    logits, dtype = as_float32(logits)
    sample, _ = as_float32(sample)
    ones = ops.where(
        ops.not_equal(sample, 0.0), sample * ops.log_sigmoid(logits), 0.0
    )
    zeros = ops.where(
        ops.not_equal(sample, 1.0),
        (1.0 - sample) * ops.log_sigmoid(-logits),
        0.0,
    )
    return ops.cast(ones + zeros, dtype)
