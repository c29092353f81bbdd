"""The epoch timer of the examples, `examples/training_timer.py`."""

import keras
import numpy as np

from tests import example_modules


def test_each_epoch_gets_its_training_seconds_without_the_test_pass():
    training_timer = example_modules.load("training_timer")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((8, 3), "float32")
    y = np.zeros((8, 1), "float32")
    timer = training_timer.TrainingTimer()
    model.fit(
        x, y, epochs=2, validation_data=(x, y), verbose=0, callbacks=[timer]
    )
    assert len(timer.seconds) == len(timer.cpu_seconds) == 2
    assert all(seconds > 0 for seconds in timer.seconds)
    assert all(seconds >= 0 for seconds in timer.cpu_seconds)
    # A test pass outside `fit` records nothing.
    model.evaluate(x, y, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 2


def test_the_clock_is_read_after_the_launched_steps_are_done(monkeypatch):
    """JAX runs steps asynchronously; the timer reads the optimizer's step
    count, an output of the last step, before it reads the clock."""
    training_timer = example_modules.load("training_timer")
    events = []
    monkeypatch.setattr(
        training_timer.keras.ops,
        "convert_to_numpy",
        lambda value: events.append("waited"),
    )
    monkeypatch.setattr(
        training_timer.time,
        "perf_counter",
        lambda: events.append("clock") or 0.0,
    )
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    timer = training_timer.TrainingTimer()
    timer.set_model(model)
    timer.on_epoch_begin(0)
    events.clear()
    timer.on_test_begin()
    assert events[:2] == ["waited", "clock"]
