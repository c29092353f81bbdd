"""
Title: Semi-supervised classification with a Gumbel-softmax class
Author: keras-latent contributors
Date created: 2026/11/30
Last modified: 2026/11/30
Description: The semi-supervised model M2 of Kingma et al. (2014) with the
class as a Gumbel-softmax latent variable (Jang et al. 2017, section 4.3),
trained with plain `model.fit` on any Keras backend from a few labels.

M2 generates an image `x` from a class `y` and a Gaussian style `z`, with a
uniform `p(y)` and `p(z) = N(0, I)`; its inference network is a classifier
`q(y | x)` and an encoder `q(z | x, y)`. A labelled image has the bound
`-L(x, y) = E_q(z|x,y)[log p(x | y, z)] + log p(y) - KL(q(z | x, y) || p(z))`;
an unlabelled one `-U(x) = E_q(y|x)[-L(x, y)] + H(q(y | x))`, where Jang et
al. draw one Gumbel-softmax sample of `y` instead of Kingma et al.'s sum
over the classes. The classifier also learns from the labels: the loss is
`mean(-ELBO) + classification_weight * mean_labelled(cross-entropy)`, in
nats per image.

    KERAS_BACKEND=jax python examples/semi_supervised.py \\
        --dataset fashion_mnist --epochs 10 --output-dir outputs/m2

It writes `metrics.json`, `class_samples.png` and `model.keras`.
`--distribute` trains data-parallel on every device and `--dtype-policy`
in mixed precision, as in `examples/categorical_vae.py` (see
`examples/data_parallel.py` and `examples/mixed_precision.py`).
`benchmarks/semi_supervised_seeds.py` runs it over seeds and times sampling
the class against summing over it.
"""

import argparse
import json
import math
import os
import sys

import arguments
import data_parallel
import image_datasets
import keras
import mixed_precision
import numpy as np
import output_files
from keras import ops

import keras_latent

LABELLED_SHARE = 0.05  # of the training rows, labelled images repeated.
OUTPUT_FILES = ("metrics.json", "class_samples.png", "model.keras")

"""
## Three small layers

A label is a one-hot row, all zeros for an unlabelled image, so that one
batch mixes both. `ClassRows` pairs each image with its label, or with the
sampled class where it has none; the marginalized model instead repeats
each image beside every class. `GaussianSample` draws `z`, in inference
too, so that `evaluate` stays a valid bound; its noise comes from
`keras_latent.ops.normal_noise`, which, unlike `keras.random.normal`,
differs between data-parallel replicas. `NegativeELBO` adds the mean
-ELBO, in nats per image, to the model's losses; the marginalized one
weighs the `num_classes` rows of an unlabelled image by `q(y | x)`.
"""


def is_labelled(labels):
    return ops.sum(labels, axis=-1) > 0


class ClassOption(keras.layers.Layer):
    """A layer for the sampled class, or, with `marginalize`, for the sum."""

    def __init__(self, marginalize=False, **kwargs):
        super().__init__(**kwargs)
        self.marginalize = marginalize

    def get_config(self):
        return {**super().get_config(), "marginalize": self.marginalize}


@keras.saving.register_keras_serializable(package="semi_supervised")
class ClassRows(ClassOption):
    def call(self, images, labels, sampled_classes=None):
        if not self.marginalize:
            labelled = ops.expand_dims(is_labelled(labels), -1)
            return images, ops.where(labelled, labels, sampled_classes)
        num_classes = ops.shape(labels)[-1]
        classes = ops.tile(ops.eye(num_classes), (ops.shape(images)[0], 1))
        return ops.repeat(images, num_classes, axis=0), classes


@keras.saving.register_keras_serializable(package="semi_supervised")
class GaussianSample(keras.layers.Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mean, log_variance):
        noise = keras_latent.ops.normal_noise(
            ops.shape(mean), seed=self.seed_generator
        )
        return mean + ops.exp(0.5 * log_variance) * ops.cast(noise, mean.dtype)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="semi_supervised")
