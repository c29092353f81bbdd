"""The importance-weighted bound on models whose likelihood is enumerable.

A tiny fixed model (4 binary pixels; 2 three-way variables or 3 binary
units) has few enough latent configurations that log p(x), the ELBO and
the expected two-sample bound are exact sums, computed here in float64.
Each Monte Carlo mean is compared within 5 standard errors computed from
the exact variances (a false-failure rate below 1e-6 per comparison).
"""

import itertools

import keras
import numpy as np
import pytest

import keras_latent
from keras_latent import evaluation
from tests import references

NUM_PIXELS = 4
IMAGES = np.array([[1, 0, 1, 1], [0, 0, 0, 1], [1, 1, 0, 0]], dtype="float32")
REPLICAS = 200


def set_dense_weights(model, generator, scale):
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights(
                [
                    generator.normal(scale=scale, size=kernel.shape),
                    generator.normal(scale=scale, size=bias.shape),
                ]
            )


def fixed_model(latent_shape):
    """Encoder and decoder with fixed random weights, for `latent_shape`."""
    generator = np.random.default_rng(7)
    encoder = keras.Sequential(
        [
            keras.Input((NUM_PIXELS,)),
            keras.layers.Dense(int(np.prod(latent_shape))),
        ]
    )
    decoder = keras.Sequential(
        [
            keras.Input(latent_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(NUM_PIXELS),
        ]
    )
    set_dense_weights(encoder, generator, 1.0)
    set_dense_weights(decoder, generator, 2.0)
    return encoder, decoder


def dense_numpy(model, inputs):
    (dense,) = [
        layer for layer in model.layers if isinstance(layer, keras.layers.Dense)
    ]
    kernel, bias = (w.astype(np.float64) for w in dense.get_weights())
    flat = inputs.reshape(len(inputs), -1).astype(np.float64)
    return flat @ kernel + bias


def bernoulli_log_likelihood(images, pixel_logits):
    return -np.sum(
        images * np.logaddexp(0, -pixel_logits)
        + (1 - images) * np.logaddexp(0, pixel_logits),
        axis=-1,
    )


def enumerated_log_weights(encoder, decoder, latent_shape, prior_log_probs):
    """log q(z | x) and log w(z, x) for every configuration z, float64.

    Returns two arrays of shape `(num_images, num_configurations)`.
    """
    num_variables, num_categories = latent_shape
    logits = dense_numpy(encoder, IMAGES).reshape(-1, *latent_shape)
    # The posterior never draws a category that the prior excludes.
    masked = np.where(np.isfinite(prior_log_probs), logits, -np.inf)
    log_q_table = references.log_softmax(masked)
    log_q, log_w = [], []
    for categories in itertools.product(
        range(num_categories), repeat=num_variables
    ):
        if not np.all(
            np.isfinite(prior_log_probs[range(num_variables), categories])
        ):
            continue
        code = np.eye(num_categories)[list(categories)][None]
        pixel_logits = dense_numpy(decoder, code)
        log_prior = np.sum(prior_log_probs[range(num_variables), categories])
        log_posterior = np.sum(
            log_q_table[:, range(num_variables), categories], -1
        )
        log_q.append(log_posterior)
        log_w.append(
            bernoulli_log_likelihood(IMAGES, pixel_logits)
            + log_prior
            - log_posterior
        )
    return np.stack(log_q, 1), np.stack(log_w, 1)


def exact_figures(log_q, log_w):
    """log p(x), the ELBO, E[L_2], and the variances of L_1 and of w / p."""
    q = np.exp(log_q)
    log_p = np.logaddexp.reduce(log_q + log_w, axis=1)
    elbo = np.sum(q * log_w, 1)
    variance_1 = np.sum(q * (log_w - elbo[:, None]) ** 2, 1)
    pair_q = q[:, :, None] * q[:, None, :]
    pair_bound = np.logaddexp(log_w[:, :, None], log_w[:, None, :]) - np.log(2)
    expected_2 = np.sum(pair_q * pair_bound, (1, 2))
    variance_2 = np.sum(
        pair_q * (pair_bound - expected_2[:, None, None]) ** 2, (1, 2)
    )
    ratio = np.exp(log_w - log_p[:, None])
    ratio_variance = np.sum(q * (ratio - 1) ** 2, 1)
    return log_p, elbo, variance_1, expected_2, variance_2, ratio_variance


def replicated_bound(encoder, latent, decoder, num_samples, **kwargs):
    """The bound of each image, averaged over its `REPLICAS` copies."""
    images = np.tile(IMAGES, (REPLICAS, 1))
    bound = evaluation.importance_weighted_bound(
        images,
        encoder,
        latent,
        decoder,
        keras_latent.losses.SummedBinaryCrossentropy(from_logits=True),
        num_samples=num_samples,
        seed=3,
        **kwargs,
    )
    assert bound.shape == (len(images),)
    return bound.reshape(REPLICAS, len(IMAGES)).mean(0)


# The prior argument of the layer and its log-probabilities, per variable.
CATEGORICAL_CASES = {
    "uniform": ("uniform", np.full((2, 3), -np.log(3.0))),
    "fixed_with_an_excluded_category": (
        [0.5, 0.0, 0.5],
        np.array([[np.log(0.5), -np.inf, np.log(0.5)]] * 2),
    ),
    # The learned prior's logits are set to these values.
    "learned": ("learned", references.log_softmax([[1.0, -0.5, 0.0]] * 2)),
}


@pytest.fixture(scope="module", params=sorted(CATEGORICAL_CASES))
def categorical_case(request):
    prior, prior_log_probs = CATEGORICAL_CASES[request.param]
    encoder, decoder = fixed_model((2, 3))
    latent = keras_latent.layers.CategoricalLatent(2, 3, prior=prior)
    latent.build((None, 6))
    if prior == "learned":
        latent.prior_logits.assign([[1.0, -0.5, 0.0]] * 2)
    log_q, log_w = enumerated_log_weights(
        encoder, decoder, (2, 3), prior_log_probs
    )
    return encoder, latent, decoder, exact_figures(log_q, log_w)


def test_single_sample_bound_is_the_elbo_in_expectation(categorical_case):
    encoder, latent, decoder, exact = categorical_case
    log_p, elbo, variance_1, *_ = exact
    result = replicated_bound(encoder, latent, decoder, 1)
    standard_error = np.sqrt(variance_1 / REPLICAS)
    tolerance = 5 * standard_error + 1e-4
    assert np.all(np.abs(result - elbo) < tolerance)
    # The test tells the ELBO from log p(x): the gaps exceed the tolerance.
    assert np.all(log_p - elbo > tolerance)


def test_two_sample_bound_matches_its_enumerated_expectation(
    categorical_case,
):
    encoder, latent, decoder, exact = categorical_case
    log_p, elbo, _, expected_2, variance_2, _ = exact
    assert np.all(elbo < expected_2) and np.all(expected_2 < log_p)
    result = replicated_bound(encoder, latent, decoder, 2)
    standard_error = np.sqrt(variance_2 / REPLICAS)
    assert np.all(np.abs(result - expected_2) < 5 * standard_error + 1e-4)


def test_bound_converges_to_log_likelihood_in_batches_of_samples(
    categorical_case,
):
    # 1000 samples decoded 500 at a time: the log-sum-exp spans batches.
    encoder, latent, decoder, exact = categorical_case
    log_p, elbo, *_, ratio_variance = exact
    images, copies = IMAGES, 10
    bound = evaluation.importance_weighted_bound(
        np.tile(images, (copies, 1)),
        encoder,
        latent,
        decoder,
        keras_latent.losses.SummedBinaryCrossentropy(from_logits=True),
        num_samples=1000,
        batch_size=500,
        seed=5,
    )
    result = bound.reshape(copies, len(images)).mean(0)
    # Delta method: L_m has bias -Var(w / p) / 2m and variance Var / m.
    bias = ratio_variance / 2000
    standard_error = np.sqrt(ratio_variance / 1000 / copies)
    tolerance = bias + 5 * standard_error + 1e-4
    assert np.all(np.abs(result - log_p) < tolerance)
    # The test tells the bound from the ELBO: the gaps exceed the tolerance.
    assert np.all(log_p - elbo > tolerance)


def test_bernoulli_latent_bound_against_enumeration():
    encoder, decoder = fixed_model((3,))
    latent = keras_latent.layers.BernoulliLatent(prior_probability=0.3)
    logits = dense_numpy(encoder, IMAGES)
    log_q, log_w = [], []
    for bits in itertools.product([0.0, 1.0], repeat=3):
        bits = np.array(bits)
        log_posterior = np.sum(
            -np.logaddexp(0, -(2 * bits - 1) * logits), axis=-1
        )
        log_prior = np.sum(np.log(np.where(bits == 1, 0.3, 0.7)))
        pixel_logits = dense_numpy(decoder, bits[None])
        log_q.append(log_posterior)
        log_w.append(
            bernoulli_log_likelihood(IMAGES, pixel_logits)
            + log_prior
            - log_posterior
        )
    log_p, elbo, variance_1, *_, ratio_variance = exact_figures(
        np.stack(log_q, 1), np.stack(log_w, 1)
    )
    single = replicated_bound(encoder, latent, decoder, 1)
    assert np.all(
        np.abs(single - elbo) < 5 * np.sqrt(variance_1 / REPLICAS) + 1e-4
    )
    many = replicated_bound(encoder, latent, decoder, 200)
    bias = ratio_variance / 400
    standard_error = np.sqrt(ratio_variance / 200 / REPLICAS)
    assert np.all(np.abs(many - log_p) < bias + 5 * standard_error + 1e-4)


def test_bound_takes_a_function_as_loss_and_an_empty_batch():
    encoder, decoder = fixed_model((2, 3))
    latent = keras_latent.layers.CategoricalLatent(2, 3)

    def loss(x, pixel_logits):
        return keras_latent.losses.summed_binary_crossentropy(
            x, pixel_logits, from_logits=True
        )

    empty = evaluation.importance_weighted_bound(
        IMAGES[:0], encoder, latent, decoder, loss, num_samples=10
    )
    assert empty.shape == (0,)
    bound = evaluation.importance_weighted_bound(
        IMAGES, encoder, latent, decoder, loss, num_samples=10, seed=0
    )
    assert bound.shape == (3,) and np.all(np.isfinite(bound))
    assert np.all(bound < 0)


def test_bound_refuses_a_layer_without_prior_and_a_loss_per_pixel():
    encoder, decoder = fixed_model((2, 3))
    loss = keras_latent.losses.SummedBinaryCrossentropy(from_logits=True)
    with pytest.raises(ValueError, match="`latent_layer`"):
        evaluation.importance_weighted_bound(
            IMAGES, encoder, keras_latent.layers.GumbelSoftmax(), decoder, loss
        )
    latent = keras_latent.layers.CategoricalLatent(2, 3)
    with pytest.raises(ValueError, match="`reconstruction_loss`"):
        evaluation.importance_weighted_bound(
            IMAGES,
            encoder,
            latent,
            decoder,
            lambda x, logits: keras.ops.abs(x - logits),
        )
    with pytest.raises(ValueError, match="`num_samples`"):
        evaluation.importance_weighted_bound(
            IMAGES, encoder, latent, decoder, loss, num_samples=0
        )
