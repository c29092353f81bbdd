"""Tests of `cosine_similarity`, `content_weights` and `weighted_read`.

References are in NumPy (float64), from `tests/references.py`: the cosine
formula of Graves et al. (2014, eq. 6), softmax, sparsemax by sorting
(Martins and Astudillo 2016, Alg. 1), 1.5-entmax by root finding with SciPy;
and here the read as a sum over slots. None is computed with keras-latent.
"""

import keras
import numpy as np
import pytest
from keras import ops
from scipy import stats

from keras_latent import ops as latent_ops
from keras_latent.ops.content_addressing import SMALLEST_EPSILON
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import gradient

# The chi-square test below rejects a correct sampler with this probability.
FALSE_FAILURE_RATE = 1e-3


ALL_NORMALIZERS = ["softmax", "sparsemax", "entmax15", "gumbel", "argmax"]

# (keys shape, memory shape): one shared memory, one memory per example,
# and several keys (read heads) per example against one memory each.
BROADCAST_SHAPES = [
    ((4, 5), (6, 5)),
    ((4, 5), (4, 6, 5)),
    ((2, 3, 5), (2, 1, 6, 5)),
]
BROADCAST_IDS = ["shared-memory", "memory-per-example", "heads"]


@pytest.mark.parametrize(
    "keys_shape, memory_shape", BROADCAST_SHAPES, ids=BROADCAST_IDS
)
def test_cosine_similarity_matches_the_numpy_formula(
    keys_shape, memory_shape, rng
):
    keys = rng.normal(size=keys_shape).astype("float32")
    memory = rng.normal(size=memory_shape).astype("float32")
    similarity = to_numpy(latent_ops.cosine_similarity(keys, memory))
    expected = references.cosine_similarity(keys, memory)
    assert similarity.shape == expected.shape
    np.testing.assert_allclose(similarity, expected, rtol=1e-5, atol=1e-6)


def test_cosine_similarity_is_scale_invariant_and_bounded(rng):
    keys = rng.normal(size=(4, 5)).astype("float32")
    memory = rng.normal(size=(6, 5)).astype("float32")
    similarity = to_numpy(latent_ops.cosine_similarity(keys, memory))
    scaled = to_numpy(latent_ops.cosine_similarity(7.0 * keys, 0.1 * memory))
    np.testing.assert_allclose(scaled, similarity, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(similarity) <= 1.0 + 1e-6)


# The default floor, and the smallest one accepted, whose square is the
# smallest normal float32 number.
@pytest.mark.parametrize("epsilon", [1e-6, SMALLEST_EPSILON])
def test_zero_key_and_zero_row_have_similarity_zero_and_finite_gradients(
    epsilon, rng
):
    keys = rng.normal(size=(3, 5)).astype("float32")
    keys[1] = 0.0
    memory = rng.normal(size=(3, 4, 5)).astype("float32")
    memory[:, 2] = 0.0
    similarity = to_numpy(latent_ops.cosine_similarity(keys, memory, epsilon))
    np.testing.assert_array_equal(similarity[1], 0.0)
    np.testing.assert_array_equal(similarity[:, 2], 0.0)
    key_gradient = gradient(
        lambda k: latent_ops.cosine_similarity(k, memory, epsilon), keys
    )
    memory_gradient = gradient(
        lambda m: latent_ops.cosine_similarity(keys, m, epsilon), memory
    )
    assert np.all(np.isfinite(key_gradient))
    assert np.all(np.isfinite(memory_gradient))


@pytest.mark.parametrize("scale", [1e20, 1e36])
def test_vectors_whose_squared_norm_overflows_keep_their_cosine(scale, rng):
    # Entries of 1e20 square to inf in float32; the norm is taken of the
    # vector divided by its largest entry, so the cosine stays exact.
    keys = rng.normal(size=(3, 5)).astype("float32")
    memory = rng.normal(size=(4, 5)).astype("float32")
    expected = references.cosine_similarity(keys, memory)
    for big_keys, big_memory in [
        (scale * keys, memory),
        (keys, scale * memory),
    ]:
        similarity = to_numpy(
            latent_ops.cosine_similarity(big_keys, big_memory)
        )
        np.testing.assert_allclose(similarity, expected, rtol=1e-5, atol=1e-6)
    # d cos(k, m) / dk = (m / |m| - cos(k, m) k / |k|) / |k|, summed over
    # m; at 1e20 (at 1e36 it would fall among float32's denormals).
    unit_keys = keys / np.linalg.norm(keys, axis=-1, keepdims=True)
    unit_memory = memory / np.linalg.norm(memory, axis=-1, keepdims=True)
    expected_gradient = (
        unit_memory.sum(0) - expected.sum(-1, keepdims=True) * unit_keys
    ) / np.linalg.norm(1e20 * keys.astype("float64"), axis=-1, keepdims=True)
    key_gradient = gradient(
        lambda k: latent_ops.cosine_similarity(k, memory), 1e20 * keys
    )
    np.testing.assert_allclose(
        key_gradient, expected_gradient, rtol=1e-4, atol=1e-26
    )