class NegativeELBO(ClassOption):
    def call(self, rows, labels, class_logits, pixel_logits, z_mean, z_log_var):
        # -log p(x | y, z) + KL(q(z | x, y) || N(0, I)), one value per row.
        given_class = keras_latent.losses.summed_binary_crossentropy(
            rows, pixel_logits, from_logits=True
        ) + 0.5 * ops.sum(
            ops.exp(z_log_var) + ops.square(z_mean) - 1 - z_log_var, axis=-1
        )
        num_classes = ops.shape(labels)[-1]
        labelled = is_labelled(labels)
        if self.marginalize:
            weights = ops.where(
                ops.expand_dims(labelled, -1), labels, ops.softmax(class_logits)
            )
            given_class = ops.reshape(given_class, (-1, num_classes))
            given_class = ops.sum(weights * given_class, axis=-1)
        # -log p(y) = log K for a label; KL(q(y | x) || p(y)) otherwise.
        class_term = ops.where(
            labelled,
            ops.log(ops.cast(num_classes, "float32")),
            keras_latent.ops.categorical_kl(class_logits),
        )
        negative_elbo = given_class + class_term
        count = ops.maximum(ops.cast(ops.shape(negative_elbo)[0], "float32"), 1)
        self.add_loss(ops.sum(negative_elbo) / count)
        return negative_elbo

    def compute_output_shape(self, rows_shape, labels_shape, *other_shapes):
        return labels_shape[:1]


@keras.saving.register_keras_serializable(package="semi_supervised")
def labelled_cross_entropy(labels, class_logits):
    """0 for an all-zero row, in value and gradient (unlike, on TensorFlow,
    `CategoricalCrossentropy`, whose fused kernel assumes rows sum to 1)."""
    return -ops.sum(labels * ops.log_softmax(class_logits), axis=-1)


"""
## The model

Kingma et al.'s perceptrons: one hidden layer of 500 softplus units each
for the classifier, the encoder and the decoder, and a 50-dimensional `z`.
The three parts are sub-models, which the sampled and the marginalized
models share. Under a mixed-precision policy the layers that give logits,
and the -ELBO, compute in float32.
"""


def build_parts(num_pixels, num_classes, hidden_units, latent_dim):
    def hidden(inputs):
        return keras.layers.Dense(hidden_units, activation="softplus")(inputs)

    images = keras.Input((num_pixels,), name="images")
    classes = keras.Input((num_classes,), name="classes")
    class_logits = keras.layers.Dense(
        num_classes, dtype=mixed_precision.OUTPUT_DTYPE
    )(hidden(images))
    features = hidden(keras.layers.Concatenate()([images, classes]))
    z_moments = [keras.layers.Dense(latent_dim)(features) for _ in "ms"]
    z = keras.Input((latent_dim,), name="z")
    pixel_logits = keras.layers.Dense(
        num_pixels, dtype=mixed_precision.OUTPUT_DTYPE
    )(hidden(keras.layers.Concatenate()([z, classes])))
    return (
        keras.Model(images, class_logits, name="classifier"),
        keras.Model([images, classes], z_moments, name="encoder"),
        keras.Model([z, classes], pixel_logits, name="decoder"),
    )


def build_model(
    parts, classification_weight, temperature, hard, seed, marginalize=False
):
    """M2 over `parts`, the class sampled or summed out; inputs `images` and
    `labels`, outputs `class_logits` and `negative_elbo` per image."""
    classifier, encoder, decoder = parts
    images = keras.Input(classifier.input_shape[1:], name="images")
    labels = keras.Input(classifier.output_shape[1:], name="labels")
    class_logits = classifier(images)
    sampled = None
    if not marginalize:
        sampled = keras_latent.layers.GumbelSoftmax(
            temperature=temperature, hard=hard, eval_mode="sample", seed=seed
        )(class_logits)
    rows, classes = ClassRows(marginalize)(images, labels, sampled)
    z_mean, z_log_var = encoder([rows, classes])
    z = GaussianSample(seed)(z_mean, z_log_var)
    negative_elbo = NegativeELBO(marginalize, dtype="float32")(
        rows, labels, class_logits, decoder([z, classes]), z_mean, z_log_var
    )
    model = keras.Model(
        {"images": images, "labels": labels},
        {"class_logits": class_logits, "negative_elbo": negative_elbo},
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={"class_logits": labelled_cross_entropy},
        loss_weights={"class_logits": classification_weight},
    )
    return model


"""
## Labels for a few images

`labels_per_class` images of each class keep their label, repeated to make
about 5% of the rows so that most batches hold some. Their cross-entropy is
weighted by `classification_weight * rows / labelled_rows`: over a batch,
in expectation, `classification_weight` times the labelled images' mean
cross-entropy. Kingma et al.'s `alpha = 0.1 * N` would make that weight
0.1, against about 125 nats of -ELBO per Fashion-MNIST image: the
unlabelled images then pull `q(y | x)` towards a partition of their own and
the test accuracy falls as training goes on (0.54 after 1 epoch, 0.33
after 20). The default, 10, holds the classifier to the labels.
"""


