"""Shared state of the latent-variable layers: KL weight, KL loss and log."""

import keras
from keras import ops

from keras_latent import schedules
from keras_latent.layers.relaxed_layer import FIXED_AT_CONSTRUCTION
from keras_latent.layers.relaxed_layer import RelaxedLayer


class LatentLayer(RelaxedLayer):
    """Base class of layers that add a KL term to the model's losses.

    On top of `RelaxedLayer` it holds:
    - `kl_weight`: the configured weight of the KL term, a float or a
      schedule, evaluated at `layer.iterations` like the temperature;
      `layer.current_kl_weight()` returns the value in force.
    - `last_kl`: a non-trainable float32 scalar, the unweighted KL of the
      last call (batch mean), in nats.
    - `kl_tracker`: a `keras.metrics.Mean` named `<layer name>_kl`, which
      `fit` and `evaluate` log. See `keras_latent.layers.kl_logging`.

    Args:
        kl_weight: the weight of the KL term, a float >= 0 or a schedule
            (see `keras_latent.schedules`).
        **kwargs: arguments of `RelaxedLayer` and of the base layer.
    """

    scheduled_arguments = {
        **RelaxedLayer.scheduled_arguments,
        "kl_weight": False,
    }

    def __init__(self, kl_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self._kl_weight = schedules.check_value_or_schedule(
            "kl_weight", kl_weight
        )
        self.kl_tracker = keras.metrics.Mean(name=f"{self.name}_kl")

    @property
    def kl_weight(self):
        """The configured KL weight: a float or a schedule."""
        return self._kl_weight

    @kl_weight.setter
    def kl_weight(self, value):
        raise AttributeError(FIXED_AT_CONSTRUCTION.format(name="kl_weight"))

    def current_kl_weight(self):
        """The KL weight in force, a float32 scalar tensor.

        Training and inference calls weight the KL with it: the schedule at
        `layer.iterations`, or the configured float.
        """
        return schedules.value_at(self._kl_weight, self.current_step())

    def build(self, input_shape):
        super().build(input_shape)
        self.last_kl = self.add_scalar_state("last_kl", 0.0)

    def add_kl_loss(self, kl):
        """Adds `kl_weight * mean(kl)` to the losses; records the mean KL.

        Args:
            kl: float32 tensor, the KL of each example (summed over the
                layer's variables), of shape `batch_shape`.
        """
        kl = ops.mean(ops.cast(kl, "float32"))
        self.last_kl.assign(kl)
        self.add_loss(self.current_kl_weight() * kl)

    def get_config(self):
        return {
            **super().get_config(),
            "kl_weight": schedules.serialize(self._kl_weight),
        }
