"""Tests of the `GumbelSoftmax` layer: outputs, eval modes, models, errors.

References are NumPy ones (softmax, argmax, from `tests/references.py`) or
SciPy (chi-square test), never computed with keras-latent. Config, shapes,
saving and mixed precision are checked in `tests/layers/test_conformance.py`;
fit-based checks (fresh noise in compiled steps, seeds, mixed-precision
training) in `tests/layers/test_training.py`.
"""

import re

import keras
import numpy as np
import pytest
from scipy import stats

from keras_latent import schedules
from keras_latent.layers import GumbelSoftmax
from tests import references
from tests.arrays import to_numpy
from tests.layers.model_kinds import MODEL_KINDS
from tests.layers.model_kinds import build_model
from tests.layers.model_kinds import dense_logits
from tests.ops.gradients import gradient

# The chi-square test below rejects a correct layer with this probability.
FALSE_FAILURE_RATE = 1e-3


SHAPES_AND_AXES = [((4, 5), -1), ((2, 3, 5), -1), ((2, 5, 3), 1)]
SHAPE_IDS = ["rank2", "rank3-last-axis", "rank3-axis-1"]


@pytest.mark.parametrize("shape, axis", SHAPES_AND_AXES, ids=SHAPE_IDS)
def test_training_output_is_a_soft_point_of_the_simplex(shape, axis, rng):
    logits = rng.normal(size=shape).astype("float32")
    outputs = to_numpy(GumbelSoftmax(axis=axis, seed=2)(logits, training=True))
    assert outputs.shape == shape
    assert np.all(outputs > 0.0) and np.all(outputs < 1.0)
    np.testing.assert_allclose(np.sum(outputs, axis=axis), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape, axis", SHAPES_AND_AXES, ids=SHAPE_IDS)
def test_hard_training_output_is_exactly_one_hot(shape, axis, rng):
    logits = rng.normal(size=shape).astype("float32")
    layer = GumbelSoftmax(hard=True, axis=axis, seed=3)
    references.assert_exact_one_hot(
        to_numpy(layer(logits, training=True)), axis=axis
    )


@pytest.mark.parametrize(
    "estimator",
    ["straight_through_gumbel", "straight_through", "gumbel_rao", "reinmax"],
)
def test_one_hot_estimators_train_with_one_hot_samples(estimator, rng):
    """Exact one-hots along `axis`, and a gradient that reaches the logits
    (Gumbel-Rao, ReinMax and straight-through pass one back)."""
    logits = rng.normal(size=(2, 5, 3)).astype("float32")
    weights = keras.ops.convert_to_tensor(rng.normal(size=(2, 5, 3)))
    layer = GumbelSoftmax(estimator=estimator, axis=1, seed=3)
    references.assert_exact_one_hot(
        to_numpy(layer(logits, training=True)), axis=1
    )
    grad = gradient(
        lambda x: keras.ops.multiply(
            GumbelSoftmax(estimator=estimator, axis=1, seed=3)(
                x, training=True
            ),
            keras.ops.cast(weights, "float32"),
        ),
        logits,
    )
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)
    # A softmax-family gradient sums to 0 over the categories.
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)


@pytest.mark.parametrize("shape, axis", SHAPES_AND_AXES, ids=SHAPE_IDS)
def test_mode_inference_is_the_one_hot_of_the_numpy_argmax(shape, axis, rng):
    logits = rng.normal(size=shape).astype("float32")
    layer = GumbelSoftmax(axis=axis, eval_mode="mode", seed=4)
    outputs = to_numpy(layer(logits, training=False))
    assert outputs.shape == shape
    np.testing.assert_array_equal(
        outputs, references.one_hot_of_argmax(logits, axis)
    )


@pytest.mark.parametrize("shape, axis", SHAPES_AND_AXES, ids=SHAPE_IDS)
def test_probs_inference_is_the_numpy_softmax(shape, axis, rng):
    logits = rng.normal(size=shape).astype("float32")
    layer = GumbelSoftmax(axis=axis, eval_mode="probs")
    outputs = to_numpy(layer(logits, training=False))
    np.testing.assert_allclose(
        outputs, references.softmax(logits, axis), rtol=1e-5
    )


