"""Shared state of the latent-variable layers: KL weight and KL loss."""

from keras import ops

from keras_latent import schedules
from keras_latent.layers.relaxed_layer import FIXED_AT_CONSTRUCTION
from keras_latent.layers.relaxed_layer import RelaxedLayer


class LatentLayer(RelaxedLayer):
    """Base class of layers that add a KL term to the model's losses.

    On top of `RelaxedLayer` it holds `kl_weight`, the configured weight
    of the KL term: a float or a schedule, evaluated at `layer.iterations`
    like the temperature; `layer.current_kl_weight()` returns the value in
    force.

    Every call adds `kl_weight * kl` to the losses with `add_loss`, `kl`
    being the mean KL over the unmasked examples, and records the pair
    `(loss tensor, kl)` in Python, the way Keras records the losses of a
    forward pass. `keras_latent.models.kl_divergences` finds the unweighted
    KL of the current forward pass from these pairs, by the identity of the
    loss tensors among `model.losses`; no variable is written for the KL,
    so inference writes no state.

    Args:
        kl_weight: the weight of the KL term, a float >= 0 or a schedule
            (see `keras_latent.schedules`).
        **kwargs: arguments of `RelaxedLayer` and of the base layer.
    """

    scheduled_arguments = {
        **RelaxedLayer.scheduled_arguments,
        "kl_weight": None,
    }

    def __init__(self, kl_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self._kl_weight = schedules.check_value_or_schedule(
            "kl_weight", kl_weight
        )
        self.kl_records = KLRecords()

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
        loss = self.current_kl_weight() * kl
        # Records of an earlier forward pass are gone from `self.losses`
        # once Keras clears them at the start of a new one.
        self.kl_records.keep_only(self.losses)
        self.add_loss(loss)
        self.kl_records.add(loss, kl)

    def get_config(self):
        return {
            **super().get_config(),
            "kl_weight": schedules.serialize(self._kl_weight),
        }


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
