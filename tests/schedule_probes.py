"""Models that reveal the temperature and KL weight a train step used.

`temperature_probe`: zero logits (a Dense layer with zero weights and
learning rate 0) into a `GumbelSoftmax` over 2 categories. A sample at zero
logits has log y_1 - log y_2 = (g_1 - g_2) / t, a standard logistic over t,
so the metric `mean_abs_logit` has the expectation 2 log 2 / t: it measures
the temperature t that the step used.

`kl_probe`: a frozen encoder into a `CategoricalLatent` and a decoder whose
output is exactly 0, so that the loss of a step is exactly kl_weight * KL.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_latent.layers import CategoricalLatent
from keras_latent.layers import GumbelSoftmax

# Each step of the temperature probe draws BATCH_SIZE * NUM_VARIABLES
# logistic variables: the relative standard error of `mean_abs_logit` is
# 0.845 / sqrt(16384) = 0.7%, and tests allow 5% (a false failure rate
# below 1e-12), while the scheduled values they tell apart differ by 14%
# or more.
BATCH_SIZE = 256
NUM_VARIABLES = 64
MEASUREMENT_RTOL = 0.05
# E|X| for a standard logistic X, the difference of two standard Gumbels.
MEAN_ABS_LOGISTIC = 2.0 * math.log(2.0)


class BatchLogs(keras.callbacks.Callback):
    """Records the logs of every `on_train_batch_end`, grouped by epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1].append({key: float(logs[key]) for key in logs})

    def per_log(self, key, steps_per_log=1):
        """The mean over the steps between two logs of a metric that is
        logged as a running mean restarting every epoch (equal batches)."""
        values = []
        for batches in self.epochs:
            means = np.array([logs[key] for logs in batches])
            totals = means * steps_per_log * np.arange(1, len(means) + 1)
            values.extend(np.diff(totals, prepend=0.0) / steps_per_log)
        return np.array(values)


def mean_abs_logit(y_true, y_pred):
    """mean |log y_1 - log y_2| over the variables of each example."""
    log_ratio = ops.log(y_pred[..., 0]) - ops.log(y_pred[..., 1])
    return ops.mean(ops.abs(log_ratio), axis=-1)


def measured_temperatures(mean_abs_logits):
    """The temperatures that steps used, from their `mean_abs_logit`."""
    return MEAN_ABS_LOGISTIC / np.asarray(mean_abs_logits)


def zero_logits(inputs):
    return keras.layers.Dense(2, kernel_initializer="zeros")(inputs)


def compile_frozen(model, **compile_arguments):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        **compile_arguments,
    )
    return model


def temperature_probe(temperature, steps_per_execution=1):
    """A model that measures its `GumbelSoftmax` layer's temperature."""
    inputs = keras.Input((NUM_VARIABLES, 1))
    relaxed = GumbelSoftmax(temperature=temperature, seed=1, name="relaxed")
    model = keras.Model(inputs, relaxed(zero_logits(inputs)))
    compile_frozen(
        model,
        loss="mse",
        metrics=[mean_abs_logit],
        steps_per_execution=steps_per_execution,
    )
    return model, relaxed


def shared_temperature_probe(temperature):
    """One `GumbelSoftmax` layer called twice per step, on two inputs."""
    first = keras.Input((NUM_VARIABLES, 1))
    second = keras.Input((NUM_VARIABLES, 1))
    relaxed = GumbelSoftmax(temperature=temperature, seed=1, name="relaxed")
    outputs = {
        "first": relaxed(zero_logits(first)),
        "second": relaxed(zero_logits(second)),
    }
    model = keras.Model([first, second], outputs)
    compile_frozen(
        model,
        loss={"first": "mse", "second": "mse"},
        metrics={"first": [mean_abs_logit], "second": [mean_abs_logit]},
    )
    return model, relaxed


def probe_data(steps):
    """Inputs and targets of the temperature probe for `steps` batches."""
    x = np.ones((steps * BATCH_SIZE, NUM_VARIABLES, 1), "float32")
    y = np.zeros((steps * BATCH_SIZE, NUM_VARIABLES, 2), "float32")
    return x, y


def kl_probe(kl_weight, steps_per_execution=1):
    """A model whose loss is exactly its latent layer's weighted KL."""
    inputs = keras.Input((6,))
    latent = CategoricalLatent(3, 4, kl_weight=kl_weight, name="latent")
    code = latent(keras.layers.Dense(12)(inputs))
    outputs = keras.layers.Dense(1, kernel_initializer="zeros")(
        keras.layers.Flatten()(code)
    )
    model = compile_frozen(
        keras.Model(inputs, outputs),
        loss="mse",
        steps_per_execution=steps_per_execution,
    )
    return model, latent


def kl_probe_data(rng, steps):
    """`steps` batches of 8 that all hold the same examples, so that every
    step has the same KL."""
    x = np.tile(rng.normal(size=(8, 6)).astype("float32"), (steps, 1))
    return x, np.zeros((8 * steps, 1), "float32")


KL_PROBE_FIT = {"batch_size": 8, "shuffle": False, "verbose": 0}
