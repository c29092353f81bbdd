"""Gradient estimators for categorical and Bernoulli latent variables.

Each estimator returns a tensor whose forward value is a sample (relaxed or
exact) and whose gradient is the estimator's surrogate gradient; the math of
each one is written here once, and layers choose it by name.

Every random op takes `seed` or, in its place, `noise`: uniform draws on
(0, 1) of a documented shape, from which the op computes everything it
samples. Passing the same `noise` twice gives the same value and gradient,
which tests use to compare an estimator with its definition, and users to
compare estimators on common random numbers.

`reinforce_loo_surrogate` is the score-function estimator: it needs the
downstream loss, which a layer does not see, so it builds a surrogate loss
from log-probabilities and losses instead of a sample.
"""

from keras import ops

from keras_latent import validation
from keras_latent.ops import softmax_kernels
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.dtypes import is_empty
from keras_latent.ops.gumbel import one_hot_argmax
from keras_latent.ops.noise import given_or_uniform_noise
from keras_latent.ops.straight_through import straight_through

ESTIMATORS = (
    "gumbel_softmax",
    "straight_through_gumbel",
    "straight_through",
    "gumbel_rao",
    "reinmax",
)
# Estimators whose forward value is a relaxed sample; the others return an
# exact one-hot (or {0, 1}) sample.
RELAXED_ESTIMATORS = ("gumbel_softmax",)
# Estimators that draw a Concrete sample alongside the forward value, from
# which a Monte Carlo (relaxed) KL can be estimated.
CONCRETE_ESTIMATORS = (
    "gumbel_softmax",
    "straight_through_gumbel",
    "gumbel_rao",
)
DEFAULT_NUM_SAMPLES = 10


def _negative_axis(axis, rank):
    """`axis` counted from the end, so that it holds on a leading sample
    axis too."""
    validation.check_axis_in_rank("axis", axis, rank)
    return axis - rank if axis >= 0 else axis


def _shifted(logits, axis):
    """`logits - max(logits)` along `axis`, the max without gradient."""
    if is_empty(logits):
        return logits
    maximum = ops.stop_gradient(ops.amax(logits, axis=axis, keepdims=True))
    return logits - maximum


def _gumbel(uniform):
    return -ops.log(-ops.log(uniform))


def _check_common(temperature, axis):
    temperature = validation.check_temperature("temperature", temperature)
    axis = validation.check_axis("axis", axis)
    return temperature, axis


def straight_through_gumbel(
    logits,
    temperature=1.0,
    axis=-1,
    seed=None,
    noise=None,
    return_log_sample=False,
):
    """Straight-through Gumbel-softmax: one-hot forward, relaxed gradient.

    With `g` standard Gumbel noise (`g = -log(-log(u))`) and the Concrete
    sample `y = softmax((logits + g) / temperature)`, the forward value is
    the one-hot `D` of `argmax(logits + g)`, an exact sample of
    `Categorical(softmax(logits))`, and the gradient is that of `y`:
    `D + y - stop_gradient(y)`. The gradient is biased; the bias shrinks
    with the temperature while the variance grows.

    Args:
        logits: float tensor of unnormalized log-probabilities.
        temperature: float >= 1e-30, or a scalar tensor.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform draws on (0, 1) of the shape of `logits`,
            used in place of a draw from `seed`.
        return_log_sample: whether to return `log(y)` as well.

    Returns:
        A one-hot tensor of the shape and dtype of `logits`; with
        `return_log_sample=True`, the pair `(sample, log_sample)`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> sample = keras_latent.ops.straight_through_gumbel(logits, 0.5, seed=1)
    >>> float(keras.ops.sum(sample))
    1.0

    References:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
        - [Bengio et al., 2013](https://arxiv.org/abs/1308.3432)
    """
    temperature, axis = _check_common(temperature, axis)
    logits, dtype = as_float32(logits)
    axis = _negative_axis(axis, len(logits.shape))
    uniform = given_or_uniform_noise(noise, ops.shape(logits), seed)
    sample, log_sample = _straight_through_gumbel(
        logits, temperature, axis, uniform
    )
    sample = ops.cast(sample, dtype)
    return (sample, log_sample) if return_log_sample else sample


def _relaxed_log_sample(logits, temperature, axis, uniform):
    noisy_logits = _shifted(logits, axis) + _gumbel(uniform)
    return _log_sample_of_noisy(noisy_logits, temperature, axis)


