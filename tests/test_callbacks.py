"""Tests of `TemperatureAnnealing` and `KLWarmup` inside `fit`.

Each schedule is checked three ways: the layer's variable after `fit`
against the formula written here, the value in the logs, and the value
that the compiled train step actually used, read back from what the step
computed (on JAX too, where the trainer keeps the state outside the
variables during an epoch).
"""

import math
import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_latent.callbacks import KLWarmup
from keras_latent.callbacks import TemperatureAnnealing
from keras_latent.layers import CategoricalLatent
from keras_latent.layers import GumbelSoftmax
from keras_latent.models import LatentModel
from tests.arrays import to_numpy

# Each training step draws BATCH_SIZE * NUM_VARIABLES binary relaxed samples.
BATCH_SIZE = 256
NUM_VARIABLES = 64
# E|X| for a standard logistic X, the difference of two standard Gumbels.
MEAN_ABS_LOGISTIC = 2.0 * math.log(2.0)


class EpochBatchLogs(keras.callbacks.Callback):
    """Records the logs of every training batch, grouped by epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1].append({key: float(logs[key]) for key in logs})

    def per_step(self, key):
        """Per-step values of a metric logged as a running mean, which
        restarts every epoch (equal batch sizes)."""
        values = []
        for batches in self.epochs:
            means = np.array([logs[key] for logs in batches])
            totals = means * np.arange(1, len(means) + 1)
            values.extend(np.diff(totals, prepend=0.0))
        return np.array(values)

    def logged(self, key):
        return np.array(
            [logs[key] for batches in self.epochs for logs in batches]
        )


def mean_abs_logit(y_true, y_pred):
    """mean |log y_1 - log y_2| over the variables of each example.

    A two-category Gumbel-softmax sample at zero logits has
    log y_1 - log y_2 = (g_1 - g_2) / t, so this metric's expectation is
    2 log 2 / t: it measures the temperature the step used."""
    log_ratio = ops.log(y_pred[..., 0]) - ops.log(y_pred[..., 1])
    return ops.mean(ops.abs(log_ratio), axis=-1)


def temperature_probe():
    """Zero logits (a Dense layer with zero weights and learning rate 0)
    into a GumbelSoftmax layer over 2 categories."""
    inputs = keras.Input((NUM_VARIABLES, 1))
    logits = keras.layers.Dense(2, kernel_initializer="zeros")(inputs)
    relaxed = GumbelSoftmax(temperature=5.0, seed=1, name="relaxed")
    model = keras.Model(inputs, relaxed(logits))
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss="mse",
        metrics=[mean_abs_logit],
    )
    return model, relaxed


def scheduled_temperature(step, initial, minimum, rate, update_every):
    """The temperature in force at `step`: set at the last update step."""
    last_update = update_every * (step // update_every)
    return max(minimum, initial * math.exp(-rate * last_update))


def test_temperature_annealing_follows_the_schedule_inside_the_train_step():
    """Two epochs of 3 steps, then a second `fit` of 4 steps with a new
    callback: the schedule continues from the optimizer's step count."""
    schedule = {"initial": 2.0, "minimum": 0.7, "rate": 0.15, "update_every": 2}
    model, relaxed = temperature_probe()
    x = np.ones((3 * BATCH_SIZE, NUM_VARIABLES, 1), "float32")
    y = np.zeros((3 * BATCH_SIZE, NUM_VARIABLES, 2), "float32")

    first, second = EpochBatchLogs(), EpochBatchLogs()
    history = model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=2,
        verbose=0,
        callbacks=[TemperatureAnnealing(**schedule), first],
    )
    expected_first = [scheduled_temperature(s, **schedule) for s in range(6)]
    np.testing.assert_allclose(
        to_numpy(relaxed.temperature), expected_first[-1], rtol=1e-6
    )
    np.testing.assert_allclose(first.logged("temperature"), expected_first)
    np.testing.assert_allclose(
        history.history["temperature"], [expected_first[2], expected_first[5]]
    )

    model.fit(
        x[: 2 * BATCH_SIZE],
        y[: 2 * BATCH_SIZE],
        batch_size=BATCH_SIZE,
        epochs=2,
        verbose=0,
        callbacks=[TemperatureAnnealing(layers=[relaxed], **schedule), second],
    )
    expected_second = [
        scheduled_temperature(s, **schedule) for s in range(6, 10)
    ]
    assert expected_second[-1] == schedule["minimum"]
    np.testing.assert_allclose(
        to_numpy(relaxed.temperature), expected_second[-1], rtol=1e-6
    )
    np.testing.assert_allclose(second.logged("temperature"), expected_second)

    # The temperature the step used, 2 log 2 / mean|logit|, from 16,384
    # draws per step: relative standard error 0.7%, tolerance 5%, while
    # successive scheduled values differ by 14% or more.
    used = MEAN_ABS_LOGISTIC / np.concatenate(
        [first.per_step("mean_abs_logit"), second.per_step("mean_abs_logit")]
    )
    np.testing.assert_allclose(
        used, expected_first + expected_second, rtol=0.05
    )


