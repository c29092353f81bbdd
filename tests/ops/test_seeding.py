"""Every sampling op is reproducible with an integer seed and draws fresh
noise on each call with a `keras.random.SeedGenerator`."""

import keras
import numpy as np
import pytest

from keras_latent.ops import gumbel_softmax
from keras_latent.ops import noise
from keras_latent.ops import relaxed_bernoulli
from keras_latent.ops import sample_one_hot
from tests.arrays import to_numpy

SAMPLERS = {
    "gumbel_softmax": lambda logits, seed: gumbel_softmax(
        logits, 0.5, seed=seed
    ),
    "relaxed_bernoulli": lambda logits, seed: relaxed_bernoulli(
        logits, 0.5, seed=seed
    ),
    "sample_one_hot": lambda logits, seed: sample_one_hot(logits, seed=seed),
}


@pytest.mark.parametrize("sampler", SAMPLERS.values(), ids=SAMPLERS.keys())
def test_same_integer_seed_gives_the_same_sample(sampler, rng):
    logits = rng.normal(size=(500, 6)).astype("float32")
    first = to_numpy(sampler(logits, 3))
    second = to_numpy(sampler(logits, 3))
    other = to_numpy(sampler(logits, 4))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("sampler", SAMPLERS.values(), ids=SAMPLERS.keys())
def test_seed_generator_gives_new_samples_on_each_call(sampler, rng):
    logits = rng.normal(size=(500, 6)).astype("float32")
    seed_generator = keras.random.SeedGenerator(3)
    first = to_numpy(sampler(logits, seed_generator))
    second = to_numpy(sampler(logits, seed_generator))
    assert not np.array_equal(first, second)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA only"
)
def test_tensorflow_draws_the_same_noise_with_and_without_xla():
    """The noise is drawn with Philox named: TensorFlow's default
    algorithm is another one under XLA (and 115 times slower there on a
    CPU), which made a compiled training step draw other noise."""
    import tensorflow as tf

    def draw():
        return noise.uniform_noise((4, 64), seed=7)

    eager = keras.ops.convert_to_numpy(draw())
    compiled = tf.function(draw, jit_compile=True)().numpy()
    np.testing.assert_array_equal(compiled, eager)
    reference = keras.ops.convert_to_numpy(
        keras.random.uniform(
            (4, 64), minval=noise.TINY, maxval=noise.ONE_MINUS_EPSILON, seed=7
        )
    )
    # Without XLA TensorFlow's default is Philox: Keras's own draws.
    np.testing.assert_array_equal(eager, reference)
