"""Tests of the `BernoulliLatent` layer: outputs, eval modes, KL, errors.

The references are NumPy or SciPy ones (sigmoid, the Bernoulli KL of
`tests/references.py`, a binomial test), never computed with keras-latent.
Config, shapes and saving are checked in `tests/layers/test_conformance.py`;
fit-based checks (KL logs, fresh noise in compiled steps, mixed-precision
training) in `tests/layers/test_training.py`.
"""

import re

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special
from scipy import stats

from keras_latent import schedules
from keras_latent.layers import BernoulliLatent
from keras_latent.ops import bernoulli_estimator
from tests import references
from tests.arrays import to_numpy
from tests.layers.model_kinds import MODEL_KINDS
from tests.layers.model_kinds import build_model
from tests.layers.model_kinds import dense_logits
from tests.ops.gradients import gradient

# The frequency test below rejects a correct layer with this probability.
FALSE_FAILURE_RATE = 1e-3

SHAPES = [(5, 6), (2, 3, 6)]
SHAPE_IDS = ["rank2", "rank3"]


def kl_loss(layer):
    """The one loss the layer added in its last call, as a float."""
    assert len(layer.losses) == 1
    return float(to_numpy(layer.losses[0]))


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_training_output_is_strictly_between_0_and_1(shape, rng):
    logits = rng.normal(size=shape).astype("float32")
    outputs = to_numpy(BernoulliLatent(seed=1)(logits, training=True))
    assert outputs.shape == shape
    assert np.all(outputs > 0.0) and np.all(outputs < 1.0)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_hard_training_output_is_exactly_0_or_1(shape, rng):
    logits = rng.normal(size=shape).astype("float32")
    outputs = to_numpy(
        BernoulliLatent(hard=True, seed=2)(logits, training=True)
    )
    assert outputs.shape == shape
    assert set(np.unique(outputs)) == {0.0, 1.0}


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_mode_inference_is_1_where_the_logit_is_positive(shape, rng):
    logits = rng.normal(size=shape).astype("float32")
    layer = BernoulliLatent(eval_mode="mode", seed=3)
    outputs = to_numpy(layer(logits, training=False))
    np.testing.assert_array_equal(outputs, (logits > 0).astype(np.float64))


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_probs_inference_is_the_numpy_sigmoid(shape, rng):
    logits = rng.normal(size=shape).astype("float32")
    layer = BernoulliLatent(eval_mode="probs")
    outputs = to_numpy(layer(logits, training=False))
    np.testing.assert_allclose(outputs, special.expit(logits), rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_sample_inference_is_exactly_0_or_1(shape, rng):
    logits = rng.normal(size=shape).astype("float32")
    layer = BernoulliLatent(seed=4)
    assert layer.eval_mode == "sample"
    outputs = to_numpy(layer(logits, training=False))
    assert outputs.shape == shape
    assert set(np.unique(outputs)) <= {0.0, 1.0}


def test_sample_inference_frequencies_match_the_sigmoid():
    """Each unit is 1 with probability sigmoid(logit): a two-sided binomial
    test per unit over 20,000 draws, Bonferroni over the 4 units."""
    logits = np.array([-2.0, -0.3, 0.0, 1.5], dtype="float32")
    draws = np.broadcast_to(logits, (20000, 4))
    outputs = to_numpy(BernoulliLatent(seed=5)(draws, training=False))
    ones = np.sum(outputs, axis=0).astype(int)
    for count, probability in zip(ones, special.expit(logits), strict=True):
        p_value = stats.binomtest(count, 20000, probability).pvalue
        assert p_value >= FALSE_FAILURE_RATE / 4, (count, probability)


@pytest.mark.parametrize("prior_probability", [0.5, 0.2])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_kl_loss_is_the_weighted_batch_mean_of_the_summed_analytic_kl(
    prior_probability, shape, rng
):
    logits = (2.0 * rng.normal(size=shape)).astype("float32")
    layer = BernoulliLatent(
        prior_probability=prior_probability, kl_weight=0.3, seed=6
    )
    kl = references.bernoulli_kl(logits, special.logit(prior_probability))
    expected = 0.3 * np.mean(np.sum(kl, axis=-1))
    assert expected > 0.1
    for training in [True, False]:
        layer(logits, training=training)
        np.testing.assert_allclose(kl_loss(layer), expected, rtol=1e-5)


def test_kl_is_finite_for_saturated_logits():
    logits = np.array([[-1e4, -50.0, 50.0, 1e4]], dtype="float32")
    layer = BernoulliLatent(prior_probability=0.2)
    layer(logits, training=True)
    q_one = np.log(1 / 0.2)
    q_zero = np.log(1 / 0.8)
    np.testing.assert_allclose(
        kl_loss(layer), 2 * q_one + 2 * q_zero, rtol=1e-5
    )


def test_config_keeps_the_configured_schedule_not_the_value_in_force():
    schedule = schedules.LinearWarmup(10, end=2.0)
    layer = BernoulliLatent(temperature=2.0, kl_weight=schedule)
    for _ in range(3):
        layer(np.zeros((1, 6), "float32"), training=True)
    config = layer.get_config()
    assert config["temperature"] == 2.0
    assert config["kl_weight"] == keras.saving.serialize_keras_object(schedule)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_works_in_sequential_functional_and_subclassed_models(kind, rng):
    x = rng.normal(size=(5, 5)).astype("float32")
    latent = BernoulliLatent(eval_mode="mode", kl_weight=0.5)
    model = build_model(kind, latent, 5, 6)
    logits = dense_logits(model, x)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), (logits > 0).astype(np.float64)
    )
    soft = to_numpy(model(x, training=True))
    assert soft.shape == (5, 6)
    assert np.all(soft > 0.0) and np.all(soft < 1.0)
    expected = 0.5 * np.mean(np.sum(references.bernoulli_kl(logits), axis=-1))
    assert len(model.losses) == 1
    np.testing.assert_allclose(
        float(to_numpy(model.losses[0])), expected, rtol=1e-4
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("hard", [False, True])
def test_mixed_precision_output_dtype_and_float32_kl(policy, hard, rng):
    """Outputs in the compute dtype in training and every eval mode; the KL
    loss in float32 and equal to the float64 KL of the half-precision
    logits (not rounded to half precision on the way)."""
    keras.config.set_dtype_policy(policy)
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    logits = (3.0 * rng.normal(size=(5, 6))).astype("float32")
    rounded = to_numpy(ops.cast(ops.convert_to_tensor(logits), compute_dtype))
    expected = np.mean(
        np.sum(references.bernoulli_kl(rounded, special.logit(0.3)), axis=-1)
    )
    for eval_mode in ["mode", "sample", "probs"]:
        layer = BernoulliLatent(
            hard=hard, prior_probability=0.3, eval_mode=eval_mode, seed=12
        )
        for training in [True, False]:
            outputs = layer(logits, training=training)
            case = (eval_mode, training)
            dtype = keras.backend.standardize_dtype(outputs.dtype)
            assert dtype == compute_dtype, case
            assert np.all(np.isfinite(to_numpy(outputs))), case
            (loss,) = layer.losses
            assert keras.backend.standardize_dtype(loss.dtype) == "float32"
            np.testing.assert_allclose(
                float(to_numpy(loss)), expected, rtol=1e-5, err_msg=str(case)
            )


def received(name, value):
    """The regex of the end of a Keras argument error."""
    return re.escape(f"`{name}`") + ".*" + re.escape(f"{name}={value!r}")


@pytest.mark.parametrize(
    "name, value",
    [
        ("prior_probability", 0.0),
        ("prior_probability", 1.0),
        ("prior_probability", -0.1),
        ("prior_probability", float("nan")),
        ("prior_probability", "0.5"),
        ("eval_mode", "mode "),
        ("eval_mode", "argmax"),
        ("kl_weight", -1.0),
        ("kl_weight", float("inf")),
        ("temperature", 0.0),
        ("temperature", -2.0),
        ("temperature", float("nan")),
        ("temperature", float("inf")),
        ("temperature", 1e-40),
        ("temperature", 1e39),
        ("kl", "categorical"),
        ("kl", "Analytic"),
        ("hard", 1),
        ("seed", -1),
        ("seed", 1.5),
    ],
)
def test_invalid_argument_raises(name, value):
    with pytest.raises(ValueError, match=received(name, value)):
        BernoulliLatent(**{name: value})


def logistic_log_density(logit_sample, logits, temperature):
    """log t + log sigmoid(z) + log sigmoid(-z), z = t x - l, in float64."""
    z = temperature * logit_sample - logits
    return np.log(temperature) - np.logaddexp(0, -z) - np.logaddexp(0, z)


def test_relaxed_kl_in_training_is_the_logistic_log_density_ratio(rng):
    """KL = mean_batch sum_units [log q(x) - log p(x)] at the logit x of the
    layer's own sample, q and p logistic at the layer's temperature."""
    temperature = 0.5
    logits = rng.normal(size=(8, 6)).astype("float32")
    layer = BernoulliLatent(
        temperature=temperature,
        prior_probability=0.3,
        kl="relaxed",
        kl_weight=0.5,
        seed=4,
    )
    outputs = to_numpy(layer(logits, training=True))
    logit_sample = np.log(outputs) - np.log1p(-outputs)
    prior_logit = np.log(0.3) - np.log(0.7)
    log_ratio = logistic_log_density(
        logit_sample, logits, temperature
    ) - logistic_log_density(logit_sample, prior_logit, temperature)
    expected = 0.5 * np.mean(np.sum(log_ratio, axis=-1))
    np.testing.assert_allclose(kl_loss(layer), expected, rtol=1e-4, atol=1e-4)
    layer(logits, training=False)
    analytic = 0.5 * np.mean(
        np.sum(references.bernoulli_kl(logits, np.log(0.3 / 0.7)), axis=-1)
    )
    np.testing.assert_allclose(kl_loss(layer), analytic, rtol=1e-5)


def test_kl_defaults_to_analytic_and_round_trips():
    layer = BernoulliLatent(kl="relaxed")
    assert BernoulliLatent().kl == "analytic"
    config = layer.get_config()
    assert config["kl"] == "relaxed"
    assert BernoulliLatent.from_config(config).kl == "relaxed"


@pytest.mark.parametrize(
    "estimator",
    ["straight_through_gumbel", "straight_through", "gumbel_rao", "reinmax"],
)
def test_training_sample_and_gradient_are_the_estimators(estimator, rng):
    """The layer returns the op's {0, 1} sample and its gradient, at the
    same seed; the estimators' gradients differ, so a layer wired to the
    wrong one fails."""
    logits = rng.normal(size=(3, 5)).astype("float32")
    weights = rng.normal(size=(3, 5)).astype("float32")
    num_samples = 4 if estimator == "gumbel_rao" else None

    def layer_output(x):
        layer = BernoulliLatent(
            0.6, estimator=estimator, num_samples=num_samples, seed=6
        )
        return layer(x, training=True)

    def op_output(x):
        sample, _ = bernoulli_estimator(
            x, estimator, 0.6, num_samples, seed=keras.random.SeedGenerator(6)
        )
        return sample

    values = to_numpy(layer_output(logits))
    assert np.all((values == 0) | (values == 1))
    np.testing.assert_array_equal(values, to_numpy(op_output(logits)))
    np.testing.assert_allclose(
        gradient(lambda x: ops.multiply(layer_output(x), weights), logits),
        gradient(lambda x: ops.multiply(op_output(x), weights), logits),
        rtol=1e-6,
    )


def test_relaxed_kl_needs_an_estimator_with_a_relaxed_sample():
    with pytest.raises(ValueError, match="argument `kl`"):
        BernoulliLatent(estimator="reinmax", kl="relaxed")
