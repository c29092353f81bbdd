"""Schedules for the temperature and KL weight of keras-latent layers."""

import math

import keras

from keras_latent import validation
from keras_latent.layers.latent_layer import LatentLayer
from keras_latent.layers.relaxed_layer import RelaxedLayer


class _LayerSchedule(keras.callbacks.Callback):
    """Base class: finds the target layers and counts training steps.

    The step count starts from the optimizer's `iterations` when training
    begins, so that a second `fit` call continues the schedule.
    """

    layer_class = RelaxedLayer

    def __init__(self, layers=None):
        super().__init__()
        if layers is not None:
            layers = list(layers)
            for layer in layers:
                if not isinstance(layer, self.layer_class):
                    raise ValueError(
                        "Invalid value received for argument `layers`. "
                        "Expected keras-latent layers of type "
                        f"{self.layer_class.__name__}. Received: {layer!r}"
                    )
        self._given_layers = layers
        self.step = 0

    def target_layers(self):
        if self._given_layers is not None:
            return self._given_layers
        return [
            layer
            for layer in self.model._flatten_layers(include_self=False)
            if isinstance(layer, self.layer_class)
        ]

    def on_train_begin(self, logs=None):
        self.layers = self.target_layers()
        if not self.layers:
            raise ValueError(
                f"{type(self).__name__} found no {self.layer_class.__name__} "
                "layer in the model; pass `layers=` or add one."
            )
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            self.step = int(keras.ops.convert_to_numpy(optimizer.iterations))

    def assign(self, variables_and_values):
        """Assigns values to variables, also in the middle of a JAX epoch.

        The JAX trainer keeps the model state outside the variables during
        an epoch; syncing it first and leaving it marked as synced makes
        the next train step read the new values.
        """
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        for variable, value in variables_and_values:
            variable.assign(value)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1


class TemperatureAnnealing(_LayerSchedule):
    """Anneals the temperature of keras-latent layers during training.

    Every `update_every` training steps the temperature of each target layer
    is set to `max(minimum, initial * exp(-rate * step))`, the schedule of
    Jang et al. 2017 (who anneal from 1.0 to 0.5 with rate 1e-5 to 1e-4,
    every 1000 steps). The value is written to the layers' temperature
    variables, so it takes effect inside compiled train steps and is saved
    with the model. The current temperature appears in the logs as
    `temperature`.

    Args:
        initial: the temperature at step 0, a finite float > 0.
        minimum: the lowest temperature, a finite float > 0.
        rate: the decay rate per step, a finite float >= 0.
        update_every: the number of steps between updates, an integer >= 1.
        layers: the layers to anneal (`GumbelSoftmax`, `CategoricalLatent`,
            `BernoulliLatent`); by default every such layer in the model.

    Example:

    >>> annealing = keras_latent.callbacks.TemperatureAnnealing(
    ...     initial=1.0, minimum=0.5, rate=3e-5, update_every=1000)
    >>> annealing.temperature_at(0), annealing.temperature_at(100000)
    (1.0, 0.5)

    References:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
    """

    def __init__(
        self,
        initial: float = 1.0,
        minimum: float = 0.5,
        rate: float = 3e-5,
        update_every: int = 1000,
        layers=None,
    ):
        super().__init__(layers)
        self.initial = validation.check_positive_float("initial", initial)
        self.minimum = validation.check_positive_float("minimum", minimum)
        self.rate = validation.check_non_negative_float("rate", rate)
        self.update_every = validation.check_integer(
            "update_every", update_every, minimum=1
        )
        self.temperature = self.initial

    def temperature_at(self, step):
        """The scheduled temperature at a training step."""
        return max(self.minimum, self.initial * math.exp(-self.rate * step))

    def on_train_batch_begin(self, batch, logs=None):
        if self.step % self.update_every == 0:
            self.temperature = self.temperature_at(self.step)
            self.assign(
                (layer.temperature, self.temperature) for layer in self.layers
            )

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if logs is not None:
            logs["temperature"] = self.temperature

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["temperature"] = self.temperature


class KLWarmup(_LayerSchedule):
    """Raises the KL weight of latent layers linearly from 0 (KL warm-up).

    At training step `s` the KL weight of each target layer is
    `min(1, s / warmup_steps) * w`, where `w` is the `kl_weight` the layer
    was configured with. The value is written to the layers' `kl_weight`
    variables, so it takes effect inside compiled train steps. Each layer's
    current weight appears in the logs as `<layer name>_kl_weight`.

    Args:
        warmup_steps: the number of steps to reach the full weight, an
            integer >= 1.
        layers: the layers to warm up (`CategoricalLatent`,
            `BernoulliLatent`); by default every such layer in the model.

    Example:

    >>> warmup = keras_latent.callbacks.KLWarmup(warmup_steps=1000)
    >>> warmup.fraction_at(250)
    0.25

    References:
        - [Bowman et al., 2016](https://arxiv.org/abs/1511.06349)
        - [Sønderby et al., 2016](https://arxiv.org/abs/1602.02282)
    """

    layer_class = LatentLayer

    def __init__(self, warmup_steps: int, layers=None):
        super().__init__(layers)
        self.warmup_steps = validation.check_integer(
            "warmup_steps", warmup_steps, minimum=1
        )
        self._fraction = None

    def fraction_at(self, step):
        """The fraction of the configured KL weight at a training step."""
        return min(1.0, step / self.warmup_steps)

    def on_train_batch_begin(self, batch, logs=None):
        fraction = self.fraction_at(self.step)
        if fraction != self._fraction:
            self._fraction = fraction
            self.assign(
                (layer.kl_weight, fraction * layer.initial_kl_weight)
                for layer in self.layers
            )

    def _log_weights(self, logs):
        if logs is not None:
            for layer in self.layers:
                logs[f"{layer.name}_kl_weight"] = (
                    self._fraction * layer.initial_kl_weight
                )

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        self._log_weights(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._log_weights(logs)
