"""Step time of a categorical VAE with scheduled vs constant values.

The same small model (64 pixels -> 256 -> 20 categorical variables of
10 categories -> 256 -> 64, batches of 100, Adam) is built once per
variant: a constant temperature and KL weight, each schedule of
`keras_latent.schedules` on the temperature or the KL weight, and the
`TemperatureAnnealing(update_every=1)` and `KLWarmup` callbacks. After one
epoch that compiles every variant, the rounds run one short epoch of each
variant in turn, in a rotated order, so that a slow spell of the machine
hits every variant alike. The table gives, for each variant, the fastest
time per step over the rounds (on a shared machine the least disturbed
measure) and its ratio to the constant's, and the median over rounds of
the ratio to the constant's epoch of the same round.

    KERAS_BACKEND=jax python benchmarks/schedule_overhead.py
    KERAS_BACKEND=tensorflow python benchmarks/schedule_overhead.py \
        --rounds 5

The data are random binary images: the figures are times, not fits.
"""

import argparse
import json
import statistics
import time

import keras
import numpy as np
import turns
from keras import ops

import keras_latent
from keras_latent import schedules

NUM_PIXELS = 64
NUM_VARIABLES = 20
NUM_CATEGORIES = 10
BATCH_SIZE = 100


def bernoulli_negative_log_likelihood(y_true, logits):
    """Binary cross-entropy with logits, summed over the pixels."""
    per_pixel = (
        ops.maximum(logits, 0.0)
        - logits * y_true
        + ops.log1p(ops.exp(-ops.abs(logits)))
    )
    return ops.sum(per_pixel, axis=-1)


def build_model(temperature=1.0, kl_weight=1.0, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((NUM_PIXELS,))
    hidden = keras.layers.Dense(256, activation="relu")(inputs)
    logits = keras.layers.Dense(NUM_VARIABLES * NUM_CATEGORIES)(hidden)
    codes = keras_latent.layers.CategoricalLatent(
        NUM_VARIABLES,
        NUM_CATEGORIES,
        temperature=temperature,
        kl_weight=kl_weight,
        seed=seed,
        name="latent",
    )(logits)
    hidden = keras.layers.Dense(256, activation="relu")(
        keras.layers.Flatten()(codes)
    )
    outputs = keras.layers.Dense(NUM_PIXELS)(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=bernoulli_negative_log_likelihood,
    )
    return model


def variants(total_steps):
    """Name -> (layer arguments, callbacks factory)."""
    no_callbacks = list
    decay = schedules.ExponentialDecay.reaching_minimum_at(
        total_steps, initial=1.0, minimum=0.5
    )
    return {
        "constant": ({}, no_callbacks),
        "ExponentialDecay temperature": ({"temperature": decay}, no_callbacks),
        "CosineDecay temperature": (
            {"temperature": schedules.CosineDecay(total_steps, 1.0, 0.5)},
            no_callbacks,
        ),
        "PiecewiseConstant temperature": (
            {
                "temperature": schedules.PiecewiseConstant(
                    [total_steps // 3, 2 * total_steps // 3], [1.0, 0.7, 0.5]
                )
            },
            no_callbacks,
        ),
        "LinearWarmup kl_weight": (
            {"kl_weight": schedules.LinearWarmup(total_steps)},
            no_callbacks,
        ),
        "both schedules": (
            {
                "temperature": decay,
                "kl_weight": schedules.LinearWarmup(total_steps),
            },
            no_callbacks,
        ),
        "TemperatureAnnealing(update_every=1) callback": (
            {},
            lambda: [
                keras_latent.callbacks.TemperatureAnnealing(
                    rate=decay.rate, update_every=1
                )
            ],
        ),
        "KLWarmup callback": (
            {},
            lambda: [keras_latent.callbacks.KLWarmup(total_steps)],
        ),
    }


class EpochTimer(keras.callbacks.Callback):
    """The seconds from the start to the end of the epoch (on JAX, the end
    comes after the trainer has synchronized the state)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def time_epoch(model, x, callbacks):
    timer = EpochTimer()
    model.fit(
        x,
        x,
        batch_size=BATCH_SIZE,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[*callbacks(), timer],
    )
    return timer.seconds


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--steps", type=int, default=20, help="train steps per epoch"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    x = (rng.random((args.steps * BATCH_SIZE, NUM_PIXELS)) < 0.3).astype(
        "float32"
    )
    total_steps = (args.rounds + 1) * args.steps
    runs = {
        name: (build_model(**arguments), callbacks)
        for name, (arguments, callbacks) in variants(total_steps).items()
    }
    for model, callbacks in runs.values():
        time_epoch(model, x, callbacks)

    names = list(runs)
    seconds = {name: [] for name in names}
    for name in turns.in_turns(names, args.rounds):
        model, callbacks = runs[name]
        seconds[name].append(time_epoch(model, x, callbacks))

    backend = keras.backend.backend()
    print(
        f"backend {backend}, {args.rounds} rounds of {args.steps} steps, "
        f"batch {BATCH_SIZE}"
    )
    print(
        f"{'variant':46} {'fastest ms/step':>15} {'ratio':>6} "
        f"{'median ratio':>12}"
    )
    summary = {"backend": backend, "rounds": args.rounds, "steps": args.steps}
    fastest_constant = min(seconds["constant"])
    for name in names:
        fastest = min(seconds[name])
        milliseconds = 1000 * fastest / args.steps
        ratio = fastest / fastest_constant
        median_ratio = statistics.median(
            np.array(seconds[name]) / np.array(seconds["constant"])
        )
        print(
            f"{name:46} {milliseconds:15.3f} {ratio:6.3f} {median_ratio:12.3f}"
        )
        summary[name] = {
            "fastest_ms_per_step": milliseconds,
            "ratio": ratio,
            "median_ratio": float(median_ratio),
        }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