def _log_sample_of_noisy(noisy_logits, temperature, axis):
    return softmax_kernels.log_softmax(
        noisy_logits / ops.cast(temperature, "float32"), axis=axis
    )


def _straight_through_gumbel(logits, temperature, axis, uniform):
    noisy_logits = _shifted(logits, axis) + _gumbel(uniform)
    log_sample = _log_sample_of_noisy(noisy_logits, temperature, axis)
    # The argmax of the noisy logits, not of the log-sample: at high
    # temperatures the division and the normalization round close noisy
    # logits to ties (at 1e6, one draw in 20 of 10 categories), which the
    # argmax would break towards the lowest index.
    hard = _one_hot_argmax(noisy_logits, axis)
    return straight_through(hard, ops.exp(log_sample)), log_sample


def straight_through_sample(logits, axis=-1, seed=None, noise=None):
    """Straight-through estimator: exact sample forward, probabilities back.

    The forward value is an exact one-hot sample `D` of
    `Categorical(softmax(logits))` (Gumbel-max: the argmax of
    `logits + g`); the gradient is that of the probabilities
    `p = softmax(logits)`: `D + p - stop_gradient(p)`. No temperature.

    Args:
        logits: float tensor of unnormalized log-probabilities.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform draws on (0, 1) of the shape of `logits`.

    Returns:
        A one-hot tensor of the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> sample = keras_latent.ops.straight_through_sample(logits, seed=1)
    >>> float(keras.ops.sum(sample))
    1.0

    References:
        - [Bengio et al., 2013](https://arxiv.org/abs/1308.3432)
    """
    axis = validation.check_axis("axis", axis)
    logits, dtype = as_float32(logits)
    axis = _negative_axis(axis, len(logits.shape))
    uniform = given_or_uniform_noise(noise, ops.shape(logits), seed)
    return ops.cast(_straight_through_sample(logits, axis, uniform), dtype)


def _one_hot_argmax(x, axis):
    # TensorFlow's one_hot takes -1 or a non-negative axis only.
    return one_hot_argmax(x, axis=len(x.shape) + axis)


def _gumbel_max(shifted_logits, axis, uniform):
    return _one_hot_argmax(shifted_logits + _gumbel(uniform), axis)


def _straight_through_sample(logits, axis, uniform):
    shifted = _shifted(logits, axis)
    hard = _gumbel_max(shifted, axis, uniform)
    return straight_through(hard, softmax_kernels.softmax(shifted, axis=axis))


def conditional_gumbel(
    logits, sample, axis=-1, noise=None, seed=None, num_samples=1
):
    """Perturbed logits `logits + g` conditioned on their argmax.

    Draws `num_samples` vectors `z = logits + g`, `g` standard Gumbel,
    from their distribution given `argmax(z) = D` for the one-hot `sample`
    D (Paulus et al. 2021, appendix; Maddison et al. 2014). With
    `E ~ Exponential(1)` independent (`E = -log(u)`) and
    `log Z = logsumexp(logits)`:

        z_D = log Z - log E_D
        z_j = -log(E_j exp(-logits_j) + E_D exp(-log Z)),   j != D,

    the maximum `z_D` being `Gumbel(log Z)` and each other `z_j` a Gumbel
    of location `logits_j` truncated below `z_D`. It is computed in log
    space (`z_j = -logaddexp(log E_j - logits_j, log E_D - log Z)`) on
    logits shifted by their maximum, and returned in that shifted frame:
    `argmax(z) = D` exactly, and masked (`-inf`) categories stay `-inf`.
    The result carries no gradient.

    Args:
        logits: float tensor of unnormalized log-probabilities.
        sample: one-hot tensor of the same shape, the conditioning argmax.
        axis: the category axis.
        noise: None, or uniform draws on (0, 1) of shape
            `(num_samples, *logits.shape)`.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        num_samples: the number of draws, an integer >= 1.

    Returns:
        A float32 tensor of shape `(num_samples, *logits.shape)`: the
        perturbed logits minus `max(logits)`.

    Example:

    >>> logits = keras.ops.zeros((1, 3))
    >>> sample = keras.ops.convert_to_tensor([[0.0, 1.0, 0.0]])
    >>> z = keras_latent.ops.conditional_gumbel(
    ...     logits, sample, num_samples=4, seed=1)
    >>> keras.ops.convert_to_numpy(keras.ops.argmax(z, axis=-1)).tolist()
    [[1], [1], [1], [1]]

    References:
        - [Paulus et al., 2021](https://arxiv.org/abs/2010.04838)
        - [Maddison et al., 2014](https://arxiv.org/abs/1411.0030)
    """
    axis = validation.check_axis("axis", axis)
    num_samples = validation.check_integer("num_samples", num_samples, 1)
    logits, _ = as_float32(logits)
    sample, _ = as_float32(sample)
    axis = _negative_axis(axis, len(logits.shape))
    uniform = given_or_uniform_noise(
        noise, (num_samples, *ops.shape(logits)), seed
    )
    shifted = ops.stop_gradient(_shifted(logits, axis))
    return _conditional_gumbel(
        shifted, ops.stop_gradient(sample), axis, uniform
    )


