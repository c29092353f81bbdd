"""Tests of the `SparseMultiHeadAttention` layer.

With `"softmax"` it is compared with `keras.layers.MultiHeadAttention` at
the same weights. With the sparse normalizers its attention weights and
outputs are compared with a float64 NumPy attention written here from the
layer's own projection weights, normalized by the references of
`tests/references.py` (sparsemax by sort, entmax by root finding); its
gradients with central differences of that reference. Nothing here is
computed by keras-latent itself.
"""

import re

import keras
import numpy as np
import pytest

from keras_latent.layers import SparseMultiHeadAttention
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import central_differences
from tests.ops.gradients import gradient

SPARSE_NORMALIZERS = (
    ("sparsemax", None),
    ("entmax15", None),
    ("entmax", 1.25),
    ("entmax", 2.5),
)
BATCH_SIZE = 2
TARGET_LENGTH = 4
SOURCE_LENGTH = 5
DIM = 6
NUM_HEADS = 2
KEY_DIM = 3
# Scores spread over a few units, so that sparse weights have exact zeros.
INPUT_SCALE = 3.0


def reference_normalizer(normalizer, alpha):
    if normalizer == "entmax":
        return lambda scores: references.entmax(scores, alpha)
    return references.NORMALIZERS[normalizer]


def attention_layer(normalizer="softmax", alpha=None, **kwargs):
    return SparseMultiHeadAttention(
        num_heads=NUM_HEADS,
        key_dim=KEY_DIM,
        normalizer=normalizer,
        alpha=alpha,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
        bias_initializer=keras.initializers.RandomNormal(seed=2),
        **kwargs,
    )


def reference_attention(layer, query, value, attention_mask=None):
    """(output, weights) of multi-head attention in float64 NumPy.

    `weights = normalizer(q . k / sqrt(key_dim))` per head, with the scores
    of masked positions set to -inf; `output` projects `weights @ v` back.
    """

    def project(dense, x):
        kernel, bias = to_numpy(dense.kernel), to_numpy(dense.bias)
        return np.einsum("btd,dnh->btnh", x, kernel) + bias

    query = np.asarray(query, np.float64)
    value = np.asarray(value, np.float64)
    q = project(layer.query_dense, query)
    k = project(layer.key_dense, value)
    v = project(layer.value_dense, value)
    scores = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(KEY_DIM)
    if attention_mask is not None:
        scores = np.where(attention_mask[:, None], scores, -np.inf)
    weights = reference_normalizer(layer.normalizer, layer.alpha)(scores)
    heads = np.einsum("bnts,bsnh->btnh", weights, v)
    output = np.einsum(
        "btnh,nho->bto", heads, to_numpy(layer.output_dense.kernel)
    ) + to_numpy(layer.output_dense.bias)
    return output, weights


@pytest.fixture
def query(rng):
    shape = (BATCH_SIZE, TARGET_LENGTH, DIM)
    return (INPUT_SCALE * rng.normal(size=shape)).astype("float32")


@pytest.fixture
def value(rng):
    shape = (BATCH_SIZE, SOURCE_LENGTH, DIM)
    return (INPUT_SCALE * rng.normal(size=shape)).astype("float32")


@pytest.fixture
def attention_mask(rng):
    """A random mask that leaves every query at least its first key."""
    mask = rng.random((BATCH_SIZE, TARGET_LENGTH, SOURCE_LENGTH)) < 0.6
    mask[..., 0] = True
    return mask


def padded_model(layer, length=SOURCE_LENGTH):
    """Self-attention on inputs whose all-zero steps are masked by Keras."""
    inputs = keras.Input((length, DIM))
    masked = keras.layers.Masking(mask_value=0.0)(inputs)
    outputs, weights = layer(masked, masked, return_attention_scores=True)
    return keras.Model(inputs, [outputs, weights])


def padded(value):
    """`value` with the last two steps of the first sequence zeroed."""
    value = value.copy()
    value[0, -2:] = 0.0
    return value


def causal_mask(length):
    return np.tril(np.ones((length, length), bool))[None]


@pytest.mark.parametrize(
    "mask_kind", ["none", "attention", "causal", "attention_and_causal"]
)
def test_softmax_equals_multi_head_attention(mask_kind, value, attention_mask):
    layer = attention_layer("softmax")
    parent = keras.layers.MultiHeadAttention(
        num_heads=NUM_HEADS, key_dim=KEY_DIM
    )
    square_mask = attention_mask[:, :, :TARGET_LENGTH]
    x = value[:, :TARGET_LENGTH]
    kwargs = {
        "none": {},
        "attention": {"attention_mask": square_mask},
        "causal": {"use_causal_mask": True},
        "attention_and_causal": {
            "attention_mask": square_mask,
            "use_causal_mask": True,
        },
    }[mask_kind]
    layer(x, x)
    parent(x, x)
    parent.set_weights(layer.get_weights())
    for return_attention_scores in (False, True):
        expected = parent(
            x, x, return_attention_scores=return_attention_scores, **kwargs
        )
        actual = layer(
            x, x, return_attention_scores=return_attention_scores, **kwargs
        )
        for expected_part, actual_part in zip(
            keras.tree.flatten(expected),
            keras.tree.flatten(actual),
            strict=True,
        ):
            np.testing.assert_allclose(
                to_numpy(actual_part),
                to_numpy(expected_part),
                rtol=1e-6,
                atol=1e-6,
            )


