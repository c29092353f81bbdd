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