def _conditional_gumbel(shifted_logits, sample, axis, uniform):
    log_exponential = ops.log(-ops.log(uniform))
    log_exponential_chosen = ops.sum(
        sample * log_exponential, axis=axis, keepdims=True
    )
    log_normalizer = ops.logsumexp(shifted_logits, axis=axis, keepdims=True)
    chosen = log_normalizer - log_exponential_chosen
    others = -ops.logaddexp(
        log_exponential - shifted_logits,
        log_exponential_chosen - log_normalizer,
    )
    return ops.where(sample > 0, chosen, others)


def gumbel_rao(
    logits,
    temperature=1.0,
    num_samples=DEFAULT_NUM_SAMPLES,
    axis=-1,
    seed=None,
    noise=None,
    return_log_sample=False,
):
    """Gumbel-Rao: straight-through Gumbel, Rao-Blackwellized over the noise.

    The forward value is an exact one-hot sample `D` of
    `Categorical(softmax(logits))`. The gradient is the average, over
    `num_samples` (K) Gumbel perturbations `z_k` drawn from their
    distribution given `argmax(z_k) = D` (see `conditional_gumbel`), of
    the gradient of the relaxed sample at that noise:

        D + s - stop_gradient(s),
        s = (1 / K) sum_k softmax((logits + stop_gradient(g_k)) / t),

    with `g_k = z_k - logits` held fixed. Its expectation equals that of
    the straight-through Gumbel gradient, with variance no larger (Paulus
    et al. 2021, Theorem 1); K = 1 is straight-through Gumbel in
    distribution.

    Args:
        logits: float tensor of unnormalized log-probabilities.
        temperature: float >= 1e-30, or a scalar tensor.
        num_samples: K, the number of conditional draws, an integer >= 1.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform draws on (0, 1) of shape
            `(num_samples + 1, *logits.shape)`: the first slice draws `D`
            by Gumbel-max, the others the conditional perturbations.
        return_log_sample: whether to return the K Concrete log-samples
            `log_softmax(z_k / t)` as well: each one is, marginally, an
            exact Concrete sample, usable for a Monte Carlo KL.

    Returns:
        A one-hot tensor of the shape and dtype of `logits`; with
        `return_log_sample=True`, the pair `(sample, log_samples)`, the
        log-samples of shape `(num_samples, *logits.shape)` in float32.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> sample = keras_latent.ops.gumbel_rao(logits, 0.5, 8, seed=1)
    >>> float(keras.ops.sum(sample))
    1.0

    References:
        - [Paulus et al., 2021](https://arxiv.org/abs/2010.04838)
    """
    temperature, axis = _check_common(temperature, axis)
    num_samples = validation.check_integer("num_samples", num_samples, 1)
    logits, dtype = as_float32(logits)
    axis = _negative_axis(axis, len(logits.shape))
    uniform = given_or_uniform_noise(
        noise, (num_samples + 1, *ops.shape(logits)), seed
    )
    sample, log_samples = _gumbel_rao(logits, temperature, axis, uniform)
    sample = ops.cast(sample, dtype)
    return (sample, log_samples) if return_log_sample else sample