@pytest.mark.parametrize("normalizer", sorted(references.NORMALIZERS))
@pytest.mark.parametrize("strength_form", ["float", "tensor"])
def test_deterministic_weights_match_the_numpy_normalizer(
    normalizer, strength_form, rng
):
    keys = rng.normal(size=(2, 3, 5)).astype("float32")
    memory = rng.normal(size=(2, 1, 6, 5)).astype("float32")
    if strength_form == "float":
        strength = 4.0
    else:
        strength = rng.uniform(0.5, 8.0, size=(2, 3, 1)).astype("float32")
    weights = to_numpy(
        latent_ops.content_weights(keys, memory, strength, normalizer)
    )
    expected = references.NORMALIZERS[normalizer](
        np.asarray(strength, np.float64)
        * references.cosine_similarity(keys, memory)
    )
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("normalizer", ALL_NORMALIZERS)
def test_weights_lie_on_the_simplex_over_the_slots(normalizer, rng):
    keys = rng.normal(size=(16, 5)).astype("float32")
    memory = rng.normal(size=(16, 7, 5)).astype("float32")
    weights = to_numpy(
        latent_ops.content_weights(keys, memory, 3.0, normalizer, seed=1)
    )
    assert weights.shape == (16, 7)
    assert np.all(weights >= 0.0)
    np.testing.assert_allclose(np.sum(weights, axis=-1), 1.0, rtol=1e-5)


def test_gumbel_weights_are_exactly_one_hot(rng):
    keys = rng.normal(size=(64, 5)).astype("float32")
    memory = rng.normal(size=(64, 7, 5)).astype("float32")
    weights = to_numpy(
        latent_ops.content_weights(keys, memory, 2.0, "gumbel", seed=4)
    )
    assert set(np.unique(weights)) <= {0.0, 1.0}
    np.testing.assert_array_equal(np.sum(weights, axis=-1), 1.0)


def test_gumbel_samples_follow_the_softmax_of_the_sharpened_similarity(rng):
    num_samples = 20000
    key = rng.normal(size=(1, 5)).astype("float32")
    memory = rng.normal(size=(4, 5)).astype("float32")
    keys = np.repeat(key, num_samples, axis=0)
    weights = to_numpy(
        latent_ops.content_weights(keys, memory, 2.0, "gumbel", seed=5)
    )
    probabilities = references.softmax(
        2.0 * references.cosine_similarity(key, memory)
    )[0]
    counts = np.sum(weights, axis=0)
    _, p_value = stats.chisquare(counts, num_samples * probabilities)
    assert p_value > FALSE_FAILURE_RATE


def test_gumbel_straight_through_gradient_is_finite_and_nonzero(rng):
    keys = rng.normal(size=(8, 5)).astype("float32")
    memory = rng.normal(size=(8, 6, 5)).astype("float32")
    slot_weights = ops.convert_to_tensor(
        rng.normal(size=(8, 6)).astype("float32")
    )

    def weighted(k):
        weights = latent_ops.content_weights(k, memory, 3.0, "gumbel", seed=6)
        return weights * slot_weights

    key_gradient = gradient(weighted, keys)
    assert np.all(np.isfinite(key_gradient))
    assert np.any(key_gradient != 0.0)


def test_argmax_is_the_one_hot_of_the_most_similar_slot(rng):
    keys = rng.normal(size=(10, 5)).astype("float32")
    memory = rng.normal(size=(10, 6, 5)).astype("float32")
    weights = to_numpy(latent_ops.content_weights(keys, memory, 1.0, "argmax"))
    winners = np.argmax(references.cosine_similarity(keys, memory), axis=-1)
    np.testing.assert_array_equal(weights, np.eye(6)[winners])


@pytest.mark.parametrize("normalizer", ALL_NORMALIZERS)
def test_zero_key_and_zero_row_give_finite_weights_and_gradients(
    normalizer, rng
):
    keys = rng.normal(size=(4, 5)).astype("float32")
    keys[0] = 0.0
    memory = rng.normal(size=(4, 6, 5)).astype("float32")
    memory[:, 3] = 0.0
    slot_weights = ops.convert_to_tensor(
        rng.normal(size=(4, 6)).astype("float32")
    )

    def weighted(k, m):
        weights = latent_ops.content_weights(k, m, 2.0, normalizer, seed=7)
        return weights * slot_weights

    weights = to_numpy(
        latent_ops.content_weights(keys, memory, 2.0, normalizer)
    )
    assert np.all(np.isfinite(weights))
    if normalizer == "softmax":
        np.testing.assert_allclose(weights[0], 1.0 / 6.0, rtol=1e-6)
    assert np.all(np.isfinite(gradient(lambda k: weighted(k, memory), keys)))
    assert np.all(np.isfinite(gradient(lambda m: weighted(keys, m), memory)))


