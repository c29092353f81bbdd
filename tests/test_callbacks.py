"""Tests of `TemperatureAnnealing` and `KLWarmup` inside `fit`.

Each callback is checked by the values that the compiled train step used,
read back from what the step computed (see `tests.schedule_probes`), and by
the values in force that it logs at the end of each epoch.
"""

import re

import keras
import numpy as np
import pytest

from keras_latent import schedules
from keras_latent.callbacks import KLWarmup
from keras_latent.callbacks import TemperatureAnnealing
from keras_latent.layers import GumbelSoftmax
from tests import schedule_probes as probes
from tests.arrays import to_numpy


def scheduled_temperatures(steps, initial, minimum, rate, update_every):
    """The temperature of each step: set at the last update step."""
    last_update = update_every * (np.asarray(steps) // update_every)
    return np.maximum(minimum, initial * np.exp(-rate * last_update))


def test_temperature_annealing_follows_the_schedule_inside_the_train_step():
    """Two epochs of 3 steps, then a second `fit` of 4 steps with a new
    callback for the given layer: the schedule continues from the layer's
    step counter."""
    schedule = {"initial": 2.0, "minimum": 0.7, "rate": 0.15, "update_every": 2}
    model, relaxed = probes.temperature_probe(temperature=5.0)
    x, y = probes.probe_data(3)
    logs = probes.BatchLogs()
    fit = {"batch_size": probes.BATCH_SIZE, "verbose": 0}
    history = model.fit(
        x,
        y,
        epochs=2,
        callbacks=[TemperatureAnnealing(**schedule), logs],
        **fit,
    )
    np.testing.assert_allclose(
        history.history["temperature"],
        scheduled_temperatures([3, 6], **schedule),
        rtol=1e-6,
    )
    model.fit(
        x[: 2 * probes.BATCH_SIZE],
        y[: 2 * probes.BATCH_SIZE],
        epochs=2,
        callbacks=[TemperatureAnnealing(layers=relaxed, **schedule), logs],
        **fit,
    )
    expected = scheduled_temperatures(np.arange(10), **schedule)
    assert expected[-1] == schedule["minimum"]
    np.testing.assert_allclose(
        probes.measured_temperatures(logs.per_log("mean_abs_logit")),
        expected,
        rtol=probes.MEASUREMENT_RTOL,
    )
    assert to_numpy(relaxed.iterations) == 10
    assert relaxed.temperature == schedules.ExponentialDecay(**schedule)


def test_a_new_annealing_takes_effect_in_an_already_compiled_train_step():
    """A second `fit` with other arguments: the train step, compiled in the
    first `fit` with the first schedule, uses the second one."""
    model, relaxed = probes.temperature_probe(temperature=1.0)
    x, y = probes.probe_data(2)
    fit = {"batch_size": probes.BATCH_SIZE, "verbose": 0}
    first = {"initial": 3.0, "minimum": 3.0, "rate": 0.0, "update_every": 1}
    second = {"initial": 0.5, "minimum": 0.5, "rate": 0.0, "update_every": 1}
    logs = probes.BatchLogs()
    model.fit(x, y, callbacks=[TemperatureAnnealing(**first), logs], **fit)
    model.fit(x, y, callbacks=[TemperatureAnnealing(**second), logs], **fit)
    np.testing.assert_allclose(
        probes.measured_temperatures(logs.per_log("mean_abs_logit")),
        [3.0, 3.0, 0.5, 0.5],
        rtol=probes.MEASUREMENT_RTOL,
    )


def analytic_kl(model, x):
    """The mean KL of the kl probe's latent layer on `x`, in float64."""
    logits = to_numpy(model.layers[1](x)).reshape(len(x), 3, 4)
    log_q = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    return np.mean(np.sum(np.exp(log_q) * (log_q + np.log(4.0)), (-1, -2)))


def test_kl_warmup_raises_the_weight_linearly_inside_the_train_step(rng):
    """A `fit` of 3 steps, then a second one of 3 steps with a new callback:
    the warm-up continues from the layer's step counter, up to the layer's
    configured weight."""
    model, latent = probes.kl_probe(kl_weight=2.0)
    x, y = probes.kl_probe_data(rng, steps=3)
    logs = probes.BatchLogs()
    expected = [2.0 * min(1.0, step / 4) for step in range(6)]

    history = model.fit(
        x, y, callbacks=[KLWarmup(4), logs], **probes.KL_PROBE_FIT
    )
    np.testing.assert_allclose(history.history["latent_kl_weight"], [1.5])
    history = model.fit(
        x,
        y,
        callbacks=[KLWarmup(4, layers=[latent]), logs],
        **probes.KL_PROBE_FIT,
    )
    np.testing.assert_allclose(history.history["latent_kl_weight"], [2.0])
    assert latent.kl_weight == schedules.LinearWarmup(4, start=0.0, end=2.0)
    used = logs.per_log("loss") / analytic_kl(model, x[:8])
    np.testing.assert_allclose(used, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="the torch trainer takes steps_per_execution=1 only",
)
def test_callbacks_count_steps_not_batch_callbacks_under_steps_per_execution(
    rng,
):
    """8 steps in 2 executions of 4: the warm-up over 8 steps ends at the
    full weight, and each execution's mean weight is that of its steps."""
    model, latent = probes.kl_probe(kl_weight=1.0, steps_per_execution=4)
    x, y = probes.kl_probe_data(rng, steps=8)
    logs = probes.BatchLogs()
    history = model.fit(
        x, y, callbacks=[KLWarmup(8), logs], **probes.KL_PROBE_FIT
    )
    assert to_numpy(latent.iterations) == 8
    np.testing.assert_allclose(history.history["latent_kl_weight"], [1.0])
    weights = np.arange(8) / 8
    used = logs.per_log("loss", steps_per_log=4) / analytic_kl(model, x[:8])
    np.testing.assert_allclose(
        used, weights.reshape(2, 4).mean(axis=1), rtol=1e-4
    )


def test_temperature_annealing_logs_each_layer_when_their_steps_differ():
    """Two layers, one of which was trained alone before: their counters
    differ, so each layer's temperature in force is logged."""
    inputs = keras.Input((probes.NUM_VARIABLES, 1))
    logits = probes.zero_logits(inputs)
    first = GumbelSoftmax(seed=1, name="first")
    second = GumbelSoftmax(seed=2, name="second")
    model = probes.compile_frozen(
        keras.Model(inputs, [first(logits), second(logits)]),
        loss=["mse", "mse"],
    )
    x, y = probes.probe_data(2)
    first(keras.ops.zeros((1, 2)), training=True)
    schedule = {"initial": 2.0, "minimum": 0.1, "rate": 0.5, "update_every": 1}
    history = model.fit(
        x,
        [y, y],
        batch_size=probes.BATCH_SIZE,
        verbose=0,
        callbacks=[TemperatureAnnealing(**schedule)],
    )
    assert "temperature" not in history.history
    for name, steps in (("first", 3), ("second", 2)):
        np.testing.assert_allclose(
            history.history[f"{name}_temperature"],
            scheduled_temperatures([steps], **schedule),
            rtol=1e-6,
        )


def received(name, value):
    """The regex of the end of a Keras argument error."""
    return re.escape(f"`{name}`") + ".*" + re.escape(f"{name}={value!r}")


@pytest.mark.parametrize(
    "arguments, name, value",
    [
        ({"initial": 0.0}, "initial", 0.0),
        ({"initial": float("nan")}, "initial", float("nan")),
        ({"minimum": -1.0}, "minimum", -1.0),
        ({"minimum": float("inf")}, "minimum", float("inf")),
        ({"initial": 0.5, "minimum": 1.0}, "minimum", 1.0),
        ({"rate": -0.1}, "rate", -0.1),
        ({"update_every": 0}, "update_every", 0),
        ({"update_every": 1.5}, "update_every", 1.5),
    ],
)
def test_temperature_annealing_rejects_invalid_arguments(
    arguments, name, value
):
    with pytest.raises(ValueError, match=received(name, value)):
        TemperatureAnnealing(**arguments)


@pytest.mark.parametrize("value", [0, -5, 2.5, "10", True])
def test_kl_warmup_rejects_invalid_warmup_steps(value):
    with pytest.raises(ValueError, match=received("warmup_steps", value)):
        KLWarmup(warmup_steps=value)


def test_callbacks_reject_layers_of_the_wrong_type():
    dense = keras.layers.Dense(2)
    pattern = r"`layers`.*RelaxedLayer.*Received: layers=<Dense"
    with pytest.raises(ValueError, match=pattern):
        TemperatureAnnealing(layers=[dense])
    pattern = r"`layers`.*LatentLayer.*Received: layers=<GumbelSoftmax"
    with pytest.raises(ValueError, match=pattern):
        KLWarmup(warmup_steps=10, layers=GumbelSoftmax())
    with pytest.raises(ValueError, match=r"`layers`.*Received: layers='all'"):
        TemperatureAnnealing(layers="all")


def test_callbacks_reject_a_layer_of_another_model():
    model, _ = probes.temperature_probe(temperature=1.0)
    _, other = probes.temperature_probe(temperature=1.0)
    x, y = probes.probe_data(1)
    pattern = r"`layers`.*layers of the model being trained.*Received"
    with pytest.raises(ValueError, match=pattern):
        model.fit(
            x, y, verbose=0, callbacks=[TemperatureAnnealing(layers=[other])]
        )
    assert other.temperature == 1.0


def test_kl_warmup_rejects_a_layer_with_a_kl_weight_schedule(rng):
    model, _ = probes.kl_probe(kl_weight=schedules.CosineDecay(10))
    x, y = probes.kl_probe_data(rng, steps=1)
    with pytest.raises(ValueError, match="has the schedule CosineDecay"):
        model.fit(x, y, callbacks=[KLWarmup(4)], **probes.KL_PROBE_FIT)


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