def kl_probe(kl_weight):
    """A frozen encoder into a CategoricalLatent layer, and a decoder whose
    output is exactly 0 (zero weights, learning rate 0): the loss of a step
    is exactly kl_weight * KL."""
    inputs = keras.Input((6,))
    latent = CategoricalLatent(3, 4, kl_weight=kl_weight, name="latent")
    code = latent(keras.layers.Dense(12)(inputs))
    outputs = keras.layers.Dense(1, kernel_initializer="zeros")(
        keras.layers.Flatten()(code)
    )
    model = LatentModel(inputs, outputs)  # logs latent_kl
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    return model, latent


def test_kl_warmup_raises_the_weight_linearly_inside_the_train_step(rng):
    """A `fit` of 3 steps, then a second one of 3 steps with a new callback:
    the warm-up continues from the optimizer's step count."""
    model, latent = kl_probe(kl_weight=2.0)
    # Every batch holds the same 8 examples, so every step has the same KL.
    x = np.tile(rng.normal(size=(8, 6)).astype("float32"), (3, 1))
    y = np.zeros((24, 1), "float32")
    recorder = EpochBatchLogs()
    expected = [2.0 * min(1.0, step / 4) for step in range(6)]

    fit_arguments = {"batch_size": 8, "shuffle": False, "verbose": 0}
    model.fit(x, y, callbacks=[KLWarmup(4), recorder], **fit_arguments)
    np.testing.assert_allclose(to_numpy(latent.kl_weight), expected[2])
    history = model.fit(
        x,
        y,
        callbacks=[KLWarmup(4, layers=[latent]), recorder],
        **fit_arguments,
    )
    np.testing.assert_allclose(to_numpy(latent.kl_weight), expected[5])
    np.testing.assert_allclose(recorder.logged("latent_kl_weight"), expected)
    np.testing.assert_allclose(history.history["latent_kl_weight"], [2.0])

    kl = recorder.logged("latent_kl")
    assert kl[0] > 0.1
    np.testing.assert_allclose(kl, kl[0], rtol=1e-5)
    used = recorder.per_step("loss") / kl[0]
    np.testing.assert_allclose(used, expected, rtol=1e-4, atol=1e-5)


def received(name, value):
    """The regex of the end of a Keras argument error."""
    return re.escape(f"`{name}`") + ".*" + re.escape(f"{name}={value!r}")


@pytest.mark.parametrize(
    "name, value",
    [
        ("initial", 0.0),
        ("initial", float("nan")),
        ("minimum", -1.0),
        ("minimum", float("inf")),
        ("rate", -0.1),
        ("update_every", 0),
        ("update_every", 1.5),
    ],
)
def test_temperature_annealing_rejects_invalid_arguments(name, value):
    with pytest.raises(ValueError, match=received(name, value)):
        TemperatureAnnealing(**{name: value})


@pytest.mark.parametrize("value", [0, -5, 2.5, "10", True])
def test_kl_warmup_rejects_invalid_warmup_steps(value):
    with pytest.raises(ValueError, match=received("warmup_steps", value)):
        KLWarmup(warmup_steps=value)


def test_callbacks_reject_layers_of_the_wrong_type():
    dense = keras.layers.Dense(2)
    pattern = r"`layers`.*RelaxedLayer.*Received: <Dense"
    with pytest.raises(ValueError, match=pattern):
        TemperatureAnnealing(layers=[dense])
    pattern = r"`layers`.*LatentLayer.*Received: <GumbelSoftmax"
    with pytest.raises(ValueError, match=pattern):
        KLWarmup(warmup_steps=10, layers=[GumbelSoftmax()])


@pytest.mark.parametrize(
    "callback, layer, pattern",
    [
        (
            lambda: TemperatureAnnealing(),
            lambda: keras.layers.Activation("softmax"),
            "TemperatureAnnealing found no RelaxedLayer",
        ),
        (
            lambda: KLWarmup(warmup_steps=10),
            lambda: GumbelSoftmax(),
            "KLWarmup found no LatentLayer",
        ),
    ],
    ids=["annealing-without-relaxed-layer", "warmup-without-latent-layer"],
)
def test_callbacks_reject_a_model_without_target_layers(
    callback, layer, pattern
):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(3), layer()]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError, match=pattern):
        model.fit(x, x, verbose=0, callbacks=[callback()])
