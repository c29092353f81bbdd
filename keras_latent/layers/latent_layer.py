"""Shared state of the latent-variable layers: KL weight and KL loss."""

from keras import ops

from keras_latent import validation
from keras_latent.layers.relaxed_layer import RelaxedLayer


class LatentLayer(RelaxedLayer):
    """Base class of layers that add a KL term to the model's losses.

    On top of `RelaxedLayer` it holds `kl_weight`, a non-trainable float32
    scalar variable (so that `keras_latent.callbacks.KLWarmup` can change it
    inside compiled train steps); the config keeps the initial value.

    Every call adds `kl_weight * kl` to the losses with `add_loss`, `kl`
    being the mean KL over the unmasked examples, and records the pair
    `(loss tensor, kl)` in Python, the way Keras records the losses of a
    forward pass. `keras_latent.models.kl_divergences` finds the unweighted
    KL of the current forward pass from these pairs, by the identity of the
    loss tensors among `model.losses`; no variable is written, so
    inference writes no state.

    Args:
        kl_weight: initial weight of the KL term, a finite float >= 0.
        **kwargs: arguments of `RelaxedLayer` and of the base layer.
    """

    def __init__(self, kl_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_kl_weight = validation.check_non_negative_float(
            "kl_weight", kl_weight
        )
        self.kl_records = KLRecords()

    def build(self, input_shape):
        super().build(input_shape)
        self.kl_weight = self.add_scalar_state(
            "kl_weight", self.initial_kl_weight
        )

    def add_kl_loss(self, kl, mask=None):
        """Adds `kl_weight * masked_mean(kl)` to the losses; records the KL.

        Args:
            kl: the KL of each example (summed over the layer's variables),
                of shape `batch_shape`.
            mask: None, or a boolean tensor whose leading axes are those
                of `batch_shape`: False marks a padded example, left out of
                the mean. Axes beyond `batch_shape` are reduced with `any`;
                missing trailing axes are broadcast.
        """
        kl = masked_mean(ops.cast(kl, "float32"), mask)
        loss = self.kl_weight * kl
        # Records of an earlier forward pass are gone from `self.losses`
        # once Keras clears them at the start of a new one.
        self.kl_records.keep_only(self.losses)
        self.add_loss(loss)
        self.kl_records.add(loss, kl)

    def get_config(self):
        return {**super().get_config(), "kl_weight": self.initial_kl_weight}


def masked_mean(values, mask):
    """The mean of `values` where `mask` is True; 0 where nothing is left.

    A masked entry adds nothing, not even a NaN; an empty batch or a fully
    masked one gives 0, the KL of no examples, instead of 0 / 0.
    """
    if mask is None:
        count = ops.cast(ops.size(values), "float32")
        total = ops.sum(values)
    else:
        mask = ops.cast(mask, "bool")
        extra_axes = tuple(range(len(values.shape), len(mask.shape)))
        if extra_axes:
            mask = ops.any(mask, axis=extra_axes)
        for _ in range(len(values.shape) - len(mask.shape)):
            mask = ops.expand_dims(mask, -1)
        mask = ops.broadcast_to(mask, ops.shape(values))
        count = ops.sum(ops.cast(mask, "float32"))
        total = ops.sum(ops.where(mask, values, 0.0))
    return total / ops.maximum(count, 1.0)


class KLRecords:
    """The `(loss, kl)` pairs of a layer's calls, matched by tensor identity.

    A plain object, so that Keras does not track its content as layer
    state. Identity, not `==`: comparing traced tensors by value fails
    under `jax.jit`.
    """

    def __init__(self):
        self.pairs = []

    def keep_only(self, losses):
        """Forgets the pairs whose loss is not among `losses`."""
        current = {id(loss) for loss in losses}
        self.pairs = [pair for pair in self.pairs if id(pair[0]) in current]

    def add(self, loss, kl):
        self.pairs.append((loss, kl))

    def kl_among(self, losses):
        """The sum of the recorded KLs whose loss is among `losses`, or None."""
        current = {id(loss) for loss in losses}
        kls = [kl for loss, kl in self.pairs if id(loss) in current]
        if not kls:
            return None
        return sum(kls[1:], kls[0])
