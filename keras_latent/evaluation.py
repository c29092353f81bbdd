"""Evaluation of latent-variable models: the importance-weighted bound."""

import math

import keras
import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.layers.bernoulli_latent import BernoulliLatent
from keras_latent.layers.categorical_latent import CategoricalLatent
from keras_latent.ops.bernoulli import sample_bernoulli
from keras_latent.ops.discrete import bernoulli_log_prob
from keras_latent.ops.discrete import one_hot_categorical_log_prob
from keras_latent.ops.gumbel import sample_one_hot


def _categorical_densities(layer, logits):
    """Posterior logits `(batch, N, K)`, prior logits, and the sampler."""
    logits = ops.reshape(
        ops.cast(logits, "float32"),
        (-1, layer.num_variables, layer.num_categories),
    )
    if layer.prior == "uniform":
        prior_logits = ops.zeros((layer.num_variables, layer.num_categories))
    elif layer.prior == "learned":
        prior_logits = ops.cast(layer.prior_logits, "float32")
    else:
        prior_logits = ops.convert_to_tensor(layer.fixed_prior_log_probs)
        # As the layer does: categories the prior excludes are never drawn.
        logits = ops.where(ops.isfinite(prior_logits), logits, -np.inf)

    def log_prob(sample, distribution_logits):
        return ops.sum(
            one_hot_categorical_log_prob(sample, distribution_logits), -1
        )

    return logits, prior_logits, sample_one_hot, log_prob


def _bernoulli_densities(layer, logits):
    def log_prob(sample, distribution_logits):
        return ops.sum(bernoulli_log_prob(sample, distribution_logits), -1)

    return (
        ops.cast(logits, "float32"),
        ops.convert_to_tensor(layer.prior_logit, "float32"),
        sample_bernoulli,
        log_prob,
    )


def _reconstruction_losses(reconstruction_loss, x, outputs):
    if isinstance(reconstruction_loss, keras.losses.Loss):
        # `call` is the unreduced loss: one value per example.
        losses = reconstruction_loss.call(x, outputs)
    else:
        losses = reconstruction_loss(x, outputs)
    losses = ops.cast(losses, "float32")
    if tuple(losses.shape) != (x.shape[0],):
        raise ValueError(
            "Invalid value received for argument `reconstruction_loss`. "
            "Expected a loss giving one negative log-likelihood per example, "
            f"of shape ({x.shape[0]},). Received: a loss of shape "
            f"{tuple(losses.shape)}"
        )
    return losses


def _inference_call(function, inputs):
    if isinstance(function, keras.layers.Layer):
        return function(inputs, training=False)
    return function(inputs)


