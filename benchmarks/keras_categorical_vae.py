"""Categorical VAE of Jang et al. (2017) in plain Keras, as a baseline.

The model of `examples/categorical_vae.py`, written the way a Keras user
would write it without keras-latent: a hand-written sampling layer (uniform
noise, two logs, a softmax) that adds the analytic KL to the uniform prior
with `add_loss`, and the temperature computed in the graph from a step
counter, the same exponential schedule as the example's. Everything else is
the same: encoder 512-256, 30 variables of 10 categories, decoder 256-512,
Bernoulli likelihood summed over the pixels, Adam 1e-3, batches of 100,
`model.fit` with the test pass after each epoch not counted in its seconds.
The test negative ELBO uses one exact one-hot sample per image.

It is what keras-latent's speed is measured against on each backend
(`benchmarks/compare_categorical_vae.py`): the cost of the library over the
same model written by hand.

    KERAS_BACKEND=jax python benchmarks/keras_categorical_vae.py --epochs 5
"""

import argparse
import json
import math
import os
import sys

import numpy as np

EXAMPLES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"
)
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

import categorical_vae  # noqa: E402
import image_datasets  # noqa: E402
import keras  # noqa: E402
import training_timer  # noqa: E402
from keras import ops  # noqa: E402

BATCH_SIZE = 100
LEARNING_RATE = 1e-3
INITIAL_TEMPERATURE = 1.0
MINIMUM_TEMPERATURE = 0.5
NUM_VARIABLES = 30
NUM_CATEGORIES = 10
TINY = float(np.finfo(np.float32).tiny)


class GumbelSoftmaxSampling(keras.layers.Layer):
    """A Gumbel-softmax sample in training, an exact one at inference;
    adds the KL of each categorical to the uniform prior."""

    def __init__(self, schedule, seed, **kwargs):
        super().__init__(**kwargs)
        self.schedule = schedule
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.step = self.add_weight(
            shape=(), initializer="zeros", dtype="int64", trainable=False
        )

    def temperature(self):
        schedule = self.schedule
        updates = ops.floor(
            ops.cast(self.step, "float32") / schedule.update_every
        )
        decayed = schedule.initial * ops.exp(
            -schedule.rate * updates * schedule.update_every
        )
        return ops.maximum(decayed, schedule.minimum)

    def call(self, logits, training=False):
        logits = ops.reshape(logits, (-1, NUM_VARIABLES, NUM_CATEGORIES))
        log_probabilities = ops.log_softmax(logits, axis=-1)
        kl = ops.sum(
            ops.exp(log_probabilities)
            * (log_probabilities + math.log(NUM_CATEGORIES)),
            axis=(1, 2),
        )
        self.add_loss(ops.mean(kl))
        uniform = keras.random.uniform(
            ops.shape(logits), minval=TINY, seed=self.seed_generator
        )
        noisy_logits = logits - ops.log(-ops.log(uniform))
        if not training:
            return ops.one_hot(
                ops.argmax(noisy_logits, axis=-1), NUM_CATEGORIES
            )
        self.step.assign_add(1)
        return ops.softmax(noisy_logits / self.temperature(), axis=-1)


def summed_binary_crossentropy(images, pixel_logits):
    per_pixel = keras.losses.binary_crossentropy(
        images[..., None], pixel_logits[..., None], from_logits=True
    )
    return ops.sum(per_pixel, axis=-1)


def build_model(num_pixels, schedule, seed):
    images = keras.Input((num_pixels,))
    hidden = keras.layers.Dense(512, activation="relu")(images)
    hidden = keras.layers.Dense(256, activation="relu")(hidden)
    logits = keras.layers.Dense(NUM_VARIABLES * NUM_CATEGORIES)(hidden)
    latent = GumbelSoftmaxSampling(schedule, seed)(logits)
    hidden = keras.layers.Flatten()(latent)
    hidden = keras.layers.Dense(256, activation="relu")(hidden)
    hidden = keras.layers.Dense(512, activation="relu")(hidden)
    pixel_logits = keras.layers.Dense(num_pixels)(hidden)
    return keras.Model(images, pixel_logits)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset", choices=image_datasets.DATASET_NAMES, default="digits"
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-json", help="also write the summary here")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    return args


def main(argv=None):
    args = parse_arguments(argv)
    keras.utils.set_random_seed(args.seed)
    (x_train, _), (x_test, _) = image_datasets.load_images(args.dataset)
    total_steps = args.epochs * math.ceil(len(x_train) / BATCH_SIZE)
    schedule = categorical_vae.temperature_schedule(
        total_steps, INITIAL_TEMPERATURE, MINIMUM_TEMPERATURE
    )
    model = build_model(x_train.shape[-1], schedule, args.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=summed_binary_crossentropy,
    )
    timer = training_timer.TrainingTimer()
    history = model.fit(
        x_train,
        x_train,
        batch_size=BATCH_SIZE,
        epochs=args.epochs,
        validation_data=(x_test, x_test),
        callbacks=[timer],
        verbose=2,
    )
    summary = {
        "framework": f"keras-{keras.backend.backend()}",
        "dataset": args.dataset,
        "epochs": args.epochs,
        "seed": args.seed,
        "train_loss": [round(loss, 4) for loss in history.history["loss"]],
        "test_neg_elbo": round(history.history["val_loss"][-1], 4),
        "seconds_per_epoch": [round(s, 3) for s in timer.seconds],
        "cpu_seconds_per_epoch": [round(s, 3) for s in timer.cpu_seconds],
    }
    line = json.dumps(summary)
    print(line)
    if args.output_json:
        with open(args.output_json, "w") as file:
            file.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
