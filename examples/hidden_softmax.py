"""
Title: Softmax as a hidden activation
Author: keras-latent contributors
Date created: 2026/11/26
Last modified: 2026/11/30
Description: One MLP trained with ReLU, sigmoid, softmax, grouped softmax
and sparsemax hidden layers, and what each does to the hidden
representation.

Softmax turns a classifier's last scores into probabilities, yet hidden
layers use ReLU, tanh or sigmoid. The usual reasons: softmax units are
linearly dependent (they sum to 1), they compete (raising one lowers the
others), and the sum-to-one constraint costs expressive power. This
tutorial trains the same classifier with several hidden activations and
measures what those reasons are about: the correlation between hidden
units, the effective rank of the hidden representation, its sparsity, and
the accuracy.

`keras_latent.layers.HiddenSoftmax` is a `Dense` layer whose activation
normalizes `groups` equal groups of units with softmax, sparsemax or
1.5-entmax. The full study, which adds batch normalization and sparsity
penalties, several seeds and a verdict per claim, is
`benchmarks/hidden_softmax_study.py`; it builds its models with the
functions below.

    python examples/hidden_softmax.py --epochs 10
"""

import argparse
import math
import sys

import arguments
import image_datasets
import keras
import numpy as np

import keras_latent

"""
## The variants

Every variant is the same MLP: two hidden layers of 256 units, then a
softmax over the classes. Only the hidden activation changes.
"""

HIDDEN_UNITS = 256
NUM_HIDDEN_LAYERS = 2
GROUPS = 16
LEARNING_RATE = 1e-3

VARIANTS = {
    "relu": "Dense(256, relu)",
    "tanh": "Dense(256, tanh)",
    "sigmoid": "Dense(256, sigmoid)",
    "softmax": "HiddenSoftmax(256, groups=1): one softmax over the layer",
    "grouped_softmax": (
        f"HiddenSoftmax(256, groups={GROUPS}): a softmax within each of "
        f"{GROUPS} groups of {HIDDEN_UNITS // GROUPS} units"
    ),
    "sparsemax": 'HiddenSoftmax(256, groups=1, normalizer="sparsemax")',
    "entmax15": 'HiddenSoftmax(256, groups=1, normalizer="entmax15")',
}


def hidden_layer(variant, inputs, index):
    """One hidden layer of `variant`; its output is the layer `hidden_{i}`."""
    name = f"hidden_{index}"
    if variant in ("relu", "tanh", "sigmoid"):
        return keras.layers.Dense(HIDDEN_UNITS, variant, name=name)(inputs)
    if variant in ("softmax", "grouped_softmax", "sparsemax", "entmax15"):
        groups = GROUPS if variant == "grouped_softmax" else 1
        normalizer = "softmax" if "softmax" in variant else variant
        return keras_latent.layers.HiddenSoftmax(
            HIDDEN_UNITS, groups=groups, normalizer=normalizer, name=name
        )(inputs)
    raise ValueError(
        "Invalid value received for argument `variant`. Expected one of "
        f"{tuple(VARIANTS)}. Received: variant={variant!r}"
    )


def build_model(variant, num_inputs, num_classes, hidden_layer=hidden_layer):
    """The MLP with `variant` in both hidden layers, each made by
    `hidden_layer(variant, inputs, index)`."""
    inputs = keras.Input((num_inputs,), name="images")
    hidden = inputs
    for index in range(1, NUM_HIDDEN_LAYERS + 1):
        hidden = hidden_layer(variant, hidden, index)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", name="classes"
    )(hidden)
    return keras.Model(inputs, outputs, name=variant)


def train_variant(
    variant,
    data,
    epochs,
    batch_size,
    seed,
    callbacks=(),
    hidden_layer=hidden_layer,
):
    """Trains the MLP with `variant` (made by `hidden_layer`) from `seed`.

    The seed fixes the initial weights and the order of the batches. `fit`
    evaluates the test set after every epoch (`val_accuracy`) but only
    watches: no early stopping, no model selection.

    Returns:
        The trained model and its history, the figures of each epoch.
    """
    (x_train, y_train), (x_test, y_test) = data
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    num_classes = int(np.max(y_train)) + 1
    model = build_model(variant, x_train.shape[-1], num_classes, hidden_layer)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        # The loss includes any activity regularizer; the cross-entropy
        # alone is what the variants can be compared on.
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy"),
        ],
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_test, y_test),
        callbacks=list(callbacks),
        verbose=0,
    )
    return model, history.history


