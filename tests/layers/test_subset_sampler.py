"""Tests of the `SubsetSampler` layer: what it returns in training and at
inference, its step counter and schedule, and its argument checks. The ops
it calls are tested in `tests/ops/test_subsets.py`; config, saving, masks
and mixed precision in the shared conformance table."""

import keras
import numpy as np
import pytest

from keras_latent import models
from keras_latent import schedules
from keras_latent.layers import SubsetSampler
from tests.arrays import to_numpy


@pytest.fixture
def logits(rng):
    values = rng.normal(size=(64, 6)).astype("float32")
    values[::3, 2] = -np.inf
    return values


def k_hot_of_largest(x, k):
    largest = np.argsort(-x, axis=-1, kind="stable")[:, :k]
    return np.eye(x.shape[-1])[largest].sum(axis=1)


def test_inference_mode_keeps_the_k_largest_logits(logits):
    layer = SubsetSampler(k=3, seed=1)
    np.testing.assert_array_equal(
        to_numpy(layer(logits, training=False)), k_hot_of_largest(logits, 3)
    )


def test_inference_sample_is_an_exact_k_hot_without_masked(logits):
    layer = SubsetSampler(k=3, eval_mode="sample", seed=1)
    sample = to_numpy(layer(logits, training=False))
    assert np.all((sample == 0.0) | (sample == 1.0))
    np.testing.assert_array_equal(sample.sum(-1), 3.0)
    assert np.all(sample[np.isinf(logits)] == 0.0)
    # Not the mode: with 64 rows of 20 subsets, some row differs.
    assert np.any(sample != k_hot_of_largest(logits, 3))


def test_relaxed_training_samples_sum_to_k(logits):
    layer = SubsetSampler(k=2, temperature=0.5, seed=2)
    sample = to_numpy(layer(logits, training=True))
    np.testing.assert_allclose(sample.sum(-1), 2.0, atol=2e-5)
    assert np.all(sample >= 0.0) and np.all(sample[np.isinf(logits)] == 0.0)
    assert np.any((sample > 0.01) & (sample < 0.99))


def test_straight_through_training_samples_are_k_hot(logits):
    layer = SubsetSampler(k=2, estimator="straight_through", seed=2)
    sample = to_numpy(layer(logits, training=True))
    assert np.all((sample == 0.0) | (sample == 1.0))
    np.testing.assert_array_equal(sample.sum(-1), 2.0)
    assert np.all(sample[np.isinf(logits)] == 0.0)


def test_training_draws_new_noise_at_every_call(logits):
    layer = SubsetSampler(k=2, estimator="straight_through", seed=3)
    first = to_numpy(layer(logits, training=True))
    second = to_numpy(layer(logits, training=True))
    assert np.any(first != second)


def test_counter_advances_in_training_only_and_drives_the_schedule(logits):
    """At temperature 1e-3 (the schedule's second step) the relaxation of
    well-separated logits is the k-hot of their top k; at 100 (its first)
    it is near uniform."""
    logits = np.array([[4.0, 0.0, 2.0, -2.0]] * 8, dtype="float32")
    schedule = schedules.PiecewiseConstant([1], [100.0, 1e-3])
    layer = SubsetSampler(k=2, temperature=schedule, seed=4)
    layer(logits, training=False)
    assert int(to_numpy(layer.iterations)) == 0
    hot = to_numpy(layer(logits, training=True))
    np.testing.assert_allclose(hot, 0.5, atol=0.1)
    cold = to_numpy(layer(logits, training=True))
    assert int(to_numpy(layer.iterations)) == 2
    # Gumbel noise can reorder logits 2 apart, but rarely all eight rows
    # the same way: each row is an exact 2-hot at this temperature.
    np.testing.assert_allclose(cold.sum(-1), 2.0, atol=1e-5)
    assert np.all((np.abs(cold) < 1e-4) | (np.abs(cold - 1.0) < 1e-4))


def test_along_another_axis(rng):
    logits = rng.normal(size=(4, 6, 3)).astype("float32")
    layer = SubsetSampler(k=2, axis=1, seed=5)
    expected = np.moveaxis(
        k_hot_of_largest(np.moveaxis(logits, 1, -1).reshape(-1, 6), 2).reshape(
            4, 3, 6
        ),
        -1,
        1,
    )
    np.testing.assert_array_equal(
        to_numpy(layer(logits, training=False)), expected
    )


def test_empty_batch_gives_empty_output():
    layer = SubsetSampler(k=2, seed=6)
    empty = np.zeros((0, 5), dtype="float32")
    assert tuple(layer(empty, training=True).shape) == (0, 5)
    assert tuple(layer(empty, training=False).shape) == (0, 5)


def test_nan_logits_give_nan_rows():
    logits = np.array([[0.1, np.nan, 0.3], [0.1, 0.2, 0.3]], "float32")
    for training in (True, False):
        result = to_numpy(SubsetSampler(k=2, seed=7)(logits, training=training))
        assert np.all(np.isnan(result[0]))
        np.testing.assert_allclose(result[1].sum(), 2.0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(k=0), "k"),
        (dict(k=2.5), "k"),
        (dict(k=2, estimator="gumbel_softmax"), "estimator"),
        (dict(k=2, eval_mode="probs"), "eval_mode"),
        (dict(k=2, temperature=0.0), "temperature"),
        (dict(k=2, axis=1.0), "axis"),
        # Options of the categorical estimators, which a subset ignored.
        (dict(k=2, hard=True), "hard"),
        (dict(k=2, hard=False), "hard"),
        (dict(k=2, num_samples=3), "num_samples"),
    ],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        SubsetSampler(**kwargs)


@pytest.mark.parametrize(
    "kwargs, shape, name",
    [(dict(k=6), (2, 5), "k"), (dict(k=2, axis=2), (2, 5), "axis")],
)
def test_build_rejects_arguments_that_do_not_fit_the_input(kwargs, shape, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        SubsetSampler(**kwargs).build(shape)


def test_set_eval_mode_refuses_a_mode_the_layer_lacks(logits):
    """`models.set_eval_mode` sets the layer's mode directly; "probs", which
    a subset has not, is refused, not served as the top-k."""
    inputs = keras.Input((6,))
    layer = SubsetSampler(k=2, seed=8)
    model = keras.Model(inputs, layer(inputs))
    with pytest.raises(ValueError, match="argument `eval_mode`"):
        models.set_eval_mode(model, "probs")
    assert layer.eval_mode == "mode"
    models.set_eval_mode(model, "sample")
    assert layer.eval_mode == "sample"
