"""Schedules: values against NumPy formulas, checks, configs, and how the
layers follow them inside compiled train steps, from their step counter."""

import math
import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_latent import schedules
from keras_latent.layers import BernoulliLatent
from keras_latent.layers import CategoricalLatent
from keras_latent.layers import GumbelSoftmax
from tests import schedule_probes as probes
from tests.arrays import to_numpy

STEPS = np.arange(0, 40)


def numpy_exponential_decay(step, initial, minimum, rate, update_every):
    last_update = update_every * (step // update_every)
    return np.maximum(minimum, initial * np.exp(-rate * last_update))


def numpy_linear_warmup(step, warmup_steps, start, end):
    return start + (end - start) * np.minimum(1.0, step / warmup_steps)


def numpy_piecewise_constant(step, boundaries, values):
    return np.asarray(values)[np.searchsorted(boundaries, step, "right")]


def numpy_cosine_decay(step, decay_steps, initial, minimum):
    progress = np.minimum(step, decay_steps) / decay_steps
    return minimum + (initial - minimum) * (1 + np.cos(np.pi * progress)) / 2


SCHEDULES = [
    (
        schedules.ExponentialDecay,
        {"initial": 2.0, "minimum": 0.3, "rate": 0.07, "update_every": 1},
        numpy_exponential_decay,
    ),
    (
        schedules.ExponentialDecay,
        {"initial": 1.0, "minimum": 0.5, "rate": 0.04, "update_every": 6},
        numpy_exponential_decay,
    ),
    (
        schedules.LinearWarmup,
        {"warmup_steps": 25, "start": 0.0, "end": 3.0},
        numpy_linear_warmup,
    ),
    (
        schedules.LinearWarmup,
        {"warmup_steps": 7, "start": 2.0, "end": 0.25},
        numpy_linear_warmup,
    ),
    (
        schedules.PiecewiseConstant,
        {"boundaries": [1, 10, 30], "values": [5.0, 0.7, 0.4, 0.1]},
        numpy_piecewise_constant,
    ),
    (
        schedules.CosineDecay,
        {"decay_steps": 33, "initial": 1.5, "minimum": 0.2},
        numpy_cosine_decay,
    ),
]
SCHEDULE_IDS = [
    "exponential",
    "exponential-every-6",
    "warmup",
    "ramp-down",
    "piecewise",
    "cosine",
]


@pytest.mark.parametrize(
    "schedule_class, arguments, reference", SCHEDULES, ids=SCHEDULE_IDS
)
def test_schedule_values_match_the_numpy_formula(
    schedule_class, arguments, reference
):
    schedule = schedule_class(**arguments)
    expected = reference(STEPS.astype("float64"), **arguments)
    values = [to_numpy(schedule(int(step))) for step in STEPS]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-7)
    # The step a layer passes: an integer variable.
    counter = keras.Variable(17, dtype="int32", trainable=False)
    value = schedule(counter)
    assert ops.dtype(value) == "float32" and ops.shape(value) == ()
    np.testing.assert_allclose(to_numpy(value), expected[17], rtol=1e-6)


@pytest.mark.parametrize(
    "schedule_class, arguments, reference", SCHEDULES, ids=SCHEDULE_IDS
)
def test_schedule_config_round_trips(schedule_class, arguments, reference):
    schedule = schedule_class(**arguments)
    assert schedule.get_config() == arguments
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert type(restored) is schedule_class
    assert restored.get_config() == arguments
    np.testing.assert_array_equal(
        to_numpy(restored(11)), to_numpy(schedule(11))
    )