@pytest.mark.parametrize("shape, axis", SHAPES_AND_AXES, ids=SHAPE_IDS)
def test_sample_inference_is_exactly_one_hot(shape, axis, rng):
    logits = rng.normal(size=shape).astype("float32")
    layer = GumbelSoftmax(axis=axis, eval_mode="sample", seed=5)
    references.assert_exact_one_hot(
        to_numpy(layer(logits, training=False)), axis=axis
    )


def test_sample_inference_frequencies_match_the_softmax():
    """Categories drawn at inference in "sample" mode follow softmax(logits),
    also along a middle axis. Chi-square test over 20,000 draws."""
    logits = np.array([1.0, -0.5, 0.3, 2.0], dtype="float32")
    draws = np.broadcast_to(logits[None, :, None], (20000, 4, 1))
    layer = GumbelSoftmax(axis=1, eval_mode="sample", seed=6)
    winners = np.argmax(to_numpy(layer(draws, training=False)), axis=1)
    counts = np.bincount(winners.ravel(), minlength=4)
    expected = 20000 * references.softmax(logits.astype(np.float64))
    _, p_value = stats.chisquare(counts, expected)
    assert p_value >= FALSE_FAILURE_RATE, (counts, expected)


def test_inference_in_mode_is_deterministic_and_training_is_not(rng):
    logits = rng.normal(size=(4, 5)).astype("float32")
    layer = GumbelSoftmax(seed=7)
    np.testing.assert_array_equal(
        to_numpy(layer(logits, training=False)),
        to_numpy(layer(logits, training=False)),
    )
    assert not np.array_equal(
        to_numpy(layer(logits, training=True)),
        to_numpy(layer(logits, training=True)),
    )


def test_config_keeps_the_configured_schedule_not_the_value_in_force():
    schedule = schedules.PiecewiseConstant([1], [2.0, 0.5])
    layer = GumbelSoftmax(temperature=schedule)
    for _ in range(3):
        layer(np.zeros((1, 4), "float32"), training=True)
    assert layer.get_config()["temperature"] == (
        keras.saving.serialize_keras_object(schedule)
    )


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_works_in_sequential_functional_and_subclassed_models(kind, rng):
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    model = build_model(
        kind, GumbelSoftmax(eval_mode="mode", seed=8), (3, 4), units=5
    )
    predicted = model.predict(x, verbose=0)
    np.testing.assert_array_equal(
        predicted, references.one_hot_of_argmax(dense_logits(model, x))
    )
    soft = to_numpy(model(x, training=True))
    assert soft.shape == (2, 3, 5)
    assert np.all(soft > 0.0)
    np.testing.assert_allclose(np.sum(soft, axis=-1), 1.0, rtol=1e-5)


def received(name, value):
    """The regex of the end of a Keras argument error."""
    return re.escape(f"`{name}`") + ".*" + re.escape(f"{name}={value!r}")


@pytest.mark.parametrize(
    "value", [0.0, -1.0, float("nan"), float("inf"), "1.0", None]
)
def test_invalid_temperature_raises(value):
    with pytest.raises(ValueError, match=received("temperature", value)):
        GumbelSoftmax(temperature=value)


@pytest.mark.parametrize("value", ["argmax", None])
def test_unknown_eval_mode_raises(value):
    with pytest.raises(ValueError, match=received("eval_mode", value)):
        GumbelSoftmax(eval_mode=value)


@pytest.mark.parametrize("value", [1.5, "1"])
def test_non_integer_axis_raises(value):
    with pytest.raises(ValueError, match=received("axis", value)):
        GumbelSoftmax(axis=value)


@pytest.mark.parametrize("axis", [2, -3])
def test_axis_out_of_range_raises_at_build(axis):
    layer = GumbelSoftmax(axis=axis)
    with pytest.raises(ValueError, match=received("axis", axis)):
        layer(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match=received("axis", axis)):
        GumbelSoftmax(axis=axis)(keras.Input((3,)))
