"""Memory grows linearly with the number of categories, up to 100,000.

Every op and layer that takes a category axis runs its forward and
backward pass at 100,000 categories and gives finite results: a (categories
x categories) float32 tensor there would be 40 GB, which no test machine
holds. On JAX, XLA's buffer assignment gives the compiled step's temporary
bytes exactly, without running it: they stay within a small multiple of
the input's bytes, and grow about tenfold from 10,000 to 100,000
categories. The end-to-end run of `benchmarks/latent_scaling.py` closes
the file.
"""

import functools
import inspect
import json

import keras
import numpy as np
import pytest
from keras import ops

import keras_latent
from tests import example_modules

LARGE = 100_000
SMALL = 10_000
BATCH = 2
SUBSET_SIZE = 4
TEMPERATURE = 0.5


class OpLayer(keras.layers.Layer):
    """An op of `keras_latent.ops` on the last axis, as a layer, so that
    every case runs one way; a random op draws from the layer's seed."""

    def __init__(self, op, random=False, **options):
        super().__init__()
        self.op = op
        self.options = options
        self.seed_generator = keras.random.SeedGenerator(1) if random else None

    def call(self, x):
        if self.seed_generator is not None:
            return self.op(x, seed=self.seed_generator, **self.options)
        return self.op(x, **self.options)


def gumbel_softmax_op():
    return OpLayer(
        keras_latent.ops.gumbel_softmax, random=True, temperature=TEMPERATURE
    )


def categorical_latent(kl):
    def build(num_categories):
        return keras_latent.layers.CategoricalLatent(
            1, num_categories, TEMPERATURE, kl=kl, seed=1
        )

    return build


def subset_sampler(estimator):
    def build(_):
        return keras_latent.layers.SubsetSampler(
            SUBSET_SIZE, TEMPERATURE, estimator=estimator, seed=1
        )

    return build


# Each builds the case's layer for a number of categories.
CASES = {
    "ops.gumbel_softmax": lambda _: gumbel_softmax_op(),
    "ops.sparsemax": lambda _: OpLayer(keras_latent.ops.sparsemax),
    "ops.entmax15": lambda _: OpLayer(keras_latent.ops.entmax15),
    "ops.entmax_bisect": lambda _: OpLayer(
        keras_latent.ops.entmax_bisect, alpha=1.3
    ),
    "ops.categorical_kl": lambda _: OpLayer(keras_latent.ops.categorical_kl),
    "CategoricalLatent(kl=analytic)": categorical_latent("analytic"),
    "CategoricalLatent(kl=relaxed)": categorical_latent("relaxed"),
    "GumbelSoftmax(hard)": lambda _: keras_latent.layers.GumbelSoftmax(
        TEMPERATURE, hard=True, seed=1
    ),
    "SubsetSampler(relaxed)": subset_sampler("relaxed"),
    "SubsetSampler(straight_through)": subset_sampler("straight_through"),
    "GroupedSoftmax(sparsemax)": lambda _: keras_latent.layers.GroupedSoftmax(
        1, "sparsemax"
    ),
    "GroupedSoftmax(entmax15)": lambda _: keras_latent.layers.GroupedSoftmax(
        1, "entmax15"
    ),
}


def inputs(num_categories):
    """Logits of shape (batch, 1 variable, categories), and weights."""
    rng = np.random.default_rng(20261130)
    shape = (BATCH, 1, num_categories)
    return (
        rng.normal(size=shape).astype("float32"),
        rng.normal(size=shape).astype("float32"),
    )


def training_arguments(layer):
    parameters = inspect.signature(layer.call).parameters
    return {"training": True} if "training" in parameters else {}


def objective(y, weights, losses):
    """`sum(y * weights)` plus the layer's losses; a KL, which has no
    category axis, is summed."""
    if tuple(y.shape) != weights.shape:
        total = ops.sum(y)
    else:
        total = ops.sum(y * ops.convert_to_tensor(weights))
    for loss in losses:
        total = total + loss
    return total


