"""Memory grows linearly with the number of categories, up to 100,000.

Every op and layer that takes a category axis runs its forward and
backward pass at 100,000 categories and gives finite results: a (categories
x categories) float32 tensor there would be 40 GB, which no test machine
holds. The memory that the backward pass holds is measured exactly on two
backends: on JAX, the compiled step's temporary bytes, which XLA's buffer
assignment gives without running it; on torch, the storages that autograd
saves. It stays within a small multiple of the input's bytes, and grows
about tenfold from 10,000 to 100,000 categories. The end-to-end run of
`benchmarks/latent_scaling.py` closes the file.
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


def temp_bytes(case, num_categories):
    """The temporary bytes of the compiled JAX step of a case."""
    compiled, _ = compiled_jax_step(case, num_categories)
    return compiled.memory_analysis().temp_size_in_bytes


@functools.cache
def saved_for_backward_bytes(case, num_categories):
    """The bytes of the distinct storages that torch's autograd keeps
    from the forward pass for the backward pass of a case."""
    import torch

    layer = CASES[case](num_categories)
    logits, weights = inputs(num_categories)
    x = torch.tensor(logits, requires_grad=True)
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x, **training_arguments(layer))
        total = objective(y, weights, layer.losses)
    total.backward()
    return sum(storages.values())


# The memory a backward pass holds, measured at 100,000 categories, over
# the input's bytes, and the bound: twice the largest measured multiple,
# room for another version's choices, yet far from any (categories x
# categories) buffer, which would be 50,000 times the input.
# - JAX: the compiled step's temporary bytes (under the suite's XLA
#   flags), 2 to 5 times the input for a softmax, sparsemax, entmax or KL.
# - torch: the storages autograd saves, which eager mode does not fuse: 3
#   times for gumbel_softmax, up to 13.5 for entmax15 (its sort, cumulative
#   sums and masks; a boolean mask counts a quarter).
# The subset samplers keep one softmax per selected category for the
# backward pass: 3.5 k to 5 k times the input at k = 4, bounded by 10 k.
# (Their exact k-hot takes 3 times the input whatever k: see
# `tests/ops/test_subsets.py`.)
MEMORY_FIGURES = {"jax": temp_bytes, "torch": saved_for_backward_bytes}
BYTES_PER_INPUT_BYTE = {"jax": 10, "torch": 28}
SUBSET_BYTES_PER_INPUT_BYTE = 10 * SUBSET_SIZE
needs_memory_figure = pytest.mark.skipif(
    keras.backend.backend() not in MEMORY_FIGURES,
    reason="an exact memory figure: XLA's memory analysis on JAX, the "
    "saved tensors of autograd on torch",
)


@needs_memory_figure
@pytest.mark.parametrize("case", list(CASES))
def test_backward_memory_is_a_small_multiple_of_the_input(case):
    backend = keras.backend.backend()
    input_bytes = inputs(LARGE)[0].nbytes
    multiple = (
        SUBSET_BYTES_PER_INPUT_BYTE
        if case.startswith("SubsetSampler")
        else BYTES_PER_INPUT_BYTE[backend]
    )
    assert MEMORY_FIGURES[backend](case, LARGE) <= multiple * input_bytes


# One case per path through the ops: the layers call these, and the test
# above bounds every case at 100,000 categories. Each compiles twice more
# on JAX, the bulk of this file's time.
GROWTH_CASES = (
    "ops.gumbel_softmax",
    "ops.sparsemax",
    "ops.entmax15",
    "ops.entmax_bisect",
    "ops.categorical_kl",
    "CategoricalLatent(kl=relaxed)",
    "SubsetSampler(straight_through)",
)


@needs_memory_figure
@pytest.mark.parametrize("case", GROWTH_CASES)
def test_backward_memory_grows_linearly_in_categories(case):
    # Ten times the categories: about ten times the bytes (linear), with
    # room for the fixed buffers of small sizes; a quadratic term would
    # give about 100.
    memory_figure = MEMORY_FIGURES[keras.backend.backend()]
    ratio = memory_figure(case, LARGE) / memory_figure(case, SMALL)
    assert 5.0 <= ratio <= 20.0


@pytest.fixture(scope="module")
def benchmark():
    return example_modules.load("latent_scaling")


def test_the_slope_is_fitted_on_the_largest_sizes(benchmark):
    sizes = [10, 100, 1000, 10_000]
    # A fixed cost of 10, half the smallest size's figure, is left out;
    # fitted on all four sizes, the slope would be 0.91.
    linear = [10 + size for size in sizes]
    slope = benchmark.log_log_slope(sizes, linear)
    assert slope == pytest.approx(1.0, abs=0.03)
    quadratic = [size**2 for size in sizes]
    assert benchmark.log_log_slope(sizes, quadratic) == pytest.approx(2.0)
    assert benchmark.log_log_slope(sizes, [1, 2, 0, 4]) is None
    assert benchmark.log_log_slope([10], [1.0]) is None


@pytest.mark.harness
def test_a_tiny_run_measures_every_case_on_every_sweep(benchmark, tmp_path):
    backend = keras.backend.backend()
    # A layer with a KL loss, and one that takes flat logits.
    cases = ["CategoricalLatent(kl=relaxed)", "GroupedSoftmax(sparsemax)"]
    arguments = ["--backends", backend, "--cases", *cases]
    arguments += ["--num-categories", "3", "6", "--category-base", "2x1"]
    arguments += ["--batch-sizes", "2", "4", "--num-variables", "1", "2"]
    arguments += ["--base", "2x1x3", "--repeats", "1"]
    arguments += ["--block-seconds", "0.001", "--output-dir", str(tmp_path)]
    assert benchmark.main(arguments) == 0

    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["rows"]
    sweeps = {"categories": [3, 6], "batch": [2, 4], "variables": [1, 2]}
    expected = [
        (case, sweep, size)
        for case in cases
        for sweep, sizes in sweeps.items()
        for size in sizes
    ]
    assert [(row["case"], row["sweep"], row["size"]) for row in rows] == (
        expected
    )
    for row in rows:
        assert row["backend"] == backend
        assert row["milliseconds"] > 0
        batch, num_variables, num_categories = row["shape"]
        assert row["input_bytes"] == 4 * batch * num_variables * num_categories
    # Shapes shared by two sweeps are measured once.
    shared = [row for row in rows if row["shape"] == [2, 1, 3]]
    assert len({row["milliseconds"] for row in shared}) == len(cases)
    assert len(results["slopes"]) == len(cases) * len(sweeps)
    table = (tmp_path / "results.md").read_text()
    assert table.count(f"| {backend} |") == len(cases) * (1 + len(rows) // 2)
    assert (tmp_path / "scaling.png").stat().st_size > 0