def training_rows(x_train, y_train, args, seed):
    labels_per_class = args.labels_per_class
    num_classes = image_datasets.NUM_CLASSES
    generator = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y_train == c) for c in range(num_classes)]
    labelled = [generator.permutation(i)[:labels_per_class] for i in by_class]
    labelled = np.concatenate(labelled)
    unlabelled = np.setdiff1d(np.arange(len(x_train)), labelled)
    wanted = LABELLED_SHARE * len(unlabelled) / (1 - LABELLED_SHARE)
    labelled_rows = np.tile(labelled, max(1, round(wanted / len(labelled))))
    images = np.concatenate([x_train[unlabelled], x_train[labelled_rows]])
    labels = np.zeros((len(images), num_classes), "float32")
    labels[len(unlabelled) :] = np.eye(num_classes)[y_train[labelled_rows]]
    weight = args.classification_weight * len(images) / len(labelled_rows)
    return images, labels, weight


"""
## Training and evaluating

The temperature falls from 1.0 to 0.5 by Jang et al.'s exponential
schedule, reaching its floor halfway through the run, inside the compiled
step. The test accuracy is recorded after every epoch, to show whether it
holds. The test -ELBO is M2's exact sum over the classes (one `z` per
class), by the marginalized model over the trained parts.
"""


def unlabelled(images, num_classes=image_datasets.NUM_CLASSES):
    labels = np.zeros((len(images), num_classes), "float32")
    return {"images": images, "labels": labels}


def accuracy(class_logits, labels):
    """The share of rows whose largest logit is the label's; NaN if a logit
    is NaN or infinite (a diverged model), where argmax means nothing."""
    if not np.all(np.isfinite(class_logits)):
        return math.nan
    return float(np.mean(class_logits.argmax(-1) == labels))


def call_in_chunks(model, images, output_name, chunk_size=1000):
    """One output on unlabelled `images`, by plain calls (nothing compiled)."""
    chunks = []
    for start in range(0, len(images), chunk_size):
        batch = unlabelled(images[start : start + chunk_size])
        outputs = model(batch, training=False)[output_name]
        chunks.append(keras.ops.convert_to_numpy(outputs))
    return np.concatenate(chunks)


