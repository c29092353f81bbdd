"""
Title: Semi-supervised classification with a Gumbel-softmax class
Author: keras-latent contributors
Date created: 2026/11/30
Last modified: 2026/11/30
Description: The semi-supervised model M2 of Kingma et al. (2014) with the
class as a Gumbel-softmax latent variable (Jang et al. 2017, section 4.3),
trained with plain `model.fit` on any Keras backend from a few labels.

M2 generates an image `x` from a class `y` and a Gaussian style `z`:
`p(x | y, z)`, with a uniform `p(y)` and `p(z) = N(0, I)`. Its inference
network has a classifier `q(y | x)` and an encoder `q(z | x, y)`. A labelled
image has the bound `-L(x, y) = E_q(z|x,y)[log p(x | y, z)] + log p(y) -
KL(q(z | x, y) || p(z))`. For an unlabelled image the class is latent too:
`-U(x) = E_q(y|x)[-L(x, y)] + H(q(y | x))`, that is
`E_q(y,z|x)[log p(x | y, z)] - E_q(y|x)[KL(q(z | x, y) || p(z))] -
KL(q(y | x) || p(y))`. Kingma et al. compute the expectation over `y`
exactly, by running the encoder and decoder once per class; Jang et al.
replace it with one Gumbel-softmax sample of `y`, whose cost does not grow
with the number of classes. The classifier also gets a cross-entropy on the
labelled images, weighted by `alpha = 0.1 * N` as in Kingma et al., so the
loss is `mean(-ELBO) + 0.1 * mean_labelled(cross-entropy)` per image, in
nats.

    KERAS_BACKEND=jax python examples/semi_supervised.py --seeds 3 \\
        --dataset fashion_mnist --epochs 5 --output-dir outputs/m2

It writes `metrics.json`, `class_samples.png` and `model.keras` (the first
seed's model) to the output directory.
"""

import argparse
import json
import math
import os
import sys
import time

import image_datasets
import keras
import numpy as np
from keras import ops

import keras_latent

DESCRIPTION = (
    "Train the semi-supervised model M2 with a Gumbel-softmax class, and "
    "time sampling the class against summing over it."
)
CLASSIFICATION_WEIGHT = 0.1  # Kingma et al.'s alpha, in units of N.

"""
## Three small layers

One layer chooses, row by row, the given label (a one-hot row) or the
sampled class (where the label row is all zeros), so that one batch mixes
labelled and unlabelled images. One draws `z` with the reparameterization
trick. One adds the -ELBO of each image, in nats, to the model's losses:
for the sampled model from one class per row; for the marginalized model
from `num_classes` rows per image, weighted by `q(y | x)`.
"""


def is_labelled(labels):
    return ops.sum(labels, axis=-1) > 0


@keras.saving.register_keras_serializable(package="semi_supervised")
class LabelOrSample(keras.layers.Layer):
    def call(self, inputs):
        labels, sampled_classes = inputs
        labelled = ops.expand_dims(is_labelled(labels), -1)
        return ops.where(labelled, labels, ops.cast(sampled_classes, "float32"))


@keras.saving.register_keras_serializable(package="semi_supervised")
class GaussianSample(keras.layers.Layer):
    """`mean + exp(log_variance / 2) * noise`, in training and inference.

    Sampling at inference too keeps `evaluate` and `predict` a valid bound.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_variance = inputs
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_variance) * noise

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="semi_supervised")
class EveryClass(keras.layers.Layer):
    """Each image repeated `num_classes` times, beside each one-hot class."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def call(self, images):
        classes = ops.eye(self.num_classes, dtype="float32")
        batch_size = ops.shape(images)[0]
        classes = ops.broadcast_to(
            classes, (batch_size, self.num_classes, self.num_classes)
        )
        return (
            ops.repeat(images, self.num_classes, axis=0),
            ops.reshape(classes, (-1, self.num_classes)),
        )

    def compute_output_shape(self, input_shape):
        batch = input_shape[0] and input_shape[0] * self.num_classes
        return (batch, input_shape[1]), (batch, self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="semi_supervised")