@pytest.mark.parametrize("total_steps", [7, 150, 1500, 23_456])
@pytest.mark.parametrize("update_every", [1, 5])
def test_reaching_minimum_at_reaches_the_floor_at_that_step(
    total_steps, update_every
):
    """In float32, whatever the run length: the value in force after the
    run is the floor, and the last update before it is above it."""
    schedule = schedules.ExponentialDecay.reaching_minimum_at(
        total_steps, initial=1.0, minimum=0.37, update_every=update_every
    )
    assert to_numpy(schedule(total_steps)) == np.float32(0.37)
    last_update = update_every * (total_steps // update_every)
    assert to_numpy(schedule(last_update - 1)) > 0.37 * (1 + 1e-6)
    assert to_numpy(schedule(0)) == 1.0


def received(name, value):
    """The regex of the end of a Keras argument error."""
    return re.escape(f"`{name}`") + ".*" + re.escape(f"{name}={value!r}")


@pytest.mark.parametrize(
    "schedule_class, arguments, name, value",
    [
        (schedules.ExponentialDecay, {}, "initial", 0.0),
        (schedules.ExponentialDecay, {}, "initial", float("nan")),
        (schedules.ExponentialDecay, {}, "initial", 1e39),
        (schedules.ExponentialDecay, {}, "minimum", 1e-40),
        (schedules.ExponentialDecay, {"initial": 0.5}, "minimum", 1.0),
        (schedules.ExponentialDecay, {}, "rate", -0.1),
        (schedules.ExponentialDecay, {}, "update_every", 0),
        (schedules.ExponentialDecay, {}, "update_every", 2.0),
        (schedules.LinearWarmup, {}, "warmup_steps", 0),
        (schedules.LinearWarmup, {"warmup_steps": 5}, "start", -1.0),
        (schedules.LinearWarmup, {"warmup_steps": 5}, "end", float("inf")),
        (schedules.LinearWarmup, {"warmup_steps": 5}, "end", "1"),
        (schedules.CosineDecay, {}, "decay_steps", True),
        (schedules.CosineDecay, {"decay_steps": 5}, "minimum", 2.0),
        (
            schedules.PiecewiseConstant,
            {"values": [1.0, 0.5, 0.2]},
            "boundaries",
            [10, 10],
        ),
        (
            schedules.PiecewiseConstant,
            {"values": [1.0, 0.5]},
            "boundaries",
            0,
        ),
        (
            schedules.PiecewiseConstant,
            {"boundaries": [10]},
            "values",
            [1.0, 0.5, 0.2],
        ),
    ],
)
def test_schedules_reject_invalid_arguments(
    schedule_class, arguments, name, value
):
    if schedule_class is schedules.PiecewiseConstant and name == "boundaries":
        arguments = {**arguments, "boundaries": np.atleast_1d(value).tolist()}
    else:
        arguments = {**arguments, name: value}
    with pytest.raises(ValueError, match=received(name, value)):
        schedule_class(**arguments)


def test_reaching_minimum_at_rejects_a_run_shorter_than_an_update():
    with pytest.raises(ValueError, match=received("steps", 4)):
        schedules.ExponentialDecay.reaching_minimum_at(
            4, initial=1.0, minimum=0.5, update_every=5
        )


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_step_boundaries_hold_past_float32_integers(dtype):
    """Beyond 2**24 steps float32 no longer holds every step: a boundary
    at 20,000,001 or an update every 1,000 steps is still met at the very
    step, from the layers' integer counter or a Python integer (beyond
    int32 too)."""
    piecewise = schedules.PiecewiseConstant([20_000_001], [1.0, 0.5])
    decay = schedules.ExponentialDecay(1.0, 1e-30, 1e-7, update_every=1000)
    counters = [
        (step, keras.Variable(step, dtype=dtype, trainable=False))
        for step in (20_000_000, 20_000_001, 20_000_999, 20_001_000)
    ]
    python_integers = [
        (step, step) for step in (20_000_000, 20_000_999, 20_001_000, 3 * 10**9)
    ]
    for step, given in counters + python_integers:
        expected = numpy_piecewise_constant(step, [20_000_001], [1.0, 0.5])
        assert float(to_numpy(piecewise(given))) == expected
        np.testing.assert_allclose(
            to_numpy(decay(given)),
            numpy_exponential_decay(step, 1.0, 1e-30, 1e-7, 1000),
            rtol=1e-6,
        )


# The layers.

LAYERS = {
    "gumbel": lambda **kwargs: GumbelSoftmax(seed=1, **kwargs),
    "categorical": lambda **kwargs: CategoricalLatent(2, 3, seed=1, **kwargs),
    "bernoulli": lambda **kwargs: BernoulliLatent(seed=1, **kwargs),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -1.0,
        1e-40,
        1e39,
        "0.5",
        None,
        schedules.LinearWarmup(10, start=0.0, end=1.0),
        schedules.CosineDecay(10, initial=1.0),
    ],
    ids=str,
)
def test_layers_reject_a_temperature_that_is_not_positive(kind, value):
    with pytest.raises(ValueError, match=received("temperature", value)):
        LAYERS[kind](temperature=value)


