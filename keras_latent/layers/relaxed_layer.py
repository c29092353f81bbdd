"""Shared state of the layers that draw relaxed (Concrete) samples."""

import keras

from keras_latent import validation


class RelaxedLayer(keras.layers.Layer):
    """Base class: a temperature variable, a seed generator and an eval mode.

    The temperature is a scalar, non-trainable float32 variable created in
    `build()`, so that `keras_latent.callbacks.TemperatureAnnealing` can
    change it inside compiled train steps and a saved model keeps the
    annealed value. The config keeps the initial value.

    Args:
        temperature: initial temperature, a finite float > 0.
        hard: whether training samples are one-hot (straight-through).
        eval_mode: what the layer returns at inference; one of
            `eval_modes`.
        seed: an integer or None, the seed of the layer's `SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    eval_modes = ("mode", "sample", "probs")

    def __init__(
        self,
        temperature: float = 1.0,
        hard: bool = False,
        eval_mode: str = "mode",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.initial_temperature = validation.check_positive_float32(
            "temperature", temperature
        )
        self.hard = validation.check_bool("hard", hard)
        self.eval_mode = validation.check_choice(
            "eval_mode", eval_mode, self.eval_modes
        )
        self.seed = validation.check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = False

    def add_scalar_state(self, name, value):
        """Adds a non-trainable float32 scalar that is never autocast."""
        return self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(value),
            trainable=False,
            name=name,
            dtype="float32",
            autocast=False,
        )

    def build(self, input_shape):
        self.temperature = self.add_scalar_state(
            "temperature", self.initial_temperature
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.initial_temperature,
            "hard": self.hard,
            "eval_mode": self.eval_mode,
            "seed": self.seed,
        }
