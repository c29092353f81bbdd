"""Log-probabilities of exact samples against float64 NumPy."""

import numpy as np
import pytest

from keras_latent import ops as latent_ops
from tests import references
from tests.arrays import to_numpy


def test_one_hot_log_prob_is_the_log_softmax_of_the_drawn_category(rng):
    logits = rng.normal(size=(5, 3, 4)).astype("float32")
    categories = rng.integers(4, size=(5, 3))
    sample = np.eye(4, dtype="float32")[categories]
    result = latent_ops.one_hot_categorical_log_prob(sample, logits)
    expected = np.take_along_axis(
        references.log_softmax(logits), categories[..., None], -1
    )[..., 0]
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-5)


def test_one_hot_log_prob_of_masked_categories():
    logits = np.array([[0.0, 1.0, -np.inf]] * 2, dtype="float32")
    sample = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype="float32")
    result = to_numpy(latent_ops.one_hot_categorical_log_prob(sample, logits))
    assert result[0] == pytest.approx(-np.log1p(np.e), rel=1e-6)
    assert result[1] == -np.inf


def test_one_hot_log_prob_of_nan_logits_is_nan():
    logits = np.array([[0.0, np.nan]], dtype="float32")
    sample = np.array([[1.0, 0.0]], dtype="float32")
    assert np.isnan(
        to_numpy(latent_ops.one_hot_categorical_log_prob(sample, logits))
    ).all()


def test_bernoulli_log_prob_against_float64(rng):
    logits = rng.normal(scale=3.0, size=(6, 5)).astype("float32")
    sample = (rng.random((6, 5)) < 0.5).astype("float32")
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = np.log(np.where(sample == 1, probabilities, 1 - probabilities))
    result = latent_ops.bernoulli_log_prob(sample, logits)
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-5)


def test_bernoulli_log_prob_at_infinite_logits_is_the_limit():
    logits = np.array([np.inf, np.inf, -np.inf, np.nan], dtype="float32")
    sample = np.array([1.0, 0.0, 0.0, 1.0], dtype="float32")
    result = to_numpy(latent_ops.bernoulli_log_prob(sample, logits))
    assert result[0] == 0.0 and result[1] == -np.inf and result[2] == 0.0
    assert np.isnan(result[3])
