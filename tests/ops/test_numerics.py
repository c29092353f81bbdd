"""No NaN or inf over a million draws at extreme logits and temperatures.

Every op computes in float32 and returns the input's dtype; the tests run
under float32, float16 and bfloat16 inputs (one, whose true value overflows
float16, under float32 only) and check the output dtype, the values and the
gradients with respect to the logits. Each draw holds 1e6 entries.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_latent.ops import bernoulli_kl
from keras_latent.ops import categorical_kl
from keras_latent.ops import gumbel_softmax
from keras_latent.ops import noise
from keras_latent.ops import relaxed_bernoulli
from keras_latent.ops import relaxed_one_hot_log_prob
from keras_latent.ops import sample_one_hot
from tests.ops.gradients import gradient

DTYPES = ["float32", "float16", "bfloat16"]
SHAPE = (10000, 100)


def extreme_logits(seed):
    """Logits in [-1e4, 1e4] with exact +-1e4 columns and masked categories:
    column 2 always, column 3 on every other row."""
    rng = np.random.default_rng(seed)
    logits = rng.uniform(-1e4, 1e4, size=SHAPE).astype("float32")
    logits[:, 0] = 1e4
    logits[:, 1] = -1e4
    logits[:, 2] = -np.inf
    logits[::2, 3] = -np.inf
    return logits


LOGITS = extreme_logits(1)
PRIOR_LOGITS = np.where(np.isinf(LOGITS), -np.inf, extreme_logits(2))
MASKED = np.isinf(LOGITS)
WEIGHTS = np.random.default_rng(3).normal(size=SHAPE).astype("float32")


def to_numpy(x):
    return ops.convert_to_numpy(ops.cast(x, "float32"))


def check_output(result, dtype, shape):
    """Checks dtype and shape, and returns the values as float32 NumPy."""
    assert keras.backend.standardize_dtype(result.dtype) == dtype
    assert tuple(result.shape) == shape
    values = to_numpy(result)
    assert np.all(np.isfinite(values))
    return values


def finite_gradient(fn, x):
    """The gradient of sum(weights * fn(x)), with fixed random weights,
    checked finite and of the dtype of x."""

    def weighted(value):
        result = ops.cast(fn(value), "float32")
        size = int(np.prod(result.shape))
        weights = WEIGHTS.reshape(-1)[:size].reshape(tuple(result.shape))
        return ops.multiply(result, weights)

    result = gradient(weighted, x)
    assert keras.backend.standardize_dtype(result.dtype) == (
        keras.backend.standardize_dtype(x.dtype)
    )
    assert np.all(np.isfinite(result.astype("float32")))
    return result


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("temperature", [0.01, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gumbel_softmax(dtype, temperature, hard):
    logits = ops.cast(LOGITS, dtype)

    def sample(x):
        return gumbel_softmax(x, temperature, hard=hard, seed=5)

    values = check_output(sample(logits), dtype, SHAPE)
    assert np.all(values >= 0.0)
    assert np.all(values[MASKED] == 0.0)
    if hard:
        assert np.all((values == 0.0) | (values == 1.0))
        assert np.all(values.sum(axis=-1) == 1.0)
    else:
        np.testing.assert_allclose(values.sum(axis=-1), 1.0, atol=0.05)
    finite_gradient(sample, logits)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_one_hot(dtype):
    values = check_output(
        sample_one_hot(ops.cast(LOGITS, dtype), seed=6), dtype, SHAPE
    )
    assert np.all((values == 0.0) | (values == 1.0))
    assert np.all(values.sum(axis=-1) == 1.0)
    assert np.all(values[MASKED] == 0.0)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("temperature", [0.01, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_relaxed_bernoulli(dtype, temperature, hard):
    logits = ops.cast(np.where(MASKED, 1e4, LOGITS), dtype)

    def sample(x):
        return relaxed_bernoulli(x, temperature, hard=hard, seed=7)

    values = check_output(sample(logits), dtype, SHAPE)
    assert np.all((values >= 0.0) & (values <= 1.0))
    if hard:
        assert np.all((values == 0.0) | (values == 1.0))
    finite_gradient(sample, logits)


@pytest.mark.parametrize("dtype", DTYPES)
def test_categorical_kl_with_prior_zero_where_posterior_is_zero(dtype):
    """Masked categories have a prior of exactly zero too: 0 log(0 / 0)."""
    logits = ops.cast(LOGITS, dtype)
    prior_logits = ops.cast(PRIOR_LOGITS, dtype)
    values = check_output(
        categorical_kl(logits, prior_logits), dtype, SHAPE[:1]
    )
    assert np.all(values >= -1e-3)
    finite_gradient(lambda x: categorical_kl(x, prior_logits), logits)
    finite_gradient(lambda y: categorical_kl(logits, y), prior_logits)
    finite_gradient(categorical_kl, logits)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_kl(dtype):
    """Logits of +-1e4 and +-inf, priors in [-1e4, 1e4]."""
    logits = np.where(MASKED, np.inf, LOGITS)
    logits[1::2, 3] = -np.inf
    logits = ops.cast(logits, dtype)
    prior_logits = ops.cast(extreme_logits(4).clip(-1e4, 1e4), dtype)
    values = check_output(bernoulli_kl(logits, prior_logits), dtype, SHAPE)
    assert np.all(values >= -1e-3)
    finite_gradient(lambda x: bernoulli_kl(x, prior_logits), logits)
    finite_gradient(lambda y: bernoulli_kl(logits, y), prior_logits)
    finite_gradient(bernoulli_kl, logits)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relaxed_one_hot_log_prob_at_low_temperature(dtype):
    """Samples at temperature 0.05 hold entries that underflow to 0.

    The logits are N(0, 3): the log-density of 100 categories then stays
    within the float16 range (it is about 8000); logits of 1e4 would put it
    near -1e6, beyond float16, which the float32 case below covers.
    """
    temperature = 0.05
    logits = ops.cast(
        np.random.default_rng(8).normal(0.0, 3.0, size=SHAPE), dtype
    )
    sample = gumbel_softmax(logits, temperature, seed=9)
    assert np.any(to_numpy(sample) == 0.0)
    check_output(
        relaxed_one_hot_log_prob(sample, logits, temperature),
        dtype,
        SHAPE[:1],
    )
    finite_gradient(
        lambda x: relaxed_one_hot_log_prob(sample, x, temperature), logits
    )


def test_relaxed_one_hot_log_prob_with_extreme_logits():
    temperature = 0.05
    logits = np.where(MASKED, -1e4, LOGITS)
    sample = gumbel_softmax(logits, temperature, seed=10)
    check_output(
        relaxed_one_hot_log_prob(sample, logits, temperature),
        "float32",
        SHAPE[:1],
    )
    finite_gradient(
        lambda x: relaxed_one_hot_log_prob(sample, x, temperature), logits
    )


@pytest.mark.parametrize("raw_draw", [0.0, 1.0 - 2.0**-24, 1.0])
def test_the_noise_bounds_keep_extreme_raw_draws_inside_0_1(
    raw_draw, monkeypatch
):
    """Every backend maps its raw draw r in [0, 1) onto [minval, maxval] as
    (maxval - minval) * r + minval in float32; with the bounds the noise
    asks for, even r = 0 or r = 1 (returned by some GPU samplers) gives a
    uniform in (0, 1) and so a finite Gumbel sample, without a clip."""

    def affine_draw(shape, minval, maxval, dtype, seed):
        r = np.full(shape, raw_draw, dtype="float32")
        width = np.float32(maxval) - np.float32(minval)
        return keras.ops.convert_to_tensor(width * r + np.float32(minval))

    monkeypatch.setattr(noise.random, "uniform", affine_draw)
    u = keras.ops.convert_to_numpy(noise.uniform_noise((3,), seed=1))
    assert np.all((u > 0.0) & (u < 1.0)), u
    gumbel = -np.log(-np.log(u.astype("float64")))
    assert np.all(np.isfinite(gumbel)), gumbel
    logits = np.zeros((1, 3), "float32")
    sample = keras.ops.convert_to_numpy(gumbel_softmax(logits, 0.1, seed=1))
    assert np.all(np.isfinite(sample)), sample
