"""Tests of the `ContentAddressing` layer: reads, precision, errors, learning.

References are in NumPy (float64): the cosine similarity and softmax of
`tests/references.py`, softplus and the read as a weighted sum of rows,
never computed with keras-latent. Config, shapes and saving are checked in
`tests/layers/test_conformance.py`. The last test trains a small model on
an associative recall task with each normalizer.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_latent.layers import ContentAddressing
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import gradient

NORMALIZERS = ["softmax", "sparsemax", "entmax15", "gumbel"]


def read_reference(weights, values):
    """sum_i weights[..., i] * values[..., i, :]."""
    return np.sum(weights[..., :, None] * values, axis=-2)


def test_trainable_memory_read_matches_the_numpy_formula(rng):
    layer = ContentAddressing(
        num_slots=6, slot_size=5, key_strength=3.0, return_weights=True
    )
    keys = rng.normal(size=(4, 5)).astype("float32")
    read, weights = layer(keys)
    memory = to_numpy(layer.memory)
    expected_weights = references.softmax(
        3.0 * references.cosine_similarity(keys, memory)
    )
    np.testing.assert_allclose(
        to_numpy(weights), expected_weights, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(read),
        read_reference(expected_weights, memory),
        rtol=1e-5,
        atol=1e-6,
    )


def test_memory_values_heads_and_key_strength_inputs_match_numpy(rng):
    layer = ContentAddressing(key_strength=None, return_weights=True)
    keys = rng.normal(size=(2, 3, 5)).astype("float32")
    memory = rng.normal(size=(2, 6, 5)).astype("float32")
    values = rng.normal(size=(2, 6, 4)).astype("float32")
    strength = rng.normal(size=(2, 3, 1)).astype("float32")
    read, weights = layer(
        keys, memory=memory, values=values, key_strength=strength
    )
    beta = np.log1p(np.exp(strength.astype(np.float64)))
    expected_weights = references.softmax(
        beta * references.cosine_similarity(keys, memory[:, None])
    )
    assert tuple(read.shape) == (2, 3, 4)
    assert tuple(weights.shape) == (2, 3, 6)
    np.testing.assert_allclose(
        to_numpy(weights), expected_weights, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(read),
        read_reference(expected_weights, values[:, None]),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("training", [False, True])
def test_weights_sum_to_one_and_read_is_weights_times_memory(
    normalizer, training, rng
):
    layer = ContentAddressing(
        num_slots=7,
        slot_size=5,
        normalizer=normalizer,
        key_strength=4.0,
        return_weights=True,
        seed=1,
    )
    read, weights = layer(
        rng.normal(size=(16, 5)).astype("float32"), training=training
    )
    weights = to_numpy(weights)
    assert np.all(weights >= 0.0)
    np.testing.assert_allclose(np.sum(weights, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(read),
        weights @ to_numpy(layer.memory),
        rtol=1e-5,
        atol=1e-6,
    )


def test_gumbel_training_weights_are_one_hot_with_finite_gradient(rng):
    layer = ContentAddressing(
        num_slots=6,
        slot_size=5,
        normalizer="gumbel",
        return_weights=True,
        seed=2,
    )
    keys = rng.normal(size=(32, 5)).astype("float32")
    _, weights = layer(keys, training=True)
    references.assert_exact_one_hot(to_numpy(weights))
    read_weights = ops.convert_to_tensor(
        rng.normal(size=(32, 5)).astype("float32")
    )
    key_gradient = gradient(
        lambda k: layer(k, training=True)[0] * read_weights, keys
    )
    assert np.all(np.isfinite(key_gradient))
    assert np.any(key_gradient != 0.0)


def test_gumbel_inference_reads_the_most_similar_row(rng):
    layer = ContentAddressing(
        num_slots=6,
        slot_size=5,
        normalizer="gumbel",
        return_weights=True,
        seed=3,
    )
    keys = rng.normal(size=(10, 5)).astype("float32")
    read, weights = layer(keys, training=False)
    memory = to_numpy(layer.memory)
    winners = np.argmax(references.cosine_similarity(keys, memory), axis=-1)
    np.testing.assert_array_equal(to_numpy(weights), np.eye(6)[winners])
    np.testing.assert_allclose(to_numpy(read), memory[winners], rtol=1e-6)


def test_gumbel_training_draws_fresh_samples_at_every_call(rng):
    layer = ContentAddressing(
        num_slots=6,
        slot_size=5,
        normalizer="gumbel",
        key_strength=0.5,
        return_weights=True,
        seed=4,
    )
    keys = rng.normal(size=(64, 5)).astype("float32")
    _, first = layer(keys, training=True)
    _, second = layer(keys, training=True)
    assert np.any(to_numpy(first) != to_numpy(second))


@pytest.mark.parametrize("normalizer", NORMALIZERS)
def test_zero_key_and_zero_memory_row_have_similarity_zero(normalizer, rng):
    """A zero key or a zero memory row has similarity 0, not NaN: the zero
    key's weights are the normalizer of zeros (uniform; a one-hot sample
    for "gumbel"), and the gradients are finite."""
    layer = ContentAddressing(
        normalizer=normalizer, return_weights=True, seed=5
    )
    keys = rng.normal(size=(4, 5)).astype("float32")
    keys[0] = 0.0
    memory = rng.normal(size=(4, 6, 5)).astype("float32")
    memory[:, 2] = 0.0
    read, weights = layer(keys, memory=memory, training=True)
    read, weights = to_numpy(read), to_numpy(weights)
    with np.errstate(invalid="ignore"):
        similarity = references.cosine_similarity(keys, memory)
    # 0 / 0 where a norm is 0; the layer's key strength is 1.
    similarity[np.isnan(similarity)] = 0.0
    if normalizer == "gumbel":
        references.assert_exact_one_hot(weights)
    else:
        expected = references.NORMALIZERS[normalizer](similarity)
        np.testing.assert_allclose(expected[0], 1.0 / 6)
        np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        read, read_reference(weights, memory), rtol=1e-5, atol=1e-6
    )
    key_gradient = gradient(
        lambda k: layer(k, memory=memory, training=True)[0], keys
    )
    memory_gradient = gradient(
        lambda m: layer(keys, memory=m, training=True)[0], memory
    )
    assert np.all(np.isfinite(key_gradient))
    assert np.all(np.isfinite(memory_gradient))


@pytest.mark.parametrize(
    "policy, tolerance",
    [("mixed_float16", 2e-3), ("mixed_bfloat16", 1.6e-2)],
)
def test_mixed_precision_output_in_compute_dtype_close_to_float32(
    policy, tolerance, rng
):
    keys = rng.normal(size=(4, 5)).astype("float32")
    memory = rng.normal(size=(4, 6, 5)).astype("float32")
    keras.config.set_dtype_policy(policy)
    layer = ContentAddressing(key_strength=4.0, return_weights=True)
    read, weights = layer(keys, memory=memory)
    compute_dtype = policy.removeprefix("mixed_")
    assert keras.backend.standardize_dtype(read.dtype) == compute_dtype
    assert keras.backend.standardize_dtype(weights.dtype) == compute_dtype
    assert layer.raw_key_strength.dtype == "float32"
    rounded_keys = to_numpy(ops.cast(keys, compute_dtype))
    rounded_memory = to_numpy(ops.cast(memory, compute_dtype))
    expected = references.softmax(
        4.0 * references.cosine_similarity(rounded_keys, rounded_memory)
    )
    np.testing.assert_allclose(to_numpy(weights), expected, atol=tolerance)


@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"normalizer": "argmax"}, "normalizer"),
        ({"normalizer": "entmax"}, "normalizer"),
        ({"num_slots": 8}, "slot_size"),
        ({"slot_size": 8}, "num_slots"),
        ({"num_slots": 0, "slot_size": 8}, "num_slots"),
        ({"num_slots": 8, "slot_size": 2.5}, "slot_size"),
        ({"key_strength": 0.0}, "key_strength"),
        # Beyond float32: the learned strength was inf, the read NaN.
        ({"key_strength": 1e39}, "key_strength"),
        ({"key_strength": "learned"}, "key_strength"),
        ({"return_weights": "yes"}, "return_weights"),
        ({"epsilon": -1.0}, "epsilon"),
        # float32 flushes its square to 0: a zero key gave NaN.
        ({"epsilon": 1e-30}, "epsilon"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_constructor_arguments_raise(arguments, name):
    with pytest.raises(
        ValueError,
        match=f"Invalid value received for argument `{name}`.*"
        f"Received: {name}=",
    ):
        ContentAddressing(**arguments)


KEYS = np.ones((2, 5), "float32")
MEMORY = np.ones((2, 6, 5), "float32")


@pytest.mark.parametrize(
    "arguments, call_arguments, name",
    [
        ({"num_slots": 6, "slot_size": 4}, {}, "key"),
        ({}, {"memory": np.ones((2, 6, 4), "float32")}, "key"),
        ({}, {}, "memory"),
        ({"num_slots": 6, "slot_size": 5}, {"memory": MEMORY}, "memory"),
        ({}, {"memory": np.ones((6, 5), "float32")}, "memory"),
        (
            {},
            {"memory": MEMORY, "values": np.ones((2, 7, 3), "float32")},
            "values",
        ),
        ({"key_strength": None}, {"memory": MEMORY}, "key_strength"),
        (
            {},
            {"memory": MEMORY, "key_strength": np.ones((2, 1), "float32")},
            "key_strength",
        ),
        (
            {"key_strength": None},
            {"memory": MEMORY, "key_strength": np.ones((2, 5), "float32")},
            "key_strength",
        ),
    ],
    ids=[
        "key-size-vs-slot-size",
        "key-size-vs-memory",
        "memory-missing",
        "memory-given-to-trainable-memory",
        "memory-rank",
        "values-slots",
        "key-strength-missing",
        "key-strength-given-to-learned-strength",
        "key-strength-shape",
    ],
)
def test_inputs_that_do_not_match_the_configuration_raise(
    arguments, call_arguments, name
):
    with pytest.raises(
        ValueError,
        match=f"Invalid value received for argument `{name}`.*Received: {name}",
    ):
        ContentAddressing(**arguments)(KEYS, **call_arguments)


NUM_SLOTS = 8
KEY_SIZE = 16
NUM_CLASSES = 8


def associative_recall(num_examples, rng, rotation, class_embeddings):
    """Memories of (key, value) pairs and queries for one of the keys.

    Each example stores `NUM_SLOTS` random keys, each paired with the
    embedding of a random class; the query is one stored key seen through a
    fixed random rotation, plus noise, and the target is the class paired
    with it. Without learning the inverse rotation, the query's cosine
    similarities with the stored keys carry no information (chance is
    1 / NUM_CLASSES).
    """
    keys = rng.normal(size=(num_examples, NUM_SLOTS, KEY_SIZE))
    labels = rng.integers(NUM_CLASSES, size=(num_examples, NUM_SLOTS))
    slots = rng.integers(NUM_SLOTS, size=num_examples)
    rows = np.arange(num_examples)
    queries = keys[rows, slots] @ rotation
    queries += 0.1 * rng.normal(size=queries.shape)
    inputs = [queries, keys, class_embeddings[labels]]
    return [x.astype("float32") for x in inputs], labels[rows, slots]


def recall_accuracy(normalizer, epochs=3, data_seed=0, model_seed=1):
    """Trains a projection, ContentAddressing and a classifier on the
    associative recall task; returns the held-out accuracy."""
    rng = np.random.default_rng(data_seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(KEY_SIZE, KEY_SIZE)))
    class_embeddings = rng.normal(size=(NUM_CLASSES, KEY_SIZE))
    train_x, train_y = associative_recall(2000, rng, rotation, class_embeddings)
    test_x, test_y = associative_recall(1000, rng, rotation, class_embeddings)
    keras.utils.set_random_seed(model_seed)
    query = keras.Input((KEY_SIZE,))
    memory = keras.Input((NUM_SLOTS, KEY_SIZE))
    values = keras.Input((NUM_SLOTS, KEY_SIZE))
    key = keras.layers.Dense(KEY_SIZE, use_bias=False)(query)
    read = ContentAddressing(
        normalizer=normalizer, key_strength=5.0, seed=model_seed
    )(key, memory=memory, values=values)
    probabilities = keras.layers.Dense(NUM_CLASSES, activation="softmax")(read)
    model = keras.Model([query, memory, values], probabilities)
    model.compile(
        keras.optimizers.Adam(0.02),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(train_x, train_y, epochs=epochs, batch_size=64, verbose=0)
    return model.evaluate(test_x, test_y, verbose=0)[1]


def test_associative_recall_is_at_chance_level_before_training():
    assert recall_accuracy("softmax", epochs=0) < 0.25


@pytest.mark.parametrize("normalizer", NORMALIZERS)
def test_learns_associative_recall_to_95_percent_held_out_accuracy(
    normalizer,
):
    assert recall_accuracy(normalizer) >= 0.95