def _gumbel_rao(logits, temperature, axis, uniform):
    shifted = _shifted(logits, axis)
    hard = _gumbel_max(shifted, axis, uniform[0])
    perturbed = _conditional_gumbel(
        ops.stop_gradient(shifted), hard, axis, uniform[1:]
    )
    # The noise g_k = z_k - logits is held fixed; masked categories (where
    # that difference is -inf - (-inf)) keep their -inf logits.
    supported = ops.not_equal(shifted, -float("inf"))
    noise = ops.stop_gradient(ops.where(supported, perturbed - shifted, 0.0))
    log_samples = softmax_kernels.log_softmax(
        (shifted + noise) / ops.cast(temperature, "float32"), axis=axis
    )
    relaxed = ops.mean(ops.exp(log_samples), axis=0)
    return straight_through(hard, relaxed), log_samples


def _softmax_jacobian_surrogate(probabilities, logits, axis):
    """A tensor whose Jacobian in `logits` is that of a softmax at the
    (fixed) `probabilities`, `diag(p) - p p^T`, and whose value is 0 at
    any point: `p * (logits - sum(p * logits))`, p held fixed.

    Masked (`-inf`) logits, where p is 0, are read as 0: they get no
    gradient, as through a softmax.
    """
    probabilities = ops.stop_gradient(probabilities)
    logits = ops.where(ops.isinf(logits), 0.0, logits)
    mean = ops.sum(probabilities * logits, axis=axis, keepdims=True)
    surrogate = probabilities * (logits - mean)
    return surrogate - ops.stop_gradient(surrogate)


def reinmax(logits, temperature=1.0, axis=-1, seed=None, noise=None):
    """ReinMax: a second-order straight-through estimator.

    The forward value is an exact one-hot sample `D` of
    `Categorical(pi_0)`, `pi_0 = softmax(logits)`. The gradient follows
    Algorithm 2 of Liu et al. (2023), which approximates the gradient by
    Heun's method instead of the forward Euler step of straight-through:

        pi_1 = (D + softmax(logits / t)) / 2
        pi_1 = softmax(stop_gradient(log(pi_1) - logits) + logits)
        pi_2 = 2 pi_1 - pi_0 / 2
        output = D + pi_2 - stop_gradient(pi_2)

    so that the Jacobian of the output in the logits is
    `2 J(pi_1) - J(pi_0) / 2`, `J(p) = diag(p) - p p^T` the softmax's
    Jacobian at p. It is computed as that Jacobian directly (a surrogate
    `p * (logits - <p, logits>)` with p held fixed has Jacobian J(p)),
    which needs no `log(pi_1)` and stays finite where pi_1 underflows.

    Args:
        logits: float tensor of unnormalized log-probabilities.
        temperature: float >= 1e-30, or a scalar tensor; the paper's `tau`.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform draws on (0, 1) of the shape of `logits`.

    Returns:
        A one-hot tensor of the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> sample = keras_latent.ops.reinmax(logits, 1.0, seed=1)
    >>> float(keras.ops.sum(sample))
    1.0

    References:
        - [Liu et al., 2023](https://arxiv.org/abs/2304.08612)
    """
    temperature, axis = _check_common(temperature, axis)
    logits, dtype = as_float32(logits)
    axis = _negative_axis(axis, len(logits.shape))
    uniform = given_or_uniform_noise(noise, ops.shape(logits), seed)
    return ops.cast(_reinmax(logits, temperature, axis, uniform), dtype)


def _reinmax(logits, temperature, axis, uniform):
    shifted = _shifted(logits, axis)
    hard = _gumbel_max(shifted, axis, uniform)
    temperature = ops.cast(temperature, "float32")
    first = softmax_kernels.softmax(shifted, axis=axis)
    second = (
        hard + softmax_kernels.softmax(shifted / temperature, axis=axis)
    ) / 2.0
    surrogate = 2.0 * _softmax_jacobian_surrogate(
        second, shifted, axis
    ) - 0.5 * _softmax_jacobian_surrogate(first, shifted, axis)
    return hard + surrogate


