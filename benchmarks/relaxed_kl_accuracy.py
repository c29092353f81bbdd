"""Accuracy of `CategoricalLatent(kl="relaxed")` across temperatures.

The case of issue 6: 4 categorical variables of 10 categories, logits drawn
once from N(0, 3^2), a uniform prior. The KL between two Concrete
distributions of one temperature does not depend on that temperature, so
one reference serves every temperature: a float64 NumPy Monte Carlo
estimate at temperature 1, from log-space samples and the Concrete
log-density written here from Maddison et al. (2017), independently of
keras-latent.

For each temperature the script prints the layer's mean KL over `--draws`
draws (one call on a batch of copies of the logits) with its standard
error, and, for comparison, the estimate the layer gave before issue 6: the
probability-domain density `relaxed_one_hot_log_prob` at `exp(log_sample)`,
whose entries underflow float32 at low temperatures.

    KERAS_BACKEND=jax python benchmarks/relaxed_kl_accuracy.py
"""

import argparse
import json

import keras
import numpy as np
from scipy import special

import keras_latent

NUM_VARIABLES = 4
NUM_CATEGORIES = 10


def concrete_log_density(log_sample, logits, temperature):
    """log p(x) of a Concrete log-sample x, float64 (Maddison et al. 2017,
    appendix C): log((K-1)!) + (K-1) log t + sum_k (l_k - t x_k)
    - K logsumexp_k (l_k - t x_k)."""
    num_categories = log_sample.shape[-1]
    scores = logits - temperature * log_sample
    return (
        special.gammaln(num_categories)
        + (num_categories - 1) * np.log(temperature)
        + scores.sum(axis=-1)
        - num_categories * special.logsumexp(scores, axis=-1)
    )


def reference_kl(logits, draws, rng):
    """The summed KL over the variables at temperature 1, in float64, and
    its standard error, from `draws` log-samples."""
    gumbel = rng.gumbel(size=(draws, *logits.shape))
    log_sample = special.log_softmax(logits + gumbel, axis=-1)
    log_ratio = concrete_log_density(
        log_sample, logits, 1.0
    ) - concrete_log_density(log_sample, np.zeros_like(logits), 1.0)
    per_draw = log_ratio.sum(axis=-1)
    return per_draw.mean(), per_draw.std() / np.sqrt(draws)


def layer_kl(logits, temperature, draws, seed):
    """The layer's relaxed KL on a batch of `draws` copies of the logits."""
    layer = keras_latent.layers.CategoricalLatent(
        NUM_VARIABLES,
        NUM_CATEGORIES,
        temperature=temperature,
        kl="relaxed",
        seed=seed,
    )
    batch = np.broadcast_to(logits, (draws, *logits.shape)).astype("float32")
    layer(batch, training=True)
    return float(keras.ops.convert_to_numpy(layer.losses[0]))


def per_draw_estimates(logits, temperature, draws, seed):
    """Per-draw KL estimates from one log-sample: in log space (the op the
    layer uses) and in the probability domain (the pre-issue-6 layer)."""
    batch = np.broadcast_to(logits, (draws, *logits.shape)).astype("float32")
    log_sample = keras_latent.ops.relaxed_one_hot_log_sample(
        batch, temperature, seed=seed
    )
    prior = np.zeros(NUM_CATEGORIES, "float32")
    log_space = keras_latent.ops.relaxed_categorical_kl(
        log_sample, batch, prior, temperature
    )
    sample = keras.ops.exp(log_sample)
    probability_domain = keras_latent.ops.relaxed_one_hot_log_prob(
        sample, batch, temperature
    ) - keras_latent.ops.relaxed_one_hot_log_prob(sample, prior, temperature)
    return [
        keras.ops.convert_to_numpy(keras.ops.sum(kl, axis=-1)).astype("float64")
        for kl in (log_space, probability_domain)
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--temperatures",
        type=float,
        nargs="+",
        default=[1.0, 0.2, 0.1, 0.05],
        help="temperatures to measure (default: 1 0.2 0.1 0.05)",
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=20000,
        help="draws per temperature (default: 20000)",
    )
    parser.add_argument(
        "--reference-draws",
        type=int,
        default=400000,
        help="float64 draws of the reference (default: 400000)",
    )
    parser.add_argument("--seed", type=int, default=1, help="default: 1")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    logits = rng.normal(0.0, 3.0, (NUM_VARIABLES, NUM_CATEGORIES))
    reference, reference_error = reference_kl(logits, args.reference_draws, rng)
    print(
        f"reference (float64, temperature 1): {reference:.2f} "
        f"+- {reference_error:.2f} nats"
    )
    print("temperature  layer KL          old (probability domain)")
    rows = []
    for index, temperature in enumerate(args.temperatures):
        seed = args.seed + 1 + index
        layer = layer_kl(logits, temperature, args.draws, seed)
        log_space, old = per_draw_estimates(
            logits, temperature, args.draws, seed
        )
        error = log_space.std() / np.sqrt(args.draws)
        print(
            f"{temperature:<12g} {layer:7.2f} +- {error:4.2f}   "
            f"{old.mean():7.2f}"
        )
        rows.append(
            {
                "temperature": temperature,
                "layer_kl": layer,
                "standard_error": float(error),
                "probability_domain_kl": float(old.mean()),
            }
        )
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "reference_kl": float(reference),
                "reference_standard_error": float(reference_error),
                "draws": args.draws,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
