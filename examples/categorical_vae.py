"""
Title: Categorical VAE with Gumbel-softmax
Description: The variational autoencoder with 30 ten-way categorical latent
variables of Jang et al. (2017), trained with plain `model.fit` on any Keras
backend.

The encoder maps a binarized image to the logits of `N` categorical
variables with `K` categories each; `keras_latent.layers.CategoricalLatent`
draws a Gumbel-softmax sample in training (an exact one-hot sample at
inference) and adds the KL to the uniform prior to the model's losses; the
decoder gives the Bernoulli logits of each pixel. The training loss is the
negative ELBO with the relaxed sample; the test figure is the negative ELBO
with discrete samples, a valid bound of the discrete model, in nats per
image.

Run it with the backend of your choice:

    KERAS_BACKEND=jax python examples/categorical_vae.py --epochs 10 \
        --dataset fashion_mnist --output-dir outputs/vae

It writes `metrics.json`, `reconstructions.png`, `samples.png` and
`model.keras` to the output directory.
"""

import argparse
import json
import os
import sys
import time

import image_datasets
import keras
import numpy as np

import keras_latent

"""
## The model
"""


@keras.saving.register_keras_serializable(package="categorical_vae")
def bernoulli_negative_log_likelihood(images, logits):
    """-log p(image | z), summed over pixels: nats per image."""
    per_pixel = keras.ops.binary_crossentropy(images, logits, from_logits=True)
    return keras.ops.sum(per_pixel, axis=-1)


def build_model(num_pixels, num_variables, num_categories, hard, seed):
    """Encoder, latent layer and decoder, joined in one functional model."""
    images = keras.Input((num_pixels,), name="images")
    hidden = keras.layers.Dense(512, activation="relu")(images)
    hidden = keras.layers.Dense(256, activation="relu")(hidden)
    logits = keras.layers.Dense(num_variables * num_categories)(hidden)
    encoder = keras.Model(images, logits, name="encoder")

    latent_sample = keras.Input((num_variables, num_categories), name="z")
    hidden = keras.layers.Flatten()(latent_sample)
    hidden = keras.layers.Dense(256, activation="relu")(hidden)
    hidden = keras.layers.Dense(512, activation="relu")(hidden)
    pixel_logits = keras.layers.Dense(num_pixels)(hidden)
    decoder = keras.Model(latent_sample, pixel_logits, name="decoder")

    latent = keras_latent.layers.CategoricalLatent(
        num_variables,
        num_categories,
        hard=hard,
        eval_mode="sample",
        seed=seed,
        name="latent",
    )
    outputs = decoder(latent(encoder(images)))
    return keras.Model(images, outputs, name="categorical_vae")


"""
## Logging, plots and the reload check
"""


class EpochSummary(keras.callbacks.Callback):
    """Prints the epoch's figures in nats per image and keeps them."""

    def __init__(self):
        super().__init__()
        self.history = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        self.training_seconds = None

    def on_test_begin(self, logs=None):
        # The test pass that `fit` runs after each epoch starts here: what
        # came before it is the training time of the epoch.
        if self.training_seconds is None:
            self.training_seconds = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.training_seconds
        record = {
            "epoch": epoch + 1,
            "train_loss": float(logs["loss"]),
            "test_neg_elbo": float(logs["val_loss"]),
            "test_kl": float(logs["val_latent_kl"]),
            "temperature": float(logs["temperature"]),
            "seconds": seconds,
        }
        self.history.append(record)
        print(
            f"epoch {record['epoch']}: training loss "
            f"{record['train_loss']:.2f} nats/image, test -ELBO "
            f"(discrete samples) {record['test_neg_elbo']:.2f} nats/image, "
            f"temperature {record['temperature']:.3f}, {seconds:.1f} s "
            "training"
        )


def mode_reconstruction_logits(model, images):
    """Decoder logits with each latent variable set to its posterior mode."""
    latent = model.get_layer("latent")
    eval_mode = latent.eval_mode
    latent.eval_mode = "mode"
    try:
        logits = model(images, training=False)
    finally:
        latent.eval_mode = eval_mode
    return keras.ops.convert_to_numpy(logits)


def image_side(num_pixels):
    side = int(round(num_pixels**0.5))
    if side * side != num_pixels:
        raise ValueError(
            f"Expected square images. Received {num_pixels} pixels"
        )
    return side


