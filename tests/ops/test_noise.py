"""`uniform_noise` and `normal_noise`: their distributions, their seeds,
and on TensorFlow the same draws with and without XLA. That replicas draw
different noise is in `tests/test_data_parallel.py`."""

import keras
import numpy as np
import pytest
from scipy import stats

from keras_latent import ops
from tests.arrays import to_numpy

# Each Kolmogorov-Smirnov test rejects a correct sampler with probability
# 1e-4 (the seeds are fixed, so a pass stays a pass).
FALSE_FAILURE_RATE = 1e-4
DRAWS = {
    "uniform_noise": (ops.uniform_noise, stats.uniform.cdf),
    "normal_noise": (ops.normal_noise, stats.norm.cdf),
}


@pytest.mark.parametrize("name", DRAWS)
def test_the_draws_follow_their_distribution(name):
    draw, cdf = DRAWS[name]
    sample = keras.ops.convert_to_numpy(draw((200, 100), seed=11))
    assert sample.dtype == np.float32
    assert stats.kstest(sample.ravel(), cdf).pvalue > FALSE_FAILURE_RATE
    # Independent across positions: neighbouring columns are uncorrelated
    # (|r| below 4.5 standard errors of 1 / sqrt(n), two-sided 7e-6).
    correlation = np.corrcoef(sample[:, :-1].ravel(), sample[:, 1:].ravel())
    assert abs(correlation[0, 1]) < 4.5 / np.sqrt(sample[:, 1:].size)


@pytest.mark.parametrize("name", DRAWS)
def test_a_seed_repeats_and_a_seed_generator_moves_on(name):
    draw, _ = DRAWS[name]
    first, again, other = (to_numpy(draw((64,), seed=s)) for s in (3, 3, 4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    generator = keras.random.SeedGenerator(3)
    assert not np.array_equal(
        to_numpy(draw((64,), seed=generator)),
        to_numpy(draw((64,), seed=generator)),
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA only"
)
def test_tensorflow_normal_noise_is_the_same_with_and_without_xla():
    import tensorflow as tf

    def draw():
        return ops.normal_noise((4, 64), seed=7)

    eager = to_numpy(draw())
    np.testing.assert_array_equal(
        tf.function(draw, jit_compile=True)().numpy(), eager
    )
    # Without XLA TensorFlow's default is Philox: Keras's own draws.
    np.testing.assert_array_equal(
        eager, to_numpy(keras.random.normal((4, 64), seed=7))
    )