class NegativeELBO(keras.layers.Layer):
    """Adds the batch mean of each image's -ELBO; returns the -ELBOs."""

    def __init__(self, num_classes, marginalize=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.marginalize = marginalize

    def call(self, inputs):
        images, labels, class_logits, pixel_logits, z_mean, z_log_variance = (
            inputs
        )
        # -log p(x | y, z) + KL(q(z | x, y) || N(0, I)), one value per row.
        given_class = keras_latent.losses.summed_binary_crossentropy(
            images, pixel_logits, from_logits=True
        ) + 0.5 * ops.sum(
            ops.exp(z_log_variance) + ops.square(z_mean) - 1 - z_log_variance,
            axis=-1,
        )
        labelled = is_labelled(labels)
        if self.marginalize:
            weights = ops.where(
                ops.expand_dims(labelled, -1),
                labels,
                ops.softmax(class_logits),
            )
            given_class = ops.reshape(given_class, (-1, self.num_classes))
            given_class = ops.sum(weights * given_class, axis=-1)
        # -log p(y) = log K for a label; KL(q(y | x) || p(y)) otherwise.
        class_term = ops.where(
            labelled,
            math.log(self.num_classes),
            keras_latent.ops.categorical_kl(class_logits),
        )
        negative_elbo = given_class + class_term
        count = ops.maximum(ops.cast(ops.shape(negative_elbo)[0], "float32"), 1)
        self.add_loss(ops.sum(negative_elbo) / count)
        return negative_elbo

    def compute_output_shape(self, input_shape):
        return (input_shape[1][0],)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "marginalize": self.marginalize,
        }


@keras.saving.register_keras_serializable(package="semi_supervised")
def labelled_cross_entropy(labels, class_logits):
    """`-sum(labels * log_softmax(logits))`: 0 for an unlabelled row.

    Neither value nor gradient comes from an all-zero row. Keras's
    `CategoricalCrossentropy` gives it a zero value but, on TensorFlow, a
    gradient: its fused kernel assumes that labels sum to 1.
    """
    return -ops.sum(labels * ops.log_softmax(class_logits), axis=-1)


"""
## The model

Kingma et al.'s multilayer perceptrons: one hidden layer of 500 softplus
units each for the classifier, the encoder and the decoder, and a
50-dimensional `z`. The three parts are sub-models, so that the sampled and
the marginalized models can share them.
"""


def build_parts(num_pixels, num_classes, hidden_units, latent_dim):
    def hidden(inputs):
        return keras.layers.Dense(hidden_units, activation="softplus")(inputs)

    images = keras.Input((num_pixels,), name="images")
    classes = keras.Input((num_classes,), name="classes")
    class_logits = keras.layers.Dense(num_classes)(hidden(images))
    classifier = keras.Model(images, class_logits, name="classifier")

    features = hidden(keras.layers.Concatenate()([images, classes]))
    z_mean = keras.layers.Dense(latent_dim)(features)
    z_log_variance = keras.layers.Dense(latent_dim)(features)
    encoder = keras.Model(
        [images, classes], [z_mean, z_log_variance], name="encoder"
    )

    z = keras.Input((latent_dim,), name="z")
    features = hidden(keras.layers.Concatenate()([z, classes]))
    pixel_logits = keras.layers.Dense(num_pixels)(features)
    decoder = keras.Model([z, classes], pixel_logits, name="decoder")
    return classifier, encoder, decoder