"""
## Measuring a hidden representation

Each measure takes the activations of the last hidden layer on the test
set: one row per example, one column per unit.

- Mean absolute correlation: the Pearson correlation of every pair of
  units across the examples, its absolute value averaged over the pairs.
  A unit that never changes (a dead ReLU) correlates with nothing and is
  left out.
- Effective rank (Roy and Vetterli 2007): `exp(entropy(s / sum(s)))` of
  the singular values `s` of the centred activations, the number of
  directions the layer uses. Centring keeps the constant sum of a softmax
  from counting as a direction.
- Near-zero fraction: the share of activations with |a| < 1e-3.

A layer with a NaN or infinite activation (a diverged run) is not
measured: each measure is NaN.
"""

NEAR_ZERO_THRESHOLD = 1e-3


def last_hidden_activations(model, images):
    hidden = keras.Model(
        model.input, model.get_layer(f"hidden_{NUM_HIDDEN_LAYERS}").output
    )
    # A direct call rather than `predict`, which would trace a new function
    # for every model.
    return keras.ops.convert_to_numpy(hidden(images, training=False))


def mean_absolute_correlation(activations):
    """Returns `(mean |correlation|, number of constant units)`."""
    activations = np.asarray(activations, dtype="float64")
    spread = np.ptp(activations, axis=0)
    num_constant = int(np.sum(spread == 0))
    varying = spread > 0
    if not np.all(np.isfinite(activations)) or np.sum(varying) < 2:
        return math.nan, num_constant
    correlation = np.corrcoef(activations[:, varying], rowvar=False)
    upper = np.triu_indices_from(correlation, k=1)
    return float(np.mean(np.abs(correlation[upper]))), num_constant


def effective_rank(activations):
    """Roy and Vetterli's effective rank; NaN when no unit varies."""
    activations = np.asarray(activations, dtype="float64")
    if not np.all(np.isfinite(activations)):
        return math.nan
    centred = activations - np.mean(activations, axis=0)
    singular_values = np.linalg.svd(centred, compute_uv=False)
    total = np.sum(singular_values)
    if total <= 0:
        return math.nan
    weights = singular_values[singular_values > 0] / total
    return float(np.exp(-np.sum(weights * np.log(weights))))


def near_zero_fraction(activations, threshold=NEAR_ZERO_THRESHOLD):
    activations = np.asarray(activations)
    if not np.all(np.isfinite(activations)):
        return math.nan
    return float(np.mean(np.abs(activations) < threshold))


"""
## Running the comparison
"""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Train one MLP with several hidden activations and "
        "measure its hidden representation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        default="digits",
        choices=image_datasets.DATASET_NAMES,
        help="the images to classify",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["relu", "sigmoid", "softmax", "grouped_softmax", "sparsemax"],
        choices=list(VARIANTS),
        metavar="VARIANT",
        help=f"hidden activations among {', '.join(VARIANTS)}",
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs")
    parser.add_argument("--batch-size", type=int, default=64, help="batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of a run")
    args = parser.parse_args(argv)
    arguments.require_at_least_one(parser, args, ("epochs", "batch_size"))
    try:
        data = image_datasets.load_images(args.dataset, binarize=False)
    except image_datasets.DatasetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    x_test = data[1][0]

    print(
        f"{'variant':<16} {'test acc.':>9} {'train CE':>8} "
        f"{'mean |corr|':>11} {'eff. rank':>9} {'near zero':>9}"
    )
    for variant in args.variants:
        model, history = train_variant(
            variant, data, args.epochs, args.batch_size, args.seed
        )
        activations = last_hidden_activations(model, x_test)
        correlation, _ = mean_absolute_correlation(activations)
        print(
            f"{variant:<16} {history['val_accuracy'][-1]:>9.3f} "
            f"{history['cross_entropy'][-1]:>8.3f} {correlation:>11.3f} "
            f"{effective_rank(activations):>9.1f} "
            f"{near_zero_fraction(activations):>9.3f}"
        )
    return 0


"""
## What to look for

In the README's Fashion-MNIST run, a softmax over the whole layer has
correlated units and a low effective rank: each example lights up a few
units, and the layer uses few directions. Split into groups of 16, each a
small multinomial variable, softmax trains like ReLU. Sparsemax's zeros are
exact; its units correlate little, yet its rank is as low as softmax's.
"""

if __name__ == "__main__":
    sys.exit(main())
