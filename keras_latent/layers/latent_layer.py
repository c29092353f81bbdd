"""Shared state of the latent-variable layers: KL weight, KL loss and log."""

import keras
from keras import ops

from keras_latent import validation
from keras_latent.layers.relaxed_layer import RelaxedLayer


class LatentLayer(RelaxedLayer):
    """Base class of layers that add a KL term to the model's losses.

    On top of `RelaxedLayer` it holds:
    - `kl_weight`: a non-trainable float32 scalar variable (so that
      `keras_latent.callbacks.KLWarmup` can change it inside compiled train
      steps); the config keeps the initial value.
    - `last_kl`: a non-trainable float32 scalar, the unweighted KL of the
      last call (batch mean), in nats.
    - `kl_tracker`: a `keras.metrics.Mean` named `<layer name>_kl`, which
      `fit` and `evaluate` log. See `keras_latent.layers.kl_logging`.

    Args:
        kl_weight: initial weight of the KL term, a finite float >= 0.
        **kwargs: arguments of `RelaxedLayer` and of the base layer.
    """

    def __init__(self, kl_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_kl_weight = validation.check_non_negative_float(
            "kl_weight", kl_weight
        )
        self.kl_tracker = keras.metrics.Mean(name=f"{self.name}_kl")

    def build(self, input_shape):
        super().build(input_shape)
        self.kl_weight = self.add_scalar_state(
            "kl_weight", self.initial_kl_weight
        )
        self.last_kl = self.add_scalar_state("last_kl", 0.0)

    def add_kl_loss(self, kl):
        """Adds `kl_weight * mean(kl)` to the losses; records the mean KL.

        Args:
            kl: float32 tensor, the KL of each example (summed over the
                layer's variables), of shape `batch_shape`.
        """
        kl = ops.mean(ops.cast(kl, "float32"))
        self.last_kl.assign(kl)
        self.add_loss(self.kl_weight * kl)

    def get_config(self):
        return {**super().get_config(), "kl_weight": self.initial_kl_weight}