@pytest.mark.parametrize("kind", ["categorical", "bernoulli"])
@pytest.mark.parametrize("value", [-0.5, float("nan"), 1e39, "1"], ids=str)
def test_latent_layers_reject_an_invalid_kl_weight(kind, value):
    with pytest.raises(ValueError, match=received("kl_weight", value)):
        LAYERS[kind](kl_weight=value)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_scheduled_values_are_fixed_at_construction(kind):
    layer = LAYERS[kind](temperature=schedules.LinearWarmup(4, 1.0, 0.5))
    with pytest.raises(AttributeError, match="set at construction"):
        layer.temperature = 0.3
    if kind != "gumbel":
        with pytest.raises(AttributeError, match="set at construction"):
            layer.kl_weight = 0.3


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_config_round_trips_its_schedules(kind):
    arguments = {"temperature": schedules.ExponentialDecay(2.0, 0.5, 0.01)}
    if kind != "gumbel":
        arguments["kl_weight"] = schedules.PiecewiseConstant([3], [0.0, 1.0])
    layer = LAYERS[kind](**arguments)
    config = layer.get_config()
    assert (
        config["temperature"]["config"] == arguments["temperature"].get_config()
    )
    for restored in (
        type(layer).from_config(config),
        keras.layers.deserialize(keras.layers.serialize(layer)),
    ):
        for name, schedule in arguments.items():
            assert getattr(restored, name) == schedule
        assert restored.get_config() == config


def test_layer_takes_a_keras_learning_rate_schedule(rng):
    decay = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=2.0, decay_steps=4, decay_rate=0.5
    )
    layer = CategoricalLatent(2, 3, kl_weight=decay, seed=1)
    logits = rng.normal(size=(4, 6)).astype("float32")
    for _ in range(6):
        layer(logits, training=True)
    np.testing.assert_allclose(
        to_numpy(layer.current_kl_weight()), 2.0 * 0.5 ** (6 / 4), rtol=1e-6
    )
    assert type(layer.from_config(layer.get_config()).kl_weight) is type(decay)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_counter_advances_in_training_calls_only(kind, rng):
    layer = LAYERS[kind](temperature=schedules.ExponentialDecay(1.0, 0.5, 0.1))
    logits = rng.normal(size=(4, 6)).astype("float32")
    layer(logits, training=False)
    for _ in range(3):
        layer(logits, training=True)
    layer(logits)
    assert to_numpy(layer.iterations) == 3
    np.testing.assert_allclose(
        to_numpy(layer.current_temperature()), math.exp(-0.3), rtol=1e-6
    )
    model = keras.Sequential([keras.Input((6,)), layer])
    model.compile(loss="mse")
    model.predict(logits, verbose=0)
    model.evaluate(logits, model.predict(logits, verbose=0), verbose=0)
    assert to_numpy(layer.iterations) == 3


def test_compiled_fit_follows_a_temperature_schedule():
    """The temperature each step used, measured from its samples, is the
    schedule at steps 0, 1, ...; a second `fit` continues it."""
    schedule = schedules.ExponentialDecay(4.0, 0.4, rate=0.3, update_every=1)
    model, relaxed = probes.temperature_probe(schedule)
    logs = probes.BatchLogs()
    x, y = probes.probe_data(3)
    fit = {"batch_size": probes.BATCH_SIZE, "verbose": 0, "callbacks": [logs]}
    model.fit(x, y, epochs=2, **fit)
    model.fit(x[: 2 * probes.BATCH_SIZE], y[: 2 * probes.BATCH_SIZE], **fit)
    expected = numpy_exponential_decay(np.arange(8.0), **schedule.get_config())
    measured = probes.measured_temperatures(logs.per_log("mean_abs_logit"))
    np.testing.assert_allclose(measured, expected, rtol=probes.MEASUREMENT_RTOL)
    assert to_numpy(relaxed.iterations) == 8
    np.testing.assert_allclose(
        to_numpy(relaxed.current_temperature()),
        numpy_exponential_decay(8.0, **schedule.get_config()),
        rtol=1e-6,
    )


