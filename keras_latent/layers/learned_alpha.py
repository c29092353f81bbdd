"""The entmax alpha of the normalizing layers: fixed, or trainable."""

from keras import ops

from keras_latent.ops.simplex import LEARNED
from keras_latent.ops.simplex import alpha_from_logits


def add_alpha_logits(layer, count):
    """Adds `count` trainable alpha logits to `layer`, at 0 (alpha 1.5)."""
    return layer.add_weight(
        name="alpha_logits",
        shape=(count,),
        initializer="zeros",
        trainable=True,
        dtype="float32",
    )


def normalizer_alpha(alpha, alpha_logits):
    """The `alpha` to give the normalizer: a float, None, or with
    `alpha="learned"` the tensor of alphas from `alpha_logits`."""
    if alpha == LEARNED:
        return alpha_from_logits(alpha_logits)
    return alpha


def current_alphas(alpha, alpha_logits, count):
    """The `count` alphas in use as a float32 tensor, or None without
    entmax; see the `alphas` property of the layers."""
    if alpha is None:
        return None
    if alpha == LEARNED:
        return alpha_from_logits(alpha_logits)
    return ops.full((count,), alpha, "float32")