def build_model(
    parts,
    classification_weight,
    temperature,
    hard,
    seed,
    marginalize=False,
    learning_rate=1e-3,
):
    """The M2 model over `parts`; the class sampled or summed out.

    Inputs: `images` and `labels` (one-hot, all zeros for an unlabelled
    image). Outputs: `class_logits` and `negative_elbo`, per image.
    """
    classifier, encoder, decoder = parts
    num_pixels = classifier.input_shape[-1]
    num_classes = classifier.output_shape[-1]
    images = keras.Input((num_pixels,), name="images")
    labels = keras.Input((num_classes,), name="labels")
    class_logits = classifier(images)
    if marginalize:
        rows, classes = EveryClass(num_classes)(images)
    else:
        sampled = keras_latent.layers.GumbelSoftmax(
            temperature=temperature, hard=hard, eval_mode="sample", seed=seed
        )(class_logits)
        rows, classes = images, LabelOrSample()([labels, sampled])
    z_mean, z_log_variance = encoder([rows, classes])
    z = GaussianSample(seed=seed)([z_mean, z_log_variance])
    pixel_logits = decoder([z, classes])
    negative_elbo = NegativeELBO(num_classes, marginalize)(
        [rows, labels, class_logits, pixel_logits, z_mean, z_log_variance]
    )
    outputs = {"class_logits": class_logits, "negative_elbo": negative_elbo}
    model = keras.Model({"images": images, "labels": labels}, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={"class_logits": labelled_cross_entropy},
        loss_weights={"class_logits": classification_weight},
    )
    return model


"""
## Labels for a few images

`labels_per_class` images of each class keep their label; the others lose
it (their label row is all zeros). With 100 labels among 60000 images most
batches would hold none, so the labelled images are repeated until they
make about `labelled_share` of the rows, and their cross-entropy is weighted
by `0.1 * rows / labelled_rows`: in expectation over a batch, the
classification term is `0.1` times the mean cross-entropy of the labelled
images, Kingma et al.'s `alpha = 0.1 * N`. (The repeats also count the
labelled images' -ELBO more often: a small departure from M2.)
"""


def training_rows(x_train, y_train, labels_per_class, labelled_share, seed):
    num_classes = image_datasets.NUM_CLASSES
    generator = np.random.default_rng(seed)
    labelled = np.concatenate(
        [
            generator.permutation(np.flatnonzero(y_train == label))[
                :labels_per_class
            ]
            for label in range(num_classes)
        ]
    )
    unlabelled = np.setdiff1d(np.arange(len(x_train)), labelled)
    wanted = labelled_share * len(unlabelled) / (1 - labelled_share)
    repeats = max(1, round(wanted / len(labelled)))
    labelled_rows = np.tile(labelled, repeats)
    images = np.concatenate([x_train[unlabelled], x_train[labelled_rows]])
    labels = np.zeros((len(images), num_classes), "float32")
    labels[len(unlabelled) :] = np.eye(num_classes)[y_train[labelled_rows]]
    weight = CLASSIFICATION_WEIGHT * len(images) / len(labelled_rows)
    return images, labels, weight, repeats


"""
## Training and evaluating one seed

The temperature falls from 1.0 to 0.5 by Jang et al.'s exponential
schedule, reaching its floor halfway through the run: a
`keras_latent.schedules` object that the `GumbelSoftmax` layer evaluates
inside the compiled step. The test -ELBO is M2's exact sum over the ten
classes (one `z` draw per class), computed by the marginalized model over
the trained parts, with every test image unlabelled.
"""


