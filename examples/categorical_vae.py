"""
Title: Categorical VAE with Gumbel-softmax
Author: keras-latent contributors
Date created: 2026/11/26
Last modified: 2026/11/30
Description: The variational autoencoder with 30 ten-way categorical latent
variables of Jang et al. (2017), trained with plain `model.fit` on any Keras
backend and with any of keras-latent's gradient estimators.

The encoder maps a binarized image to the logits of `N` categorical
variables with `K` categories each. `keras_latent.layers.CategoricalLatent`
draws a Gumbel-softmax sample from them in training (an exact one-hot sample
at inference) and adds the KL to the uniform prior, summed over the
variables of each image, to the model's losses; `--estimator` chooses how
the gradient passes the discrete sample. The decoder gives the
Bernoulli logits of each pixel; `keras_latent.losses.SummedBinaryCrossentropy`
sums their negative log-likelihood over the pixels of each image, so that
reconstruction and KL have the same scale and the loss is the negative ELBO
in nats per image. The test figures are the negative ELBO with discrete
samples, a valid bound of the discrete model, and the tighter
importance-weighted bound with 1000 samples per image that the papers
report.

Run it with the backend of your choice (`--help` lists the options):

    KERAS_BACKEND=jax python examples/categorical_vae.py --epochs 10 \\
        --dataset fashion_mnist --output-dir outputs/vae

`--distribute` trains data-parallel on every device (see
`examples/data_parallel.py` and the README's "Data-parallel training").
`--dtype-policy mixed_float16` or `mixed_bfloat16` trains in mixed
precision (see `examples/mixed_precision.py`).

It writes `metrics.json`, `reconstructions.png`, `samples.png` and
`model.keras` to the output directory.
"""

import argparse
import json
import math
import os
import sys
import time

import arguments
import data_parallel
import image_datasets
import keras
import mixed_precision
import numpy as np
import output_files
import training_timer

import keras_latent

DESCRIPTION = (
    "Train the categorical VAE of Jang et al. (2017) and write its metrics, "
    "plots and model."
)

"""
## The model

An MLP encoder (512 and 256 ReLU units) gives `N * K` logits; the latent
layer reads them as `N` variables of `K` categories; an MLP decoder (256
and 512 units) gives one logit per pixel.
"""


def build_model(
    num_pixels,
    num_variables,
    num_categories,
    temperature,
    estimator,
    num_samples,
    seed,
):
    """Encoder, latent layer and decoder, joined in one functional model.

    A `keras_latent.models.LatentModel` is a functional `keras.Model` that
    also logs the latent layer's KL (`latent_kl`, `val_latent_kl`).
    `"reinforce_loo"` returns a `ReinforceLooVAE` (below), whose latent
    layer draws exact samples.
    """
    images = keras.Input((num_pixels,), name="images")
    hidden = keras.layers.Dense(512, activation="relu")(images)
    hidden = keras.layers.Dense(256, activation="relu")(hidden)
    logits = keras.layers.Dense(num_variables * num_categories)(hidden)
    encoder = keras.Model(images, logits, name="encoder")

    latent_sample = keras.Input((num_variables, num_categories), name="z")
    hidden = keras.layers.Flatten()(latent_sample)
    hidden = keras.layers.Dense(256, activation="relu")(hidden)
    hidden = keras.layers.Dense(512, activation="relu")(hidden)
    pixel_logits = keras.layers.Dense(
        num_pixels, dtype=mixed_precision.OUTPUT_DTYPE
    )(hidden)
    decoder = keras.Model(latent_sample, pixel_logits, name="decoder")

    score_function = estimator == "reinforce_loo"
    latent = keras_latent.layers.CategoricalLatent(
        num_variables,
        num_categories,
        temperature=temperature,
        estimator="straight_through" if score_function else estimator,
        num_samples=num_samples if estimator == "gumbel_rao" else None,
        eval_mode="sample",
        seed=seed,
        name="latent",
    )
    outputs = decoder(latent(encoder(images)))
    if score_function:
        return ReinforceLooVAE(
            images, outputs, num_samples=num_samples, name="categorical_vae"
        )
    return keras_latent.models.LatentModel(
        images, outputs, name="categorical_vae"
    )


"""
## REINFORCE-LOO: an estimator that needs the loss of each sample

The score-function estimator with a leave-one-out baseline (Kool et al.
2019) draws S exact samples per image, without gradient, and weighs the
gradient of their log-probabilities by how much better each sample's
reconstruction loss is than the mean of the others'. The latent layer does
not see those losses, so the model computes them in `compute_loss` and
`keras_latent.ops.reinforce_loo_surrogate` turns them into a surrogate
loss; the analytic KL, which the layer adds in the forward pass, keeps its
exact gradient. Plain `model.fit` trains it, on every backend; evaluation
is the same as the other estimators'.
"""