def categorical_estimator(
    logits,
    estimator="gumbel_softmax",
    temperature=1.0,
    num_samples=DEFAULT_NUM_SAMPLES,
    axis=-1,
    seed=None,
    noise=None,
):
    """A categorical sample with the gradient of the estimator `estimator`.

    `"gumbel_softmax"`: the relaxed sample (see
    `keras_latent.ops.gumbel_softmax`); `"straight_through_gumbel"`,
    `"straight_through"`, `"gumbel_rao"`, `"reinmax"`: the ops
    `straight_through_gumbel`, `straight_through_sample`, `gumbel_rao` and
    `reinmax`. Also returns the Concrete log-samples that a Monte Carlo KL
    needs, for the estimators that draw them (`CONCRETE_ESTIMATORS`).

    Args:
        logits: float tensor of unnormalized log-probabilities.
        estimator: one of `ESTIMATORS`.
        temperature: float >= 1e-30, or a scalar tensor (unused by
            `"straight_through"`).
        num_samples: the K of `"gumbel_rao"`.
        axis: the category axis.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform noise of the shape the estimator's op
            documents.

    Returns:
        The pair `(sample, log_samples)`: the sample in the dtype of
        `logits`; `log_samples` of shape `(n, *logits.shape)` in float32
        (n = 1, or K for `"gumbel_rao"`), or None for the estimators
        without a Concrete sample.

    Example:

    >>> logits = keras.ops.zeros((2, 3))
    >>> sample, _ = keras_latent.ops.categorical_estimator(
    ...     logits, "reinmax", seed=1)
    >>> tuple(sample.shape)
    (2, 3)
    """
    estimator = validation.check_choice("estimator", estimator, ESTIMATORS)
    temperature, axis = _check_common(temperature, axis)
    logits, dtype = as_float32(logits)
    axis = _negative_axis(axis, len(logits.shape))
    shape = ops.shape(logits)
    log_samples = None
    if estimator == "gumbel_rao":
        num_samples = validation.check_integer("num_samples", num_samples, 1)
        uniform = given_or_uniform_noise(noise, (num_samples + 1, *shape), seed)
        sample, log_samples = _gumbel_rao(logits, temperature, axis, uniform)
        return ops.cast(sample, dtype), log_samples
    uniform = given_or_uniform_noise(noise, shape, seed)
    if estimator == "gumbel_softmax":
        log_sample = _relaxed_log_sample(logits, temperature, axis, uniform)
        sample = ops.exp(log_sample)
        log_samples = ops.expand_dims(log_sample, 0)
    elif estimator == "straight_through_gumbel":
        sample, log_sample = _straight_through_gumbel(
            logits, temperature, axis, uniform
        )
        log_samples = ops.expand_dims(log_sample, 0)
    elif estimator == "straight_through":
        sample = _straight_through_sample(logits, axis, uniform)
    else:
        sample = _reinmax(logits, temperature, axis, uniform)
    return ops.cast(sample, dtype), log_samples


def _bernoulli_draw(logits, uniform):
    """The exact Bernoulli sample `u < sigmoid(logits)`, without gradient;
    NaN logits give NaN."""
    logits = ops.stop_gradient(logits)
    sample = ops.cast(uniform < ops.sigmoid(logits), "float32")
    return ops.where(ops.isnan(logits), float("nan"), sample)


def conditional_logistic(logits, sample, noise=None, seed=None, num_samples=1):
    """Logistic noise `l` conditioned on the Bernoulli outcome it gives.

    A Bernoulli unit with log-odds `a` is 1 exactly when `a + l > 0`, `l`
    standard logistic: the two-category Gumbel-max with logits `(0, a)`,
    `l` the difference of the two Gumbels. Given the outcome `b`, `l` is
    logistic truncated to `l > -a` (b = 1) or `l <= -a` (b = 0), drawn by
    inverting the logistic CDF on a uniform `u`:

        b = 0:  l = logit(u * sigmoid(-a))
        b = 1:  l = -logit(u * sigmoid(a))

    with `logit(w) = log(w) - log1p(-w)` taken from `log u +
    log_sigmoid(+-a)`, finite for any finite `a`. The result carries no
    gradient.

    Args:
        logits: float tensor, the log-odds `a`.
        sample: tensor of zeros and ones of the same shape, the outcome.
        noise: None, or uniform draws on (0, 1) of shape
            `(num_samples, *logits.shape)`.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        num_samples: the number of draws, an integer >= 1.

    Returns:
        A float32 tensor of shape `(num_samples, *logits.shape)`.

    Example:

    >>> logits = keras.ops.convert_to_tensor([0.5, -0.5])
    >>> noise = keras_latent.ops.conditional_logistic(
    ...     logits, keras.ops.convert_to_tensor([1.0, 0.0]), seed=1)
    >>> keras.ops.convert_to_numpy(logits + noise > 0).tolist()
    [[True, False]]

    References:
        - [Paulus et al., 2021](https://arxiv.org/abs/2010.04838)
    """
    num_samples = validation.check_integer("num_samples", num_samples, 1)
    logits, _ = as_float32(logits)
    sample, _ = as_float32(sample)
    uniform = given_or_uniform_noise(
        noise, (num_samples, *ops.shape(logits)), seed
    )
    return _conditional_logistic(
        ops.stop_gradient(logits), ops.stop_gradient(sample), uniform
    )


