"""Tests for keras_latent.losses against NumPy float64 formulas."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_latent
from keras_latent import losses
from tests.arrays import to_numpy


def numpy_bce_from_logits(targets, logits):
    """-log Bernoulli(targets | sigmoid(logits)), elementwise, float64."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    # log sigmoid(x) = -logaddexp(0, -x); log(1 - sigmoid(x)) = -logaddexp(0, x)
    return targets * np.logaddexp(0.0, -logits) + (1.0 - targets) * (
        np.logaddexp(0.0, logits)
    )


def numpy_bce_from_probabilities(targets, probabilities, epsilon=1e-7):
    probabilities = np.clip(
        np.asarray(probabilities, np.float64), epsilon, 1.0 - epsilon
    )
    targets = np.asarray(targets, np.float64)
    return -(
        targets * np.log(probabilities)
        + (1.0 - targets) * np.log(1.0 - probabilities)
    )


def per_example_sum(values):
    return values.reshape(values.shape[0], -1).sum(axis=1)


@pytest.fixture
def images(rng):
    """A batch of 5 binary 3x4 images, logits and probabilities for them."""
    targets = (rng.random((5, 3, 4)) > 0.5).astype("float32")
    logits = rng.normal(scale=3.0, size=(5, 3, 4)).astype("float32")
    probabilities = rng.uniform(0.01, 0.99, size=(5, 3, 4)).astype("float32")
    return targets, logits, probabilities


def test_summed_bce_from_logits_is_the_bernoulli_nll_of_each_example(images):
    targets, logits, _ = images
    loss = losses.SummedBinaryCrossentropy(from_logits=True, reduction=None)
    expected = per_example_sum(numpy_bce_from_logits(targets, logits))
    np.testing.assert_allclose(
        to_numpy(loss(targets, logits)), expected, rtol=1e-5
    )


def test_summed_bce_from_probabilities_matches_numpy(images):
    targets, _, probabilities = images
    loss = losses.SummedBinaryCrossentropy(reduction=None)
    expected = per_example_sum(
        numpy_bce_from_probabilities(targets, probabilities)
    )
    np.testing.assert_allclose(
        to_numpy(loss(targets, probabilities)), expected, rtol=1e-5
    )


def test_summed_bce_is_num_features_times_keras_mean_bce(images):
    targets, logits, _ = images
    summed = losses.SummedBinaryCrossentropy(from_logits=True)
    mean = keras.losses.BinaryCrossentropy(from_logits=True)
    flat_targets, flat_logits = targets.reshape(5, 12), logits.reshape(5, 12)
    np.testing.assert_allclose(
        to_numpy(summed(targets, logits)),
        12 * to_numpy(mean(flat_targets, flat_logits)),
        rtol=1e-5,
    )


def test_summed_squared_error_matches_numpy(images):
    targets, logits, _ = images
    loss = losses.SummedSquaredError(reduction=None)
    expected = per_example_sum(
        (targets.astype(np.float64) - logits.astype(np.float64)) ** 2
    )
    np.testing.assert_allclose(
        to_numpy(loss(targets, logits)), expected, rtol=1e-5
    )


def test_soft_targets_are_cross_entropies(rng):
    targets = rng.random((4, 6)).astype("float32")
    logits = rng.normal(size=(4, 6)).astype("float32")
    got = losses.summed_binary_crossentropy(targets, logits, from_logits=True)
    np.testing.assert_allclose(
        to_numpy(got),
        per_example_sum(numpy_bce_from_logits(targets, logits)),
        rtol=1e-5,
    )


@pytest.mark.parametrize("logit", [1e4, -1e4, 88.0, -88.0, 1e30])
@pytest.mark.parametrize("target", [0.0, 1.0])
def test_from_logits_is_exact_at_large_logits(logit, target):
    # -log sigmoid(x) is 0 to float32 precision for x >= 88 and |x| for
    # x <= -88; the naive log(sigmoid(x)) gives inf or loses it all.
    logits = np.full((2, 3), logit, dtype="float32")
    targets = np.full((2, 3), target, dtype="float32")
    got = to_numpy(
        losses.summed_binary_crossentropy(targets, logits, from_logits=True)
    )
    expected = per_example_sum(numpy_bce_from_logits(targets, logits))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-30)