@keras.saving.register_keras_serializable(package="categorical_vae")
class ReinforceLooVAE(keras_latent.models.LatentFunctional):
    """The functional VAE, trained with REINFORCE-LOO on S samples.

    Its training loss ignores `sample_weight`: `fit` it without one.
    """

    def __init__(self, *args, num_samples=4, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_samples = num_samples

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        if not training:
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        latent = self.get_layer("latent")
        shape = (-1, latent.num_variables, latent.num_categories)
        # The forward pass's reconstruction (`y_pred`) is not used: the
        # encoder runs again to give the logits of the S samples.
        logits = keras.ops.reshape(self.get_layer("encoder")(x), shape)
        logits = keras.ops.stack([logits] * self.num_samples)
        samples = keras_latent.ops.sample_one_hot(
            logits, seed=latent.seed_generator
        )
        pixel_logits = self.get_layer("decoder")(
            keras.ops.reshape(samples, shape)
        )
        losses = self.loss.call(
            keras.ops.concatenate([y] * self.num_samples),
            pixel_logits,
        )
        log_probs = keras.ops.sum(
            keras_latent.ops.one_hot_categorical_log_prob(samples, logits),
            axis=-1,
        )
        surrogate = keras_latent.ops.reinforce_loo_surrogate(
            log_probs, keras.ops.reshape(losses, (self.num_samples, -1))
        )
        keras_latent.models.update_kl_metrics(self)
        return data_parallel.replica_share(
            keras.ops.mean(surrogate) + sum(self.losses)
        )


"""
## Annealing the temperature within the run

Jang et al. anneal the temperature as `max(minimum, exp(-rate * step))`,
updated every 1000 steps, with a rate that takes their MNIST runs to the
floor after about 40% of training. A fixed rate reaches the floor only
after a fixed number of steps, which a short run on a small dataset never
takes. Here the rate comes from the run the user asked for: the floor is
reached halfway through training, on any dataset size and for any number of
epochs, in 20 updates. The schedule is a `keras_latent.schedules`
object: the layer evaluates it inside the compiled train step at its own
step counter, with no callback and no host work per step.
"""

NUM_TEMPERATURE_UPDATES = 20
# At most this many training steps per call into the compiled step (see
# `steps_per_execution`).
MAX_STEPS_PER_EXECUTION = 32


def temperature_schedule(total_steps, initial, minimum):
    """An `ExponentialDecay` reaching `minimum` at half of `total_steps`."""
    annealing_steps = max(1, total_steps // 2)
    update_every = max(1, annealing_steps // NUM_TEMPERATURE_UPDATES)
    return keras_latent.schedules.ExponentialDecay.reaching_minimum_at(
        annealing_steps, initial, minimum, update_every=update_every
    )


def steps_per_execution(steps_per_epoch, engine):
    """Training steps per call from Python into the compiled step.

    Running several steps per call saves Keras's per-step overhead: a
    12 to 15% lower CPU time per step on JAX and TensorFlow (digits, 15
    steps per epoch run in one call; measured 2026-11-30). Keras's PyTorch
    trainer takes one step per call only, and Keras's TensorFlow trainer
    fails to run several under `tf.distribute` (a placeholder left unfed
    in its multi-step loop, Keras 3.15): one there too. The schedules read
    the layer's step counter, which counts every step either way.
    """
    if keras.backend.backend() == "torch" or engine.num_replicas > 1:
        return 1
    return max(1, min(MAX_STEPS_PER_EXECUTION, steps_per_epoch))


"""
## Recording each epoch

Keras prints the epoch's losses; this callback keeps them for
`metrics.json`, with the training seconds (elapsed, and the process's CPU
seconds, which other programs on the machine inflate less) and the
temperature of the epoch's last training step (the schedule at the
layer's saved step counter, which counts the training steps).
"""


class EpochRecorder(training_timer.TrainingTimer):
    def __init__(self):
        super().__init__()
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        latent = self.model.get_layer("latent")
        # The step counter has passed the epoch's last training step.
        last_step = int(keras.ops.convert_to_numpy(latent.iterations)) - 1
        temperature = latent.temperature(last_step)
        self.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(logs["loss"]),
                "test_neg_elbo": float(logs["val_loss"]),
                "test_kl": float(logs["val_latent_kl"]),
                "temperature": float(keras.ops.convert_to_numpy(temperature)),
                "seconds": self.seconds[-1],
                "cpu_seconds": self.cpu_seconds[-1],
            }
        )


"""
## Reconstructions, samples and the reload check
"""


def mode_reconstruction_logits(model, images):
    """Decoder logits with each latent variable set to its posterior mode."""
    latent = model.get_layer("latent")
    logits = keras.ops.convert_to_numpy(model.get_layer("encoder")(images))
    logits = logits.reshape(len(images), latent.num_variables, -1)
    codes = np.eye(latent.num_categories, dtype="float32")[logits.argmax(-1)]
    decoder_logits = model.get_layer("decoder")(codes, training=False)
    return keras.ops.convert_to_numpy(decoder_logits)


def save_grid(path, rows, title):
    """Saves rows of flat square images as one grid of grey-scale images."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    side = int(round(rows[0].shape[-1] ** 0.5))
    figure, axes = pyplot.subplots(
        len(rows),
        len(rows[0]),
        figsize=(len(rows[0]) * 0.8, len(rows) * 0.8 + 0.4),
        squeeze=False,
    )
    for axes_row, images in zip(axes, rows, strict=True):
        for axis, image in zip(axes_row, images, strict=True):
            axis.imshow(image.reshape(side, side), cmap="gray", vmin=0, vmax=1)
            axis.axis("off")
    figure.suptitle(title)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)


def prior_samples(model, num_samples, num_variables, num_categories, seed):
    """Pixel probabilities decoded from codes drawn from the uniform prior."""
    generator = np.random.default_rng(seed)
    categories = generator.integers(
        num_categories, size=(num_samples, num_variables)
    )
    codes = np.eye(num_categories, dtype="float32")[categories]
    logits = model.get_layer("decoder")(codes, training=False)
    return keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))


"""
## The importance-weighted bound

The single-sample -ELBO is a loose upper bound on the test negative
log-likelihood. Jang et al. (2017) and Paulus et al. (2021) report the
importance-weighted bound of Burda et al. (2016) instead, with 1000 exact
discrete samples per image: `-log (1/m) sum_i p(x | z_i) p(z_i) / q(z_i | x)`.
`keras_latent.evaluation.importance_weighted_bound` computes it from the
model's encoder, latent layer, decoder and loss, decoding the samples in
batches so that memory stays bounded.
"""


def negative_importance_weighted_bound(model, images, num_samples, seed):
    """The mean over `images` of -L_m, in nats per image."""
    bound = keras_latent.evaluation.importance_weighted_bound(
        images,
        model.get_layer("encoder"),
        model.get_layer("latent"),
        model.get_layer("decoder"),
        model.loss,
        num_samples=num_samples,
        seed=seed,
    )
    return -float(np.mean(bound))


"""
## Command line
"""


ESTIMATORS = (*keras_latent.ops.estimators.ESTIMATORS, "reinforce_loo")
OUTPUT_FILES = (
    "metrics.json",
    "reconstructions.png",
    "samples.png",
    "model.keras",
)
# K of Gumbel-Rao, S of REINFORCE-LOO (whose baseline needs two samples).
DEFAULT_NUM_SAMPLES = {"gumbel_rao": 10, "reinforce_loo": 4}
MINIMUM_NUM_SAMPLES = {"gumbel_rao": 1, "reinforce_loo": 2}


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
    parser = argparse.ArgumentParser(
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        default="digits",
        choices=image_datasets.DATASET_NAMES,
        help="digits: scikit-learn's 8x8 digits, no download; fashion_mnist "
        "and mnist: 28x28 images from Keras's cache, Debian's package or a "
        "download",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=100,
        help="passes over the training set",
    )
    parser.add_argument(
        "--latent",
        type=parse_latent,
        default="30x10",
        help="NxK: N categorical latent variables of K categories each",
    )
    parser.add_argument(
        "--estimator",
        default="gumbel_softmax",
        choices=ESTIMATORS,
        help="the gradient estimator of the latent samples",
    )
    parser.add_argument(
        "--hard",
        action="store_true",
        help="the same as --estimator straight_through_gumbel",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="K of gumbel_rao (default 10), S of reinforce_loo (default 4)",
    )
    parser.add_argument(
        "--initial-temperature",
        type=float,
        default=1.0,
        help="the Gumbel-softmax temperature at the first step",
    )
    parser.add_argument(
        "--minimum-temperature",
        type=float,
        default=0.5,
        help="the temperature floor, reached halfway through training",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the weights, the batches and the latent samples",
    )
    parser.add_argument(
        "--eval-samples",
        type=int,
        default=1000,
        help="samples per test image of the importance-weighted bound",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="images per training step",
    )
    parser.add_argument(
        "--output-dir",
        default="outputs/categorical_vae",
        help="where metrics.json, the plots and model.keras go",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of an earlier run in --output-dir",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=2,
        choices=(0, 1, 2),
        help="Keras's verbosity: 0 silent, 1 a progress bar, 2 one line per "
        "epoch",
    )
    data_parallel.add_arguments(parser)
    mixed_precision.add_arguments(parser)
    args = parser.parse_args(argv)
    arguments.require_at_least_one(
        parser, args, ("epochs", "batch_size", "eval_samples")
    )
    if args.hard:
        if args.estimator not in ("gumbel_softmax", "straight_through_gumbel"):
            parser.error("--hard is --estimator straight_through_gumbel")
        args.estimator = "straight_through_gumbel"
    default_samples = DEFAULT_NUM_SAMPLES.get(args.estimator)
    if default_samples is None:
        if args.num_samples is not None:
            parser.error("--num-samples is for gumbel_rao and reinforce_loo")
    elif args.num_samples is None:
        args.num_samples = default_samples
    elif args.num_samples < MINIMUM_NUM_SAMPLES[args.estimator]:
        parser.error(
            f"--num-samples must be at least "
            f"{MINIMUM_NUM_SAMPLES[args.estimator]} with {args.estimator}"
        )
    if not (
        0 < args.minimum_temperature <= args.initial_temperature < math.inf
    ):
        parser.error(
            "the temperatures need 0 < --minimum-temperature <= "
            "--initial-temperature, finite"
        )
    return parser, args


"""
## Training
"""


def main(argv=None):
    parser, args = parse_arguments(argv)
    try:
        (x_train, _), (x_test, _) = image_datasets.load_images(args.dataset)
    except image_datasets.DatasetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        engine = data_parallel.choose_engine(args.distribute, args.tpu)
        train_images, batch_size = engine.local_data(x_train, args.batch_size)
        validation_images, _ = engine.local_data(x_test, args.batch_size)
    except (data_parallel.EngineUnavailableError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output_dir = engine.output_dir(args.output_dir)
    output_files.refuse_to_overwrite(
        parser, args.output_dir, OUTPUT_FILES, args.overwrite
    )
    os.makedirs(args.output_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    keras.config.set_dtype_policy(args.dtype_policy)
    num_variables, num_categories = args.latent
    print(
        f"Categorical VAE on {args.dataset} ({len(x_train)} training and "
        f"{len(x_test)} test images), latent {num_variables}x{num_categories}, "
        f"estimator {args.estimator}, backend {keras.backend.backend()}, "
        f"{engine.name}, dtype policy {args.dtype_policy}"
    )

    total_steps = args.epochs * math.ceil(len(x_train) / args.batch_size)
    schedule = temperature_schedule(
        total_steps, args.initial_temperature, args.minimum_temperature
    )
    with engine.scope():
        model = build_model(
            x_train.shape[-1],
            num_variables,
            num_categories,
            schedule,
            args.estimator,
            args.num_samples,
            args.seed,
        )
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras_latent.losses.SummedBinaryCrossentropy(from_logits=True),
            steps_per_execution=steps_per_execution(
                math.ceil(len(train_images) / batch_size), engine
            ),
        )
        recorder = EpochRecorder()
        model.fit(
            train_images,
            train_images,
            batch_size=batch_size,
            epochs=args.epochs,
            validation_data=(validation_images, validation_images),
            callbacks=[recorder],
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

    test_images = x_test[:10]
    reconstructions = 1 / (
        1 + np.exp(-mode_reconstruction_logits(model, test_images))
    )
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

    final = recorder.history[-1]
    start = time.perf_counter()
    test_neg_iw_bound = negative_importance_weighted_bound(
        model, x_test, args.eval_samples, args.seed
    )
    iw_seconds = time.perf_counter() - start
    metrics = {
        "dataset": args.dataset,
        "backend": keras.backend.backend(),
        "engine": engine.name,
        "keras_latent_version": keras_latent.__version__,
        "epochs": args.epochs,
        "latent": f"{num_variables}x{num_categories}",
        "estimator": args.estimator,
        "num_samples": args.num_samples,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "dtype_policy": args.dtype_policy,
        "temperature_schedule": {
            "initial": schedule.initial,
            "minimum": schedule.minimum,
            "rate": schedule.rate,
            "update_every": schedule.update_every,
            "total_steps": total_steps,
        },
        "test_neg_elbo": final["test_neg_elbo"],
        "eval_samples": args.eval_samples,
        "test_neg_iw_bound": test_neg_iw_bound,
        "iw_bound_seconds": iw_seconds,
        "seconds_per_epoch": [record["seconds"] for record in recorder.history],
        "cpu_seconds_per_epoch": [
            record["cpu_seconds"] for record in recorder.history
        ],
        "reload_max_abs_difference": max_difference,
        "history": recorder.history,
    }
    with open(os.path.join(args.output_dir, "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    print(
        f"Test -ELBO after {args.epochs} epochs: "
        f"{final['test_neg_elbo']:.2f} nats/image, importance-weighted "
        f"bound ({args.eval_samples} samples): {test_neg_iw_bound:.2f} "
        f"nats/image (temperature "
        f"{final['temperature']:.3f}); the reloaded model matches (max "
        f"difference {max_difference:.2g}). Wrote {args.output_dir}/"
        "{metrics.json, reconstructions.png, samples.png, model.keras}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