def train_and_evaluate(args, data, seed, engine=None):
    """Trains M2 on `data` under `engine` (by default one device); returns
    the model and its figures."""
    engine = engine or data_parallel.Engine("one device")
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    images, labels, weight = training_rows(x_train, y_train, args, seed)
    steps = max(1, args.epochs * math.ceil(len(images) / args.batch_size) // 2)
    schedule = keras_latent.schedules.ExponentialDecay.reaching_minimum_at(
        steps, 1.0, 0.5, update_every=max(1, steps // 20)
    )
    # This process's rows: every `process_count`-th one, a whole number
    # of rows per replica.
    images, batch_size = engine.local_data(images, args.batch_size)
    labels, _ = engine.local_data(labels, args.batch_size)
    per_epoch = []

    def test_accuracy():
        return accuracy(call_in_chunks(model, x_test, "class_logits"), y_test)

    with engine.scope():
        parts = build_parts(
            x_train.shape[-1],
            len(labels[0]),
            args.hidden_units,
            args.latent_dim,
        )
        model = build_model(parts, weight, schedule, args.hard, seed)
        model.fit(
            {"images": images, "labels": labels},
            {"class_logits": labels},
            batch_size=batch_size,
            epochs=args.epochs,
            verbose=args.verbose,
            callbacks=[
                keras.callbacks.LambdaCallback(
                    on_epoch_end=lambda *_: per_epoch.append(test_accuracy())
                )
            ],
        )
        marginalized = build_model(parts, weight, 1.0, False, seed, True)
    return model, {
        "seed": seed,
        "test_accuracy": per_epoch[-1],
        "test_accuracy_per_epoch": per_epoch,
        "test_neg_elbo": float(
            np.mean(call_in_chunks(marginalized, x_test, "negative_elbo"))
        ),
    }


"""
## Per-class samples, saving and reloading
"""


def save_and_check(model, x_test, output_dir, seed, num_draws=8):
    """Writes `model.keras` and `class_samples.png` (each class, a row,
    decoded with the same `num_draws` draws of `z`); returns the largest
    change of a class probability on 500 test images after reloading."""
    from matplotlib import pyplot

    path = os.path.join(output_dir, "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    before, after = (
        keras.ops.softmax(call_in_chunks(m, x_test[:500], "class_logits"))
        for m in (model, reloaded)
    )
    decoder = model.get_layer("decoder")
    (_, latent_dim), (_, num_classes) = decoder.input_shape
    z = np.random.default_rng(seed).standard_normal((num_draws, latent_dim))
    z = np.tile(z.astype("float32"), (num_classes, 1))
    classes = np.repeat(np.eye(num_classes, dtype="float32"), num_draws, 0)
    pixels = keras.ops.sigmoid(decoder([z, classes], training=False))
    side = int(round(x_test.shape[-1] ** 0.5))
    figure, axes = pyplot.subplots(
        num_classes, num_draws, figsize=(num_draws * 0.8, num_classes * 0.8)
    )
    for image, axis in zip(
        keras.ops.convert_to_numpy(pixels), axes.flat, strict=True
    ):
        axis.imshow(image.reshape(side, side), cmap="gray")
        axis.axis("off")
    figure.suptitle("One class per row; one draw of z per column")
    png_path = os.path.join(output_dir, "class_samples.png")
    figure.savefig(png_path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)
    return float(keras.ops.max(keras.ops.abs(before - after)))


"""
## Command line
"""


def argument_parser(description):
    """The options of one training run, shared with the seeds benchmark."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--dataset",
        default="digits",
        choices=image_datasets.DATASET_NAMES,
        help="digits: scikit-learn's 8x8 digits, no download",
    )
    add("--epochs", type=int, default=100, help="passes over the rows")
    add("--labels-per-class", type=int, default=10, help="labelled images")
    add(
        "--classification-weight",
        type=float,
        default=10.0,
        help="of the labelled cross-entropy, per image against the -ELBO",
    )
    add("--batch-size", type=int, default=100, help="rows per step")
    add("--hidden-units", type=int, default=500, help="per hidden layer")
    add("--latent-dim", type=int, default=50, help="dimensions of z")
    add("--hard", action="store_true", help="straight-through samples")
    add("--verbose", type=int, default=0, choices=(0, 1, 2), help="of fit")
    return parser


def parse_arguments(parser, argv):
    args = parser.parse_args(argv)
    arguments.require_at_least_one(
        parser, args, ("epochs", "batch_size", "labels_per_class")
    )
    if not 0 < args.classification_weight < math.inf:
        parser.error("--classification-weight must be positive and finite")
    return args


def main(argv=None):
    parser = argument_parser("Train M2 with a Gumbel-softmax class.")
    parser.add_argument("--seed", type=int, default=0, help="of the run")
    parser.add_argument(
        "--output-dir", default="outputs/semi_supervised", help="its files"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of an earlier run in --output-dir",
    )
    data_parallel.add_arguments(parser)
    mixed_precision.add_arguments(parser)
    args = parse_arguments(parser, argv)
    try:
        data = image_datasets.load_images(args.dataset)
        engine = data_parallel.choose_engine(args.distribute, args.tpu)
        engine.local_data(data[0][0], args.batch_size)  # checks the batch
    except (
        image_datasets.DatasetUnavailableError,
        data_parallel.EngineUnavailableError,
        ValueError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output_dir = engine.output_dir(args.output_dir)
    output_files.refuse_to_overwrite(
        parser, args.output_dir, OUTPUT_FILES, args.overwrite
    )
    os.makedirs(args.output_dir, exist_ok=True)
    keras.config.set_dtype_policy(args.dtype_policy)
    model, result = train_and_evaluate(args, data, args.seed, engine)
    difference = save_and_check(model, data[1][0], args.output_dir, args.seed)
    metrics = {
        "settings": vars(args),
        "backend": keras.backend.backend(),
        "engine": engine.name,
    }
    metrics.update(result, reload_max_abs_difference=difference)
    with open(os.path.join(args.output_dir, "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    print(
        f"Test accuracy {result['test_accuracy']:.3f}, test -ELBO "
        f"{result['test_neg_elbo']:.2f} nats/image. Wrote {args.output_dir}"
        "/{metrics.json, class_samples.png, model.keras}"
    )
    # `not <=` so that a NaN difference fails too.
    if not difference <= 1e-5:
        print(f"error: the reloaded model differs by {difference:.3g}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