def importance_weighted_bound(
    x,
    encoder,
    latent_layer,
    decoder,
    reconstruction_loss,
    num_samples=1000,
    batch_size=10000,
    seed=None,
):
    """The importance-weighted lower bound on `log p(x)` of each example.

    For each example `x`, with `num_samples = m` exact discrete samples
    `z_1, ..., z_m` drawn from the posterior `q(z | x)` that `encoder` and
    `latent_layer` define (Burda et al. 2016):

    `L_m(x) = log (1/m) sum_i p(x | z_i) p(z_i) / q(z_i | x)`,

    computed in log space, `logsumexp_i(log p(x | z_i) + log p(z_i) -
    log q(z_i | x)) - log m`. `L_1` is the single-sample ELBO; `E[L_m]`
    grows with `m` and tends to `log p(x)`. The densities are those of the
    discrete model (categorical or Bernoulli posterior and prior), whatever
    relaxation trained it: `-mean(L_m)` over a test set, in nats, is the
    figure that Jang et al. (2017) and Paulus et al. (2021) report with
    `m = 1000`, an upper bound on the test negative log-likelihood that is
    tighter than the negative ELBO.

    The examples and their samples are decoded in batches of at most
    `batch_size` (example, sample) pairs (all of an example's samples in
    one batch when `num_samples <= batch_size`), so memory does not grow
    with `num_samples`.

    Args:
        x: the examples, an array or tensor with the batch as first axis.
        encoder: a `keras.Model`, layer (called with `training=False`) or
            function mapping `x` to the input of `latent_layer`: the
            posterior logits of each example, of shape
            `(batch, num_variables * num_categories)` or
            `(batch, num_variables, num_categories)` for a
            `CategoricalLatent`, `(batch, units)` for a `BernoulliLatent`.
        latent_layer: the `CategoricalLatent` or `BernoulliLatent` of the
            model; its prior (uniform, learned or fixed, or
            `prior_probability`) is the prior `p(z)`.
        decoder: a `keras.Model`, layer or function mapping latent samples,
            shaped as the latent layer's outputs, to the `y_pred` of
            `reconstruction_loss`.
        reconstruction_loss: the negative log-likelihood `-log p(x | z)` of
            each example in nats, summed over its features: a
            `keras.losses.Loss` such as
            `keras_latent.losses.SummedBinaryCrossentropy(from_logits=True)`
            (its reduction is not applied) or a function
            `(x, decoder_outputs)` returning one value per example. A loss
            known only up to a constant (a squared error) shifts the bound
            by that constant.
        num_samples: `m`, the number of samples per example, >= 1.
        batch_size: the most (example, sample) pairs decoded at once.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A float64 NumPy array of shape `(num_examples,)`: `L_m` in nats.

    Example:

    >>> encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)])
    >>> latent = keras_latent.layers.CategoricalLatent(2, 4)
    >>> decoder = keras.Sequential(
    ...     [keras.Input((2, 4)), keras.layers.Flatten(), keras.layers.Dense(6)]
    ... )
    >>> images = (np.random.default_rng(0).random((3, 6)) > 0.5)
    >>> bound = keras_latent.evaluation.importance_weighted_bound(
    ...     images.astype("float32"), encoder, latent, decoder,
    ...     keras_latent.losses.SummedBinaryCrossentropy(from_logits=True),
    ...     num_samples=100, seed=0)
    >>> bound.shape
    (3,)

    References:
        - [Burda et al., 2016](https://arxiv.org/abs/1509.00519)
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
    """
    if isinstance(latent_layer, CategoricalLatent):
        densities = _categorical_densities
    elif isinstance(latent_layer, BernoulliLatent):
        densities = _bernoulli_densities
    else:
        raise ValueError(
            "Invalid value received for argument `latent_layer`. Expected a "
            "`keras_latent.layers.CategoricalLatent` or `BernoulliLatent`. "
            f"Received: latent_layer={latent_layer!r}"
        )
    num_samples = validation.check_integer("num_samples", num_samples, 1)
    batch_size = validation.check_integer("batch_size", batch_size, 1)
    if not isinstance(seed, keras.random.SeedGenerator):
        seed = keras.random.SeedGenerator(validation.check_seed(seed))
    x = ops.convert_to_tensor(x)
    num_examples = int(x.shape[0])
    examples_per_batch = max(1, batch_size // num_samples)
    samples_per_batch = min(num_samples, batch_size)
    bounds = []
    for start in range(0, num_examples, examples_per_batch):
        examples = x[start : start + examples_per_batch]
        logits, prior_logits, sample, log_prob = densities(
            latent_layer, _inference_call(encoder, examples)
        )
        count = int(examples.shape[0])
        log_weights = []
        for first in range(0, num_samples, samples_per_batch):
            repeats = min(samples_per_batch, num_samples - first)
            # Sample-major: row i * count + j is sample i of example j.
            tiled_logits = ops.tile(
                logits, (repeats, *[1] * (len(logits.shape) - 1))
            )
            tiled_x = ops.tile(examples, (repeats, *[1] * (len(x.shape) - 1)))
            z = sample(tiled_logits, seed=seed)
            outputs = _inference_call(decoder, z)
            log_weight = (
                -_reconstruction_losses(reconstruction_loss, tiled_x, outputs)
                + log_prob(z, prior_logits)
                - log_prob(z, tiled_logits)
            )
            log_weights.append(
                ops.convert_to_numpy(ops.reshape(log_weight, (repeats, count)))
            )
        log_weights = np.concatenate(log_weights).astype(np.float64)
        bounds.append(
            np.logaddexp.reduce(log_weights, axis=0) - math.log(num_samples)
        )
    if not bounds:
        return np.zeros((0,), np.float64)
    return np.concatenate(bounds)