def _conditional_logistic(logits, sample, uniform):
    one = sample > 0
    signed_logits = ops.where(one, logits, -logits)
    log_w = ops.log(uniform) + ops.log_sigmoid(signed_logits)
    magnitude = log_w - ops.log1p(-ops.exp(log_w))
    return ops.where(one, -magnitude, magnitude)


def bernoulli_estimator(
    logits,
    estimator="gumbel_softmax",
    temperature=1.0,
    num_samples=DEFAULT_NUM_SAMPLES,
    seed=None,
    noise=None,
):
    """A Bernoulli sample with the gradient of the estimator `estimator`.

    Each estimator is its categorical version (see `categorical_estimator`)
    on the two categories with logits `(0, a)`, `a` the log-odds, written
    on the unit's value `b` (the probability of category 1):

    - `"gumbel_softmax"`: the binary Concrete sample
      `y = sigmoid((a + l) / t)`, `l` standard logistic (`logit(u)`).
    - `"straight_through_gumbel"`: forward `b = 1[a + l > 0]`, gradient of
      `y`.
    - `"straight_through"`: forward `b = 1[u < sigmoid(a)]`, gradient of
      `sigmoid(a)`.
    - `"gumbel_rao"`: forward `b = 1[u_0 < sigmoid(a)]`; gradient of
      `(1 / K) sum_k sigmoid((a + l_k) / t)`, the `l_k` drawn given `b`
      (see `conditional_logistic`). Exactly the two-category Gumbel-Rao:
      the relaxed sample depends on the two Gumbels only through their
      difference `l`.
    - `"reinmax"`: forward `b = 1[u < sigmoid(a)]`; with `pi_0 =
      sigmoid(a)` and `pi_1 = (b + sigmoid(a / t)) / 2`, the derivative
      in `a` is `2 pi_1 (1 - pi_1) - pi_0 (1 - pi_0) / 2`, the second
      entry of ReinMax's `2 J(pi_1) - J(pi_0) / 2` on logits `(0, a)`.

    Args:
        logits: float tensor, the log-odds of each unit.
        estimator: one of `ESTIMATORS`.
        temperature: float >= 1e-30, or a scalar tensor (unused by
            `"straight_through"`).
        num_samples: the K of `"gumbel_rao"`, an integer >= 1.
        seed: an integer, a `keras.random.SeedGenerator`, or None.
        noise: None, or uniform draws on (0, 1) of the shape of `logits`,
            `(num_samples + 1, *logits.shape)` for `"gumbel_rao"` (the
            first slice draws `b`).

    Returns:
        The pair `(sample, logit_samples)`: the sample in the dtype of
        `logits`, and the logits `(a + l) / t` of the relaxed samples, of
        shape `(n, *logits.shape)` in float32 (n = 1, or K for
        `"gumbel_rao"`; each one marginally an exact binary Concrete
        logit sample), or None for `"straight_through"` and `"reinmax"`.

    Example:

    >>> logits = keras.ops.zeros((2, 3))
    >>> sample, _ = keras_latent.ops.bernoulli_estimator(
    ...     logits, "straight_through", seed=1)
    >>> tuple(sample.shape)
    (2, 3)

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
        - [Bengio et al., 2013](https://arxiv.org/abs/1308.3432)
        - [Paulus et al., 2021](https://arxiv.org/abs/2010.04838)
        - [Liu et al., 2023](https://arxiv.org/abs/2304.08612)
    """
    estimator = validation.check_choice("estimator", estimator, ESTIMATORS)
    temperature = validation.check_temperature("temperature", temperature)
    logits, dtype = as_float32(logits)
    shape = ops.shape(logits)
    temperature = ops.cast(temperature, "float32")
    logit_samples = None
    if estimator == "gumbel_rao":
        num_samples = validation.check_integer("num_samples", num_samples, 1)
        uniform = given_or_uniform_noise(noise, (num_samples + 1, *shape), seed)
        hard = _bernoulli_draw(logits, uniform[0])
        logistic = _conditional_logistic(
            ops.stop_gradient(logits), hard, uniform[1:]
        )
        logit_samples = (logits + logistic) / temperature
        relaxed = ops.mean(ops.sigmoid(logit_samples), axis=0)
        sample = straight_through(hard, relaxed)
        return ops.cast(sample, dtype), logit_samples
    uniform = given_or_uniform_noise(noise, shape, seed)
    if estimator in ("gumbel_softmax", "straight_through_gumbel"):
        logistic = ops.log(uniform) - ops.log1p(-uniform)
        logit_sample = (logits + logistic) / temperature
        sample = ops.sigmoid(logit_sample)
        if estimator == "straight_through_gumbel":
            hard = ops.cast(ops.stop_gradient(logit_sample) > 0, "float32")
            sample = straight_through(hard, sample)
        logit_samples = ops.expand_dims(logit_sample, 0)
    elif estimator == "straight_through":
        hard = _bernoulli_draw(logits, uniform)
        sample = straight_through(hard, ops.sigmoid(logits))
    else:
        hard = _bernoulli_draw(logits, uniform)
        first = ops.stop_gradient(ops.sigmoid(logits))
        second = ops.stop_gradient(
            (hard + ops.sigmoid(logits / temperature)) / 2.0
        )
        slope = 2.0 * second * (1.0 - second) - 0.5 * first * (1.0 - first)
        surrogate = slope * logits
        sample = hard + (surrogate - ops.stop_gradient(surrogate))
    return ops.cast(sample, dtype), logit_samples