@pytest.mark.parametrize(
    "weights_shape, values_shape",
    [((4, 6), (4, 6, 3)), ((4, 6), (6, 3)), ((2, 3, 6), (2, 1, 6, 3))],
    ids=["value-per-example", "shared-values", "heads"],
)
def test_weighted_read_is_the_weighted_sum_of_the_rows(
    weights_shape, values_shape, rng
):
    weights = rng.dirichlet(np.ones(6), size=weights_shape[:-1])
    weights = weights.astype("float32")
    values = rng.normal(size=values_shape).astype("float32")
    read = to_numpy(latent_ops.weighted_read(weights, values))
    expected = np.sum(
        weights[..., :, None].astype(np.float64) * values, axis=-2
    )
    np.testing.assert_allclose(read, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("normalizer", sorted(references.NORMALIZERS))
def test_half_precision_inputs_are_computed_in_float32(normalizer, rng):
    keys = rng.normal(size=(4, 5)).astype("float16")
    memory = rng.normal(size=(4, 6, 5)).astype("float16")
    weights = latent_ops.content_weights(keys, memory, 10.0, normalizer)
    assert keras.backend.standardize_dtype(weights.dtype) == "float16"
    expected = references.NORMALIZERS[normalizer](
        10.0 * references.cosine_similarity(keys, memory)
    )
    np.testing.assert_allclose(to_numpy(weights), expected, atol=2e-3)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"normalizer": "maxout"}, "normalizer"),
        ({"key_strength": -1.0}, "key_strength"),
        ({"key_strength": float("nan")}, "key_strength"),
        # Beyond float32: the weights were NaN.
        ({"key_strength": 1e39}, "key_strength"),
        ({"epsilon": 0.0}, "epsilon"),
        # Squares that float32 flushes to 0 (a zero key gave 0 / 0 = NaN)
        # or rounds to inf.
        ({"epsilon": 1e-20}, "epsilon"),
        ({"epsilon": 1e20}, "epsilon"),
        ({"epsilon": float("nan")}, "epsilon"),
    ],
)
def test_invalid_arguments_raise(arguments, message):
    keys = np.ones((2, 3), "float32")
    memory = np.ones((2, 4, 3), "float32")
    with pytest.raises(
        ValueError,
        match=f"Invalid value received for argument `{message}`.*"
        f"Received: {message}=",
    ):
        latent_ops.content_weights(keys, memory, **arguments)


@pytest.mark.parametrize(
    "function, first, second, name, expected",
    [
        (
            latent_ops.cosine_similarity,
            (2, 3),
            (4, 5),
            "memory",
            "key size (3)",
        ),
        (latent_ops.cosine_similarity, (2, 3), (3,), "memory", "rank >= 2"),
        (
            latent_ops.content_weights,
            (2, 3),
            (2, 4, 2),
            "memory",
            "key size (3)",
        ),
        (
            latent_ops.weighted_read,
            (2, 4),
            (5, 3),
            "values",
            "number of slots (4)",
        ),
        (latent_ops.weighted_read, (2, 4), (4,), "values", "rank >= 2"),
    ],
)
def test_mismatched_shapes_raise_a_clear_error(
    function, first, second, name, expected
):
    # The backends' own errors (TypeError, RuntimeError) named no argument.
    with pytest.raises(
        ValueError, match=rf"Invalid value received for argument `{name}`"
    ) as error:
        function(np.ones(first, "float32"), np.ones(second, "float32"))
    assert expected in str(error.value)


def test_a_tensor_key_strength_below_zero_gives_nan(rng):
    """A negative tensor strength would address the least similar slots;
    it cannot be checked without a host round trip, so it gives NaN, in
    the rows it holds only."""
    keys = rng.normal(size=(2, 3)).astype("float32")
    memory = rng.normal(size=(2, 4, 3)).astype("float32")
    strength = keras.ops.convert_to_tensor([[-1.0], [2.0]], "float32")
    weights = to_numpy(latent_ops.content_weights(keys, memory, strength))
    assert np.all(np.isnan(weights[0])), weights
    expected = references.NORMALIZERS["softmax"](
        2.0 * references.cosine_similarity(keys[1:], memory[1:])
    )
    np.testing.assert_allclose(weights[1:], expected, rtol=1e-5, atol=1e-6)