def test_softmax_equals_multi_head_attention_with_padding(value):
    layer = attention_layer("softmax")
    parent = keras.layers.MultiHeadAttention(
        num_heads=NUM_HEADS, key_dim=KEY_DIM
    )
    model, parent_model = padded_model(layer), padded_model(parent)
    parent.set_weights(layer.get_weights())
    for actual, expected in zip(
        model(padded(value)), parent_model(padded(value)), strict=True
    ):
        np.testing.assert_allclose(
            to_numpy(actual), to_numpy(expected), rtol=1e-6, atol=1e-6
        )


@pytest.mark.parametrize("normalizer, alpha", SPARSE_NORMALIZERS)
@pytest.mark.parametrize("masked", [False, True])
def test_sparse_weights_and_outputs_match_numpy_attention(
    normalizer, alpha, masked, query, value, attention_mask
):
    layer = attention_layer(normalizer, alpha)
    mask = attention_mask if masked else None
    output, weights = layer(
        query, value, attention_mask=mask, return_attention_scores=True
    )
    expected_output, expected_weights = reference_attention(
        layer, query, value, mask
    )
    weights = to_numpy(weights)
    np.testing.assert_allclose(weights, expected_weights, atol=2e-6)
    np.testing.assert_allclose(
        to_numpy(output), expected_output, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    if masked:
        assert np.all(
            weights[np.broadcast_to(~mask[:, None], weights.shape)] == 0
        )


@pytest.mark.parametrize("normalizer, alpha", SPARSE_NORMALIZERS[:3])
def test_sparse_weights_have_exact_zeros_without_masks(
    normalizer, alpha, query, value
):
    layer = attention_layer(normalizer, alpha)
    _, weights = layer(query, value, return_attention_scores=True)
    weights = to_numpy(weights)
    # Far more than one zero: a softmax would give none.
    assert np.sum(weights == 0.0) >= weights.size // 4
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("normalizer, alpha", SPARSE_NORMALIZERS[:3])
def test_causal_mask_gives_future_keys_exactly_zero_weight(
    normalizer, alpha, value
):
    layer = attention_layer(normalizer, alpha)
    _, weights = layer(
        value, value, use_causal_mask=True, return_attention_scores=True
    )
    weights = to_numpy(weights)
    future = np.broadcast_to(
        ~causal_mask(SOURCE_LENGTH)[:, None], weights.shape
    )
    assert np.all(weights[future] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    mask = np.broadcast_to(
        causal_mask(SOURCE_LENGTH), (BATCH_SIZE, SOURCE_LENGTH, SOURCE_LENGTH)
    )
    _, expected = reference_attention(layer, value, value, mask)
    np.testing.assert_allclose(weights, expected, atol=2e-6)


@pytest.mark.parametrize("normalizer, alpha", SPARSE_NORMALIZERS[:3])
def test_padding_gets_exactly_zero_weight(normalizer, alpha, value):
    layer = attention_layer(normalizer, alpha)
    _, weights = padded_model(layer)(padded(value))
    weights = to_numpy(weights)
    # Padded keys get no weight; padded queries attend to nothing.
    assert np.all(weights[0, :, :, -2:] == 0.0)
    assert np.all(weights[0, :, -2:, :] == 0.0)
    np.testing.assert_allclose(weights[0, :, :-2].sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(weights[1].sum(-1), 1.0, atol=1e-6)
    # The reference: keys masked by the padding, then the rows of the
    # padded queries set to 0.
    key_mask = np.ones((BATCH_SIZE, SOURCE_LENGTH, SOURCE_LENGTH), bool)
    key_mask[0, :, -2:] = False
    _, expected = reference_attention(
        layer, padded(value), padded(value), key_mask
    )
    expected[0, :, -2:] = 0.0
    np.testing.assert_allclose(weights, expected, atol=2e-6)


@pytest.mark.parametrize("normalizer, alpha", SPARSE_NORMALIZERS[:3])
def test_gradients_match_central_differences(
    normalizer, alpha, query, value, attention_mask, rng
):
    layer = attention_layer(normalizer, alpha)
    layer(query, value)
    cotangent = rng.normal(size=(BATCH_SIZE, TARGET_LENGTH, DIM))

    def weighted_output(x):
        output = layer(x, value, attention_mask=attention_mask)
        return keras.ops.multiply(output, cotangent.astype("float32"))

    def reference(x):
        output, _ = reference_attention(layer, x, value, attention_mask)
        return np.sum(output * cotangent)

    actual = gradient(weighted_output, query)
    assert np.all(np.isfinite(actual))
    np.testing.assert_allclose(
        actual, central_differences(reference, query), rtol=1e-3, atol=1e-4
    )


def test_dropout_applies_in_training_only(query, value):
    layer = attention_layer("sparsemax", dropout=0.5, seed=3)
    inference_output = to_numpy(layer(query, value, training=False))
    expected_output, _ = reference_attention(layer, query, value)
    np.testing.assert_allclose(inference_output, expected_output, atol=1e-5)
    training_output = to_numpy(layer(query, value, training=True))
    assert not np.allclose(training_output, expected_output, atol=1e-3)


def test_nan_in_a_query_gives_nan_for_that_query_only(query, value):
    layer = attention_layer("sparsemax")
    query = query.copy()
    query[0, 1, 0] = np.nan
    output, weights = layer(query, value, return_attention_scores=True)
    output, weights = to_numpy(output), to_numpy(weights)
    assert np.all(np.isnan(output[0, 1])) and np.all(np.isnan(weights[0, :, 1]))
    output[0, 1], weights[0, :, 1] = 0.0, 0.0
    assert np.all(np.isfinite(output)) and np.all(np.isfinite(weights))


def test_empty_batch_gives_empty_outputs(value):
    layer = attention_layer("entmax15")
    empty = value[:0]
    output, weights = layer(empty, empty, return_attention_scores=True)
    assert tuple(output.shape) == (0, SOURCE_LENGTH, DIM)
    assert tuple(weights.shape) == (0, NUM_HEADS, SOURCE_LENGTH, SOURCE_LENGTH)


def test_mixed_precision_keeps_exact_zeros(value):
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = attention_layer("sparsemax")
    output, weights = layer(
        value, value, use_causal_mask=True, return_attention_scores=True
    )
    assert keras.backend.standardize_dtype(weights.dtype) == "bfloat16"
    weights = to_numpy(weights)
    assert np.all(np.isfinite(to_numpy(output)))
    future = np.broadcast_to(
        ~causal_mask(SOURCE_LENGTH)[:, None], weights.shape
    )
    assert np.all(weights[future] == 0.0)
    # bfloat16 keeps 8 bits: each weight within its roundoff of a row
    # summing to 1.
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=SOURCE_LENGTH * 2**-8)


def test_attention_over_two_axes_normalizes_over_both(rng):
    # (batch, 2, 3, dim) attended over axes 1 and 2: 6 keys per query.
    x = (INPUT_SCALE * rng.normal(size=(BATCH_SIZE, 2, 3, DIM))).astype(
        "float32"
    )
    layer = attention_layer("sparsemax", attention_axes=(1, 2))
    _, weights = layer(x, x, return_attention_scores=True)
    assert layer.get_config()["attention_axes"] == [1, 2]
    weights = to_numpy(weights)
    assert weights.shape == (BATCH_SIZE, NUM_HEADS, 2, 3, 2, 3)
    flat = x.reshape(BATCH_SIZE, 6, DIM)
    _, expected = reference_attention(layer, flat, flat)
    np.testing.assert_allclose(
        weights.reshape(BATCH_SIZE, NUM_HEADS, 6, 6), expected, atol=2e-6
    )


def test_config_round_trip_and_saving_keep_outputs(value, tmp_path):
    layer = attention_layer("entmax", 1.25, dropout=0.1, seed=4)
    config = layer.get_config()
    assert config["normalizer"] == "entmax"
    assert config["alpha"] == 1.25
    clone = SparseMultiHeadAttention.from_config(config)
    assert clone.get_config() == config
    model = padded_model(layer)
    path = tmp_path / "attention.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    (loaded_layer,) = [
        layer
        for layer in loaded.layers
        if isinstance(layer, SparseMultiHeadAttention)
    ]
    # The config holds the arguments as given, built or not.
    assert layer.get_config() == config
    assert loaded_layer.get_config() == config
    for actual, expected in zip(
        loaded(padded(value)), model(padded(value)), strict=True
    ):
        np.testing.assert_array_equal(to_numpy(actual), to_numpy(expected))


def invalid_value_pattern(name, value):
    return (
        re.escape(f"Invalid value received for argument `{name}`")
        + ".*"
        + re.escape(f"Received: {name}={value!r}")
    )


@pytest.mark.parametrize(
    "name, value",
    [
        ("normalizer", "gumbel"),
        ("normalizer", "Softmax"),
        ("alpha", 0.5),
        ("alpha", float("nan")),
        ("alpha", "learnt"),
    ],
)
def test_bad_arguments_raise_value_error(name, value):
    kwargs = {"normalizer": "entmax", name: value}
    with pytest.raises(ValueError, match=invalid_value_pattern(name, value)):
        SparseMultiHeadAttention(num_heads=2, key_dim=3, **kwargs)


@pytest.mark.parametrize("alpha", [1.5, "learned"])
def test_alpha_with_another_normalizer_is_refused(alpha):
    with pytest.raises(ValueError, match=invalid_value_pattern("alpha", alpha)):
        SparseMultiHeadAttention(
            num_heads=2, key_dim=3, normalizer="sparsemax", alpha=alpha
        )


def test_flash_attention_is_refused_for_a_sparse_normalizer():
    with pytest.raises(
        ValueError, match=invalid_value_pattern("flash_attention", True)
    ):
        SparseMultiHeadAttention(
            num_heads=2, key_dim=3, normalizer="sparsemax", flash_attention=True
        )