def reinforce_loo_surrogate(log_probs, losses, axis=0):
    """Surrogate loss of the score-function estimator with a leave-one-out
    baseline (REINFORCE-LOO).

    With S >= 2 samples `z_s` per example drawn independently (and without
    gradient) from q, their log-probabilities `log q(z_s)` and their losses
    `f_s`, the surrogate is

        (1 / S) sum_s stop_gradient(f_s - b_s) log q(z_s) + (1 / S) sum_s f_s,
        b_s = (1 / (S - 1)) sum_{j != s} f_j,

    whose value is the mean loss and whose gradient is an unbiased estimate
    of the gradient of `E_q[f(z)]`: the first term gives the score-function
    part (Kool et al. 2019, eq. 8: `(1 / (S - 1)) sum_s (f_s - mean f)
    grad log q(z_s)`, the same quantity), the second the pathwise part
    through `f` (for example the decoder's parameters). Minimize its mean
    over the batch, in `compute_loss` or a `train_step`; the samples must
    carry no gradient (`keras_latent.ops.sample_one_hot`,
    `sample_bernoulli`), or the pathwise term counts them twice.

    Args:
        log_probs: float tensor, `log q(z_s)` of each sample (summed over
            the latent variables of an example), samples along `axis`.
        losses: float tensor of the same shape, `f(z_s)`.
        axis: the sample axis; its size S must be known and >= 2.

    Returns:
        The surrogate of each example, `axis` reduced, in float32.

    Example:

    >>> log_probs = keras.ops.log(keras.ops.convert_to_tensor([[0.5], [0.25]]))
    >>> losses = keras.ops.convert_to_tensor([[1.0], [3.0]])
    >>> float(keras_latent.ops.reinforce_loo_surrogate(log_probs, losses)[0])
    2.0

    References:
        - [Kool et al., 2019](https://openreview.net/forum?id=r1lgTGL5DE)
        - [Williams, 1992](https://doi.org/10.1007/BF00992696)
    """
    axis = validation.check_axis("axis", axis)
    log_probs, _ = as_float32(log_probs)
    losses, _ = as_float32(losses)
    num_samples = losses.shape[axis]
    if num_samples is None or num_samples < 2:
        raise validation.invalid_shape(
            "losses",
            "at least 2 samples, statically known, along `axis`",
            losses.shape,
        )
    total = ops.sum(losses, axis=axis, keepdims=True)
    baseline = (total - losses) / (num_samples - 1.0)
    advantage = ops.stop_gradient(losses - baseline)
    # Zero in value, so that the surrogate's value is the mean loss.
    score = log_probs - ops.stop_gradient(log_probs)
    score_term = ops.mean(advantage * score, axis=axis)
    return score_term + ops.mean(losses, axis=axis)
