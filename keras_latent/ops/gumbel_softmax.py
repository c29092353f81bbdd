"""Samples from the Gumbel-softmax (Concrete) and categorical distributions."""

from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.noise import gumbel_noise
from keras_latent.ops.straight_through import straight_through


def one_hot_argmax(x, axis=-1):
    """One-hot encoding of the argmax of `x` along `axis`, in x's dtype.

    Ties go to the lowest index, so each slice holds exactly one 1.
    """
    num_categories = ops.shape(x)[axis]
    one_hot = ops.one_hot(ops.argmax(x, axis=axis), num_categories, axis=axis)
    return ops.cast(one_hot, x.dtype)


def gumbel_softmax(logits, temperature=1.0, hard=False, axis=-1, seed=None):
    """Draws a relaxed one-hot sample from the Gumbel-softmax distribution.

    The sample is `softmax((logits + g) / temperature)` along `axis`, where
    `g` holds independent standard Gumbel noise. As the temperature goes to
    0 the sample becomes a one-hot vector distributed as
    `Categorical(softmax(logits))`; as it goes to infinity the sample
    approaches the uniform vector `1 / num_categories`.

    With `hard=True` the forward value is the one-hot encoding of the
    sample's argmax (exactly one 1 per slice, ties to the lowest index) and
    the gradient is that of the soft sample: the straight-through
    Gumbel-softmax estimator.

    The noise is drawn in float32 from a uniform distribution clipped away
    from 0 and 1, so no draw is infinite; the computation runs in float32
    and the result is cast back to the dtype of `logits`.

    Args:
        logits: float tensor of unnormalized log-probabilities. Entries of
            `-inf` mask categories out: they are never sampled.
        temperature: float > 0, or a scalar tensor (for example an annealed
            variable).
        hard: whether to return a one-hot sample with straight-through
            gradients.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None. Inside a
            layer pass the layer's `SeedGenerator` so that every call draws
            new noise.

    Returns:
        A tensor with the shape and dtype of `logits` whose slices along
        `axis` are on the probability simplex.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> sample = keras_latent.ops.gumbel_softmax(logits, 0.5, seed=1)
    >>> round(float(keras.ops.sum(sample)), 6)
    1.0

    References:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
    """
    temperature = validation.check_temperature(temperature)
    validation.check_bool("hard", hard)
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    temperature = ops.cast(temperature, "float32")
    noisy_logits = logits + gumbel_noise(ops.shape(logits), seed=seed)
    # log_softmax, then exp: the same value as softmax, computed the way TFP
    # samples the Concrete distribution, stable at small temperatures.
    soft = ops.exp(ops.log_softmax(noisy_logits / temperature, axis=axis))
    if hard:
        sample = straight_through(one_hot_argmax(soft, axis=axis), soft)
    else:
        sample = soft
    return ops.cast(sample, dtype)


def sample_one_hot(logits, axis=-1, seed=None):
    """Draws an exact categorical sample as a one-hot tensor (Gumbel-max).

    The argmax of `logits + g`, with `g` standard Gumbel noise, is distributed
    as `Categorical(softmax(logits))` along `axis`. The result carries no
    gradient.

    Args:
        logits: float tensor of unnormalized log-probabilities, any rank;
            `-inf` entries are never drawn.
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
    noisy_logits = logits + gumbel_noise(ops.shape(logits), seed=seed)
    sample = one_hot_argmax(ops.stop_gradient(noisy_logits), axis=axis)
    return ops.cast(sample, dtype)