def test_nan_in_gives_nan_out():
    logits = np.array([[0.0, np.nan], [1.0, 2.0]], dtype="float32")
    targets = np.ones((2, 2), dtype="float32")
    for function in (
        lambda: losses.summed_binary_crossentropy(
            targets, logits, from_logits=True
        ),
        lambda: losses.summed_binary_crossentropy(targets, logits),
        lambda: losses.summed_squared_error(targets, logits),
    ):
        got = to_numpy(function())
        assert np.isnan(got[0]) and np.isfinite(got[1])


@pytest.mark.parametrize(
    "reduction, reduce",
    [
        ("sum_over_batch_size", np.mean),
        ("mean", np.mean),
        ("sum", np.sum),
    ],
)
def test_reductions_follow_keras(images, reduction, reduce):
    targets, logits, _ = images
    loss = losses.SummedBinaryCrossentropy(
        from_logits=True, reduction=reduction
    )
    per_example = per_example_sum(numpy_bce_from_logits(targets, logits))
    np.testing.assert_allclose(
        float(to_numpy(loss(targets, logits))), reduce(per_example), rtol=1e-5
    )


def test_sample_weights_weigh_whole_examples(images):
    targets, logits, _ = images
    weights = np.array([1.0, 0.0, 2.0, 0.5, 0.0], dtype="float32")
    per_example = per_example_sum(numpy_bce_from_logits(targets, logits))
    summed = losses.SummedBinaryCrossentropy(from_logits=True)
    # Keras's "sum_over_batch_size": the weighted sum over the batch size.
    np.testing.assert_allclose(
        float(to_numpy(summed(targets, logits, sample_weight=weights))),
        np.sum(weights * per_example) / 5,
        rtol=1e-5,
    )
    weighted_mean = losses.SummedSquaredError(
        reduction="mean_with_sample_weight"
    )
    squared = per_example_sum((targets - logits).astype(np.float64) ** 2)
    np.testing.assert_allclose(
        float(to_numpy(weighted_mean(targets, logits, sample_weight=weights))),
        np.sum(weights * squared) / np.sum(weights),
        rtol=1e-5,
    )


def test_a_rank_one_batch_has_one_feature_per_example():
    targets = np.array([1.0, 0.0], dtype="float32")
    logits = np.array([2.0, -1.0], dtype="float32")
    got = losses.SummedBinaryCrossentropy(from_logits=True, reduction=None)(
        targets, logits
    )
    np.testing.assert_allclose(
        to_numpy(got), numpy_bce_from_logits(targets, logits), rtol=1e-6
    )


def test_float16_inputs_are_summed_in_float32():
    # 784 squared errors of 16 sum to 200704, beyond float16's 65504.
    targets = np.zeros((2, 784), dtype="float16")
    predictions = np.full((2, 784), 4.0, dtype="float16")
    got = losses.summed_squared_error(targets, predictions)
    assert ops.convert_to_numpy(got).dtype == np.float32
    np.testing.assert_allclose(to_numpy(got), [784 * 16.0] * 2)


@pytest.mark.parametrize(
    "loss",
    [
        losses.SummedBinaryCrossentropy(
            from_logits=True, reduction="sum", name="reconstruction"
        ),
        losses.SummedSquaredError(reduction="mean_with_sample_weight"),
    ],
    ids=["bce", "squared_error"],
)
def test_config_round_trip(loss, images):
    targets, logits, _ = images
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(
        to_numpy(restored(targets, logits)), to_numpy(loss(targets, logits))
    )
    serialized = keras.saving.serialize_keras_object(loss)
    assert serialized["registered_name"].startswith("keras_latent>")


def test_invalid_from_logits_is_rejected():
    with pytest.raises(ValueError, match="argument `from_logits`"):
        losses.SummedBinaryCrossentropy(from_logits="yes")


def test_a_compiled_model_reloads_with_its_loss(tmp_path, rng):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(6)(inputs))
    model.compile(
        optimizer="sgd",
        loss=keras_latent.losses.SummedBinaryCrossentropy(from_logits=True),
    )
    x = (rng.random((8, 6)) > 0.5).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.loss, losses.SummedBinaryCrossentropy)
    assert reloaded.loss.from_logits
    np.testing.assert_allclose(
        reloaded.evaluate(x, x, verbose=0),
        model.evaluate(x, x, verbose=0),
        rtol=1e-6,
    )