def save_grid(path, rows, title):
    """Saves rows of flat images as one grid of grey-scale images."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    side = image_side(rows[0].shape[-1])
    num_rows, num_columns = len(rows), len(rows[0])
    figure, axes = pyplot.subplots(
        num_rows,
        num_columns,
        figsize=(num_columns * 0.8, num_rows * 0.8 + 0.4),
        squeeze=False,
    )
    for row, images in zip(axes, rows, strict=True):
        for axis, image in zip(row, images, strict=True):
            axis.imshow(image.reshape(side, side), cmap="gray", vmin=0, vmax=1)
            axis.axis("off")
    figure.suptitle(title)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def prior_samples(model, num_samples, num_variables, num_categories, seed):
    """Decodes latent codes drawn from the uniform prior."""
    rng = np.random.default_rng(seed)
    categories = rng.integers(num_categories, size=(num_samples, num_variables))
    codes = np.eye(num_categories, dtype="float32")[categories]
    decoder = model.get_layer("decoder")
    return sigmoid(keras.ops.convert_to_numpy(decoder(codes, training=False)))


"""
## Command line
"""


def parse_latent(text):
    try:
        num_variables, num_categories = (int(part) for part in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--latent expects NxK, such as 30x10; received {text!r}"
        ) from None
    if num_variables < 1 or num_categories < 2:
        raise argparse.ArgumentTypeError(
            f"--latent needs N >= 1 and K >= 2; received {text!r}"
        )
    return num_variables, num_categories


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument(
        "--dataset", default="digits", choices=image_datasets.DATASET_NAMES
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--latent", type=parse_latent, default=(30, 10))
    parser.add_argument("--hard", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--output-dir", default="outputs/categorical_vae")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_arguments(argv)
    try:
        (x_train, _), (x_test, _) = image_datasets.load_images(args.dataset)
    except image_datasets.DatasetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    num_variables, num_categories = args.latent
    print(
        f"Categorical VAE on {args.dataset} ({len(x_train)} training and "
        f"{len(x_test)} test images), latent {num_variables}x{num_categories}, "
        f"backend {keras.backend.backend()}"
    )

    model = build_model(
        x_train.shape[-1], num_variables, num_categories, args.hard, args.seed
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=bernoulli_negative_log_likelihood,
    )
    summary = EpochSummary()
    model.fit(
        x_train,
        x_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_test, x_test),
        callbacks=[keras_latent.callbacks.TemperatureAnnealing(), summary],
        verbose=args.verbose,
    )

    model_path = os.path.join(args.output_dir, "model.keras")
    model.save(model_path)
    reloaded = keras.saving.load_model(model_path)
    check_images = x_test[:500]
    before = mode_reconstruction_logits(model, check_images)
    after = mode_reconstruction_logits(reloaded, check_images)
    max_difference = float(np.max(np.abs(before - after)))
    if not np.allclose(before, after, rtol=1e-5, atol=1e-5):
        print(
            f"error: the reloaded model differs (max {max_difference:.3g})",
            file=sys.stderr,
        )
        return 1
    print(
        f"Saved {model_path}; reloaded predictions match "
        f"(max difference {max_difference:.2g})"
    )

    test_images = x_test[:10]
    reconstructions = sigmoid(mode_reconstruction_logits(model, test_images))
    save_grid(
        os.path.join(args.output_dir, "reconstructions.png"),
        [test_images, reconstructions],
        "Test images (top) and reconstructions from the posterior mode",
    )
    samples = prior_samples(model, 50, num_variables, num_categories, args.seed)
    save_grid(
        os.path.join(args.output_dir, "samples.png"),
        [samples[i : i + 10] for i in range(0, 50, 10)],
        "Decoded samples from the uniform prior",
    )

    final = summary.history[-1]
    metrics = {
        "dataset": args.dataset,
        "backend": keras.backend.backend(),
        "keras_latent_version": keras_latent.__version__,
        "epochs": args.epochs,
        "latent": f"{num_variables}x{num_categories}",
        "hard": args.hard,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "test_neg_elbo": final["test_neg_elbo"],
        "seconds_per_epoch": [record["seconds"] for record in summary.history],
        "reload_max_abs_difference": max_difference,
        "history": summary.history,
    }
    with open(os.path.join(args.output_dir, "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    print(
        f"Test -ELBO after {args.epochs} epochs: "
        f"{final['test_neg_elbo']:.2f} nats/image. Wrote {args.output_dir}/"
        "{metrics.json, reconstructions.png, samples.png, model.keras}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