@functools.cache
def compiled_jax_step(case, num_categories):
    """The JAX training step of a case, compiled for its input; its
    output and the gradient with respect to the logits."""
    import jax

    layer = CASES[case](num_categories)
    logits, weights = inputs(num_categories)
    layer.build(logits.shape)
    trainable = [variable.value for variable in layer.trainable_variables]
    non_trainable = [
        variable.value for variable in layer.non_trainable_variables
    ]

    def total(x, non_trainable):
        y, _, losses = layer.stateless_call(
            trainable,
            non_trainable,
            x,
            return_losses=True,
            **training_arguments(layer),
        )
        return objective(y, weights, losses), y

    step = jax.jit(jax.grad(total, has_aux=True))
    return step.lower(logits, non_trainable).compile(), non_trainable


def forward_and_backward(case, num_categories):
    """The output and the gradient of a case as NumPy arrays."""
    logits, weights = inputs(num_categories)
    backend = keras.backend.backend()
    if backend == "jax":
        compiled, non_trainable = compiled_jax_step(case, num_categories)
        gradient, y = compiled(logits, non_trainable)
        return np.asarray(y), np.asarray(gradient)
    layer = CASES[case](num_categories)
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(logits)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, **training_arguments(layer))
            total = objective(y, weights, layer.losses)
        gradient = tape.gradient(total, x)
    else:
        x = ops.convert_to_tensor(logits)
        x.requires_grad_(True)
        y = layer(x, **training_arguments(layer))
        objective(y, weights, layer.losses).backward()
        gradient = x.grad
    return ops.convert_to_numpy(y), ops.convert_to_numpy(gradient)


@pytest.mark.parametrize("case", list(CASES))
def test_forward_and_backward_at_100000_categories_are_finite(case):
    y, gradient = forward_and_backward(case, LARGE)
    assert np.all(np.isfinite(y))
    assert np.all(np.isfinite(gradient))
    assert gradient.shape == (BATCH, 1, LARGE)
    if case == "ops.categorical_kl":
        assert y.shape == (BATCH, 1)
        return
    # Each slice is on the simplex (k times it for a subset): the large
    # axis was normalized, not truncated.
    expected_sum = SUBSET_SIZE if case.startswith("SubsetSampler") else 1.0
    np.testing.assert_allclose(y.sum(axis=-1), expected_sum, rtol=1e-4)


# The temporary bytes of the compiled step, measured at 100,000
# categories under the test suite's XLA flags: 2 to 5 times the input's
# bytes for a softmax, sparsemax, entmax or KL (the noise, the sample and
# what the backward pass keeps of them); the bound is twice the largest,
# room for another XLA version's buffer assignment. The subset samplers
# keep one softmax per selected category for the backward pass, and the
# straight-through one also sums k one-hot rows of the top-k indices:
# 3.5 k and 4.5 k times the input at k = 4, bounded by 6 k. Any
# (categories x categories) buffer would be 50,000 times the input.
TEMP_BYTES_PER_INPUT_BYTE = 10
SUBSET_TEMP_BYTES_PER_INPUT_BYTE = 6 * SUBSET_SIZE


def temp_bytes(case, num_categories):
    compiled, _ = compiled_jax_step(case, num_categories)
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="XLA's memory analysis of a compiled step: JAX only",
)
@pytest.mark.parametrize("case", list(CASES))
def test_compiled_temporary_memory_is_a_small_multiple_of_the_input(case):
    input_bytes = inputs(LARGE)[0].nbytes
    multiple = (
        SUBSET_TEMP_BYTES_PER_INPUT_BYTE
        if case.startswith("SubsetSampler")
        else TEMP_BYTES_PER_INPUT_BYTE
    )
    assert temp_bytes(case, LARGE) <= multiple * input_bytes


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="XLA's memory analysis of a compiled step: JAX only",
)
@pytest.mark.parametrize("case", list(CASES))
def test_compiled_temporary_memory_grows_linearly_in_categories(case):
    # Ten times the categories: about ten times the bytes (linear), with
    # room for the fixed buffers of small sizes; a quadratic term would
    # give about 100.
    ratio = temp_bytes(case, LARGE) / temp_bytes(case, SMALL)
    assert 5.0 <= ratio <= 20.0