def temperature_schedule(total_steps, initial, minimum):
    annealing_steps = max(1, total_steps // 2)
    return keras_latent.schedules.ExponentialDecay.reaching_minimum_at(
        annealing_steps,
        initial,
        minimum,
        update_every=max(1, annealing_steps // 20),
    )


def unlabelled(images, num_classes=image_datasets.NUM_CLASSES):
    return {
        "images": images,
        "labels": np.zeros((len(images), num_classes), "float32"),
    }


def call_in_chunks(model, images, output_name, chunk_size=1000):
    """One output of `model` on unlabelled `images`, as a NumPy array.

    Plain calls, not `predict`: no function is compiled for a single pass.
    """
    chunks = []
    for start in range(0, len(images), chunk_size):
        batch = unlabelled(images[start : start + chunk_size])
        outputs = model(batch, training=False)[output_name]
        chunks.append(keras.ops.convert_to_numpy(outputs))
    return np.concatenate(chunks)


def softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def train_and_evaluate(args, data, seed):
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    images, labels, weight, repeats = training_rows(
        x_train, y_train, args.labels_per_class, args.labelled_share, seed
    )
    total_steps = args.epochs * math.ceil(len(images) / args.batch_size)
    schedule = temperature_schedule(
        total_steps, args.initial_temperature, args.minimum_temperature
    )
    parts = build_parts(
        x_train.shape[-1],
        image_datasets.NUM_CLASSES,
        args.hidden_units,
        args.latent_dim,
    )
    model = build_model(
        parts, weight, schedule, args.hard, seed, False, args.learning_rate
    )
    start = time.perf_counter()
    history = model.fit(
        {"images": images, "labels": labels},
        {"class_logits": labels},
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    class_logits = call_in_chunks(model, x_test, "class_logits")
    marginalized = build_model(parts, weight, 1.0, False, seed, True)
    negative_elbo = call_in_chunks(marginalized, x_test, "negative_elbo")
    result = {
        "seed": seed,
        "test_accuracy": float(np.mean(class_logits.argmax(-1) == y_test)),
        "test_neg_elbo": float(np.mean(negative_elbo)),
        "final_train_loss": float(history.history["loss"][-1]),
        "labelled_repeats": repeats,
        "classification_weight": weight,
        "training_seconds": seconds,
    }
    return model, result


"""
## Sampling against marginalizing: the training-step time

Fresh models with `num_classes` classes, on one batch of training images
with no labels, where marginalizing costs most: the sampled model runs the
encoder and decoder on `batch_size` rows, the marginalized one on
`batch_size * num_classes`. After two compiling steps each, the two models
take turns, one step at a time, so that both see the same machine load.
"""


def median_step_seconds(x_train, num_classes, args):
    batch = unlabelled(x_train[: args.batch_size], num_classes)
    targets = {"class_logits": batch["labels"]}
    models = {}
    for marginalize in (False, True):
        parts = build_parts(
            x_train.shape[-1], num_classes, args.hidden_units, args.latent_dim
        )
        models[marginalize] = build_model(
            parts, 1.0, 1.0, args.hard, 0, marginalize
        )
        for _ in range(2):
            models[marginalize].train_on_batch(batch, targets)
    seconds = {False: [], True: []}
    for step in range(args.speed_steps):
        for marginalize in (step % 2 == 0, step % 2 == 1):
            start = time.perf_counter()
            models[marginalize].train_on_batch(batch, targets)
            seconds[marginalize].append(time.perf_counter() - start)
    sampled, summed = (float(np.median(seconds[m])) for m in (False, True))
    return {
        "num_classes": num_classes,
        "sampled_ms": 1000 * sampled,
        "marginalized_ms": 1000 * summed,
        "speedup": summed / sampled,
    }


"""
## Per-class samples and the reload check
"""


def save_class_samples(path, decoder, num_draws, seed):
    """Decodes each class (rows) with the same `num_draws` draws of `z`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    num_classes = decoder.input_shape[1][-1]
    latent_dim = decoder.input_shape[0][-1]
    z = np.random.default_rng(seed).standard_normal((num_draws, latent_dim))
    z = np.tile(z.astype("float32"), (num_classes, 1))
    classes = np.repeat(np.eye(num_classes, dtype="float32"), num_draws, 0)
    pixels = keras.ops.sigmoid(decoder([z, classes], training=False))
    pixels = keras.ops.convert_to_numpy(pixels)
    side = int(round(pixels.shape[-1] ** 0.5))
    figure, axes = pyplot.subplots(
        num_classes, num_draws, figsize=(num_draws * 0.8, num_classes * 0.8)
    )
    for index, axis in enumerate(axes.flat):
        axis.imshow(pixels[index].reshape(side, side), cmap="gray")
        axis.axis("off")
    figure.suptitle("One class per row; one draw of z per column")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)


def reload_difference(model, path, images):
    """Saves `model`; the largest class-probability change after reload."""
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    before, after = (
        call_in_chunks(m, images, "class_logits") for m in (model, reloaded)
    )
    return float(np.max(np.abs(softmax(before) - softmax(after))))


"""
## Command line
"""


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=DESCRIPTION,
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
        "--labelled-share",
        type=float,
        default=0.05,
        help="labelled images are repeated to make about this share of rows",
    )
    add("--seeds", type=int, default=3, help="runs, with seeds 0, 1, ...")
    add("--learning-rate", type=float, default=1e-3, help="of Adam")
    add("--batch-size", type=int, default=100, help="rows per step")
    add("--hidden-units", type=int, default=500, help="per hidden layer")
    add("--latent-dim", type=int, default=50, help="dimensions of z")
    add("--hard", action="store_true", help="straight-through samples")
    add("--initial-temperature", type=float, default=1.0, help="at step 0")
    add("--minimum-temperature", type=float, default=0.5, help="from mid-run")
    add(
        "--speed-classes",
        type=int,
        nargs="*",
        default=[10, 100],
        help="class counts of the timing (none: no timing)",
    )
    add("--speed-steps", type=int, default=20, help="timed steps per model")
    add(
        "--output-dir", default="outputs/semi_supervised", help="where to write"
    )
    add("--verbose", type=int, default=0, choices=(0, 1, 2), help="of fit")
    args = parser.parse_args(argv)
    for name in ("epochs", "seeds", "batch_size", "labels_per_class"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.labelled_share < 1:
        parser.error("--labelled-share must be between 0 and 1")
    if not 0 < args.minimum_temperature <= args.initial_temperature:
        parser.error("the temperatures need 0 < minimum <= initial")
    if any(count < 2 for count in args.speed_classes):
        parser.error("--speed-classes needs counts of at least 2")
    return args


def mean_and_std(values):
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "values": values,
    }


def main(argv=None):
    args = parse_arguments(argv)
    try:
        data = image_datasets.load_images(args.dataset)
    except image_datasets.DatasetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    print(
        f"M2 with a Gumbel-softmax class on {args.dataset}, "
        f"{args.labels_per_class} labels per class, {args.seeds} seed(s), "
        f"backend {keras.backend.backend()}"
    )
    runs = []
    for seed in range(args.seeds):
        model, result = train_and_evaluate(args, data, seed)
        runs.append(result)
        print(
            f"seed {seed}: test accuracy {result['test_accuracy']:.3f}, "
            f"test -ELBO {result['test_neg_elbo']:.2f} nats/image"
        )
        if seed == 0:
            x_test = data[1][0]
            model_path = os.path.join(args.output_dir, "model.keras")
            difference = reload_difference(model, model_path, x_test[:500])
            save_class_samples(
                os.path.join(args.output_dir, "class_samples.png"),
                model.get_layer("decoder"),
                num_draws=8,
                seed=seed,
            )
    if difference > 1e-5:
        print(f"error: the reloaded model differs by {difference:.3g}")
        return 1
    speed = [
        median_step_seconds(data[0][0], count, args)
        for count in args.speed_classes
    ]
    for row in speed:
        print(
            f"{row['num_classes']} classes: sampled {row['sampled_ms']:.1f} "
            f"ms/step, marginalized {row['marginalized_ms']:.1f} ms/step, "
            f"{row['speedup']:.1f}x"
        )
    metrics = {
        "dataset": args.dataset,
        "backend": keras.backend.backend(),
        "keras_latent_version": keras_latent.__version__,
        "settings": vars(args),
        "test_accuracy": mean_and_std([r["test_accuracy"] for r in runs]),
        "test_neg_elbo": mean_and_std([r["test_neg_elbo"] for r in runs]),
        "runs": runs,
        "step_time": speed,
        "reload_max_abs_difference": difference,
    }
    with open(os.path.join(args.output_dir, "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    accuracy, elbo = metrics["test_accuracy"], metrics["test_neg_elbo"]
    print(
        f"Test accuracy {accuracy['mean']:.3f} ± {accuracy['std']:.3f}, "
        f"test -ELBO {elbo['mean']:.2f} ± {elbo['std']:.2f} nats/image over "
        f"{args.seeds} seed(s). Wrote {args.output_dir}/{{metrics.json, "
        "class_samples.png, model.keras}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
