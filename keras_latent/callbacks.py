"""Callbacks that set the temperature and KL-weight schedules of layers.

They are conveniences over `keras_latent.schedules`: when training begins,
each callback gives its target layers a schedule, which the layers evaluate
inside the compiled train step at their own step counter. Nothing happens
from the host during an epoch; the values in force are logged once per
epoch, read from the layers' counters.
"""

import keras

from keras_latent import schedules
from keras_latent import validation
from keras_latent.layers.latent_layer import LatentLayer
from keras_latent.layers.relaxed_layer import RelaxedLayer


class _LayerScheduleCallback(keras.callbacks.Callback):
    """Base class: finds the target layers and installs their schedules.

    Subclasses name the layer class they accept, the scheduled argument,
    and the schedule of each layer (`schedule_for`).
    """

    layer_class = RelaxedLayer
    argument = "temperature"

    def __init__(self, layers=None):
        super().__init__()
        self._given_layers = None if layers is None else self._check(layers)

    def _check(self, layers):
        expected = (
            f"a keras-latent layer of type {self.layer_class.__name__} or a "
            "list of them"
        )
        if isinstance(layers, keras.layers.Layer):
            layers = [layers]
        elif isinstance(layers, (list, tuple)):
            layers = list(layers)
        else:
            raise validation.invalid_value("layers", expected, layers)
        for layer in layers:
            if not isinstance(layer, self.layer_class):
                raise validation.invalid_value("layers", expected, layer)
        return layers

    def target_layers(self):
        """The given layers, all in the model, or the model's own ones."""
        model_layers = self.model._flatten_layers(include_self=False)
        if self._given_layers is None:
            return [
                layer
                for layer in model_layers
                if isinstance(layer, self.layer_class)
            ]
        model_layer_ids = {id(layer) for layer in model_layers}
        for layer in self._given_layers:
            if id(layer) not in model_layer_ids:
                raise validation.invalid_value(
                    "layers",
                    f"layers of the model being trained ({self.model.name!r})",
                    layer,
                )
        return self._given_layers

    def schedule_for(self, layer):
        raise NotImplementedError

    def on_train_begin(self, logs=None):
        self.layers = self.target_layers()
        if not self.layers:
            raise ValueError(
                f"{type(self).__name__} found no {self.layer_class.__name__} "
                "layer in the model; pass `layers=` or add one."
            )
        changed = False
        for layer in self.layers:
            schedule = self.schedule_for(layer)
            if getattr(layer, self.argument) != schedule:
                layer._set_schedule(self.argument, schedule)
                changed = True
        if changed:
            # Compiled train and test steps read the schedule when they are
            # traced: trace them again with the new one.
            self.model.make_train_function(force=True)
            self.model.make_test_function(force=True)

    def in_force(self, layer):
        """The value of the layer's argument in force, as a Python float."""
        value = getattr(layer, f"current_{self.argument}")()
        return float(keras.ops.convert_to_numpy(value))


class TemperatureAnnealing(_LayerScheduleCallback):
    """Anneals the temperature of keras-latent layers during training.

    When training begins, the callback sets the temperature of each target
    layer to the schedule `keras_latent.schedules.ExponentialDecay(initial,
    minimum, rate, update_every)`: every `update_every` steps the
    temperature becomes `max(minimum, initial * exp(-rate * step))`, the
    schedule of Jang et al. 2017 (who anneal from 1.0 to 0.5 with rate 1e-5
    to 1e-4, every 1000 steps). It is the same as constructing the layers
    with that schedule: the layers evaluate it inside the compiled train
    step at their step counter (`layer.iterations`, one step per training
    call, so also per step under `steps_per_execution`), and the model is
    saved with it. A second `fit` continues from the counter.

    At the end of each epoch the temperature in force appears in the logs
    as `temperature`, or as `<layer name>_temperature` for each layer if the
    layers' counters differ.

    Args:
        initial: the temperature at step 0, a float > 0.
        minimum: the lowest temperature, a float > 0 and <= `initial`.
        rate: the decay rate per step, a float >= 0.
        update_every: the number of steps between updates, an integer >= 1.
        layers: a layer or a list of layers of the model to anneal
            (`GumbelSoftmax`, `CategoricalLatent`, `BernoulliLatent`); by
            default every such layer in the model.

    Example:

    >>> annealing = keras_latent.callbacks.TemperatureAnnealing(
    ...     initial=1.0, minimum=0.5, rate=3e-5, update_every=1000)
    >>> float(annealing.schedule(0)), float(annealing.schedule(100_000))
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
        self.schedule = schedules.ExponentialDecay(
            initial=initial,
            minimum=minimum,
            rate=rate,
            update_every=update_every,
        )

    def schedule_for(self, layer):
        return self.schedule

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        values = {layer.name: self.in_force(layer) for layer in self.layers}
        if len(set(values.values())) == 1:
            logs["temperature"] = next(iter(values.values()))
        else:
            for name, value in values.items():
                logs[f"{name}_temperature"] = value


class KLWarmup(_LayerScheduleCallback):
    """Raises the KL weight of latent layers linearly from 0 (KL warm-up).

    When training begins, the callback sets the KL weight of each target
    layer to the schedule `keras_latent.schedules.LinearWarmup(warmup_steps,
    start=0, end=w)`, where `w` is the float `kl_weight` the layer was
    configured with: at step `s` the weight is `min(1, s / warmup_steps) *
    w`. The layers evaluate it inside the compiled train step at their step
    counter (`layer.iterations`), and the model is saved with it. A second
    `KLWarmup` keeps `w`. At the end of each epoch each layer's weight in
    force appears in the logs as `<layer name>_kl_weight`.

    Args:
        warmup_steps: the number of steps to reach the full weight, an
            integer >= 1.
        layers: a layer or a list of layers of the model to warm up
            (`CategoricalLatent`, `BernoulliLatent`); by default every such
            layer in the model. Their `kl_weight` must be a float (or a
            warm-up from 0).

    Example:

    >>> warmup = keras_latent.callbacks.KLWarmup(warmup_steps=1000)
    >>> latent = keras_latent.layers.CategoricalLatent(30, 10, kl_weight=2.0)
    >>> float(warmup.schedule_for(latent)(250))
    0.5

    References:
        - [Bowman et al., 2016](https://arxiv.org/abs/1511.06349)
        - [Sønderby et al., 2016](https://arxiv.org/abs/1602.02282)
    """

    layer_class = LatentLayer
    argument = "kl_weight"

    def __init__(self, warmup_steps: int, layers=None):
        super().__init__(layers)
        self.warmup_steps = validation.check_integer(
            "warmup_steps", warmup_steps, minimum=1
        )

    def schedule_for(self, layer):
        weight = layer.kl_weight
        if isinstance(weight, schedules.LinearWarmup) and weight.start == 0:
            weight = weight.end
        elif schedules.is_schedule(weight):
            raise ValueError(
                f"KLWarmup raises a float `kl_weight` from 0, but layer "
                f"{layer.name!r} has the schedule {weight!r}. Give the layer "
                "a float `kl_weight`, or no KLWarmup."
            )
        return schedules.LinearWarmup(self.warmup_steps, start=0.0, end=weight)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            for layer in self.layers:
                logs[f"{layer.name}_kl_weight"] = self.in_force(layer)
