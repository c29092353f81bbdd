"""The training time of each epoch of `fit`, the test pass left out."""

import time

import keras


class TrainingTimer(keras.callbacks.Callback):
    """Records each epoch's training seconds, elapsed and of CPU time.

    `fit` runs its test pass (`validation_data`) at the end of an epoch;
    the time up to the start of that pass is the epoch's training time.
    An epoch without a test pass counts whole. `seconds` and `cpu_seconds`
    hold one number per epoch; CPU time counts every thread of the
    process, so it stays meaningful on a machine busy with other work.
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.cpu_seconds = []
        self._start = None
        self._training = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.perf_counter(), time.process_time())
        self._training = None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._training is None:
            self._training = self._elapsed()

    def on_epoch_end(self, epoch, logs=None):
        seconds, cpu_seconds = self._training or self._elapsed()
        self.seconds.append(seconds)
        self.cpu_seconds.append(cpu_seconds)
        self._start = None

    def _elapsed(self):
        self._wait_for_training()
        start, start_cpu = self._start
        return time.perf_counter() - start, time.process_time() - start_cpu

    def _wait_for_training(self):
        """Waits until the training steps already launched are done.

        JAX runs them asynchronously: `fit` can reach the test pass while
        the last steps still compute, and a clock read then would leave
        them out. The optimizer's step count is an output of the last
        step; reading it waits for that step (once per epoch).
        """
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            keras.ops.convert_to_numpy(optimizer.iterations)