def test_compiled_fit_follows_a_kl_weight_schedule(rng):
    """The loss of each step is exactly weight(step) * KL, with the KL
    computed here in float64 from the frozen encoder's logits."""
    schedule = schedules.PiecewiseConstant([2, 3], [0.5, 2.0, 0.0])
    model, latent = probes.kl_probe(schedule)
    logs = probes.BatchLogs()
    x, y = probes.kl_probe_data(rng, steps=5)
    model.fit(x, y, callbacks=[logs], **probes.KL_PROBE_FIT)

    logits = to_numpy(model.layers[1](x[:8])).reshape(8, 3, 4)
    log_q = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    kl = np.mean(np.sum(np.exp(log_q) * (log_q + np.log(4.0)), (-1, -2)))
    expected = np.array([0.5, 0.5, 2.0, 0.0, 0.0]) * kl
    np.testing.assert_allclose(
        logs.per_log("loss"), expected, rtol=1e-4, atol=1e-6
    )
    assert to_numpy(latent.iterations) == 5


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="the torch trainer takes steps_per_execution=1 only",
)
def test_schedule_advances_one_step_per_step_under_steps_per_execution():
    """4 steps per execution, 3 executions: the counter reaches 12, and the
    mean temperature each execution used is that of its 4 steps."""
    schedule = schedules.ExponentialDecay(4.0, 0.1, rate=0.15)
    model, relaxed = probes.temperature_probe(schedule, steps_per_execution=4)
    logs = probes.BatchLogs()
    x, y = probes.probe_data(12)
    model.fit(x, y, batch_size=probes.BATCH_SIZE, verbose=0, callbacks=[logs])
    assert to_numpy(relaxed.iterations) == 12
    per_step = probes.MEAN_ABS_LOGISTIC / numpy_exponential_decay(
        np.arange(12.0), **schedule.get_config()
    )
    np.testing.assert_allclose(
        logs.per_log("mean_abs_logit", steps_per_log=4),
        per_step.reshape(3, 4).mean(axis=1),
        rtol=probes.MEASUREMENT_RTOL,
    )


def test_a_layer_called_twice_per_step_advances_twice():
    """The documented rule for shared layers: each call is a step of the
    schedule, so train step s uses the values at 2s and 2s + 1 (in the
    order in which the graph runs the two calls)."""
    schedule = schedules.ExponentialDecay(4.0, 0.1, rate=0.15)
    model, relaxed = probes.shared_temperature_probe(schedule)
    logs = probes.BatchLogs()
    x, y = probes.probe_data(3)
    model.fit(
        [x, x],
        {"first": y, "second": y},
        batch_size=probes.BATCH_SIZE,
        verbose=0,
        callbacks=[logs],
    )
    assert to_numpy(relaxed.iterations) == 6
    measured = np.stack(
        [
            probes.measured_temperatures(logs.per_log(f"{name}_mean_abs_logit"))
            for name in ("first", "second")
        ]
    )
    expected = numpy_exponential_decay(np.arange(6.0), **schedule.get_config())
    # The schedule decreases: the higher temperature of a step is at 2s.
    np.testing.assert_allclose(
        np.max(measured, axis=0), expected[0::2], rtol=probes.MEASUREMENT_RTOL
    )
    np.testing.assert_allclose(
        np.min(measured, axis=0), expected[1::2], rtol=probes.MEASUREMENT_RTOL
    )


def test_reloaded_model_resumes_its_schedules(tmp_path, rng):
    """`.keras` save after 5 steps and load with safe_mode: the counter and
    the schedules come back, and training goes on from step 5."""
    model, latent = probes.kl_probe(schedules.LinearWarmup(8, end=2.0))
    x, y = probes.kl_probe_data(rng, steps=5)
    model.fit(x, y, **probes.KL_PROBE_FIT)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    layer = reloaded.get_layer("latent")
    assert to_numpy(layer.iterations) == 5
    assert layer.kl_weight == schedules.LinearWarmup(8, end=2.0)
    np.testing.assert_allclose(to_numpy(layer.current_kl_weight()), 1.25)
    reloaded.fit(x[:16], y[:16], **probes.KL_PROBE_FIT)
    assert to_numpy(layer.iterations) == 7
    np.testing.assert_allclose(to_numpy(layer.current_kl_weight()), 1.75)
