"""Multi-head attention whose weights come from sparsemax or entmax."""

import keras
import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.layers import learned_alpha
from keras_latent.ops.simplex import LEARNED
from keras_latent.ops.simplex import NORMALIZERS
from keras_latent.ops.simplex import check_alpha
from keras_latent.ops.simplex import check_normalizer


@keras.saving.register_keras_serializable(package="keras_latent")
class SparseMultiHeadAttention(keras.layers.MultiHeadAttention):
    """Multi-head attention with a softmax, sparsemax or entmax normalizer.

    A `keras.layers.MultiHeadAttention` whose attention weights over the
    keys are `normalizer(q . k / sqrt(key_dim))` instead of always the
    softmax: `"sparsemax"` (Martins and Astudillo 2016), `"entmax15"` or
    `"entmax"` at a fixed `alpha` (Peters et al. 2019; Correia et al. 2019)
    give weights with exact zeros, so that each query reads only the keys
    near its best match. The larger `alpha`, the sparser the weights:
    `alpha=1` is the softmax, 1.5 is `"entmax15"`, 2 is `"sparsemax"` (see
    `keras_latent.ops.entmax_bisect`). `alpha="learned"` gives each head
    its own trainable alpha, `1 + sigmoid(a)` of a logit `a` initialized
    at 0, so in (1, 2) and 1.5 at first, as in the adaptively sparse
    Transformer of Correia et al. (2019); the property `alphas` gives the
    alphas in use. With `normalizer="softmax"` the
    layer computes what `keras.layers.MultiHeadAttention` does, with the
    same weights.

    Masks work as in the parent: keys masked out by `attention_mask`,
    `use_causal_mask`, `sliding_window` or the Keras masks of `query`,
    `value` and `key` get the score `-inf`, which every sparse normalizer
    maps to a weight of exactly 0 with zero gradient; a query whose keys
    are all masked gets weights of 0, as in the parent. Dropout applies to
    the weights in training only. A sparse normalizer never takes the
    fused `keras.ops.dot_product_attention` path, which computes a
    softmax; flash attention is therefore off for it.

    Args:
        num_heads: the number of attention heads.
        key_dim: the size of each head for query and key.
        normalizer: `"softmax"`, `"sparsemax"`, `"entmax15"` or `"entmax"`.
        alpha: with `normalizer="entmax"` only: a float >= 1, the entmax
            index, or `"learned"` for one trainable alpha per head; None
            (the default) is 1.5 there.
        **kwargs: every other argument of `keras.layers.MultiHeadAttention`
            (`value_dim`, `dropout`, `use_bias`, `output_shape`,
            `attention_axes`, `sliding_window`, initializers, regularizers,
            constraints, `use_gate`, `seed`) and the base layer keyword
            arguments, such as `name` and `dtype`. `flash_attention=True`
            is accepted with `normalizer="softmax"` only.

    Call arguments:
        As `keras.layers.MultiHeadAttention`: `query`, `value`, `key`,
        `attention_mask`, `return_attention_scores`, `training` and
        `use_causal_mask`.

    Returns:
        The attention output of shape `(batch, target_length, dim)`, and
        with `return_attention_scores=True` also the attention weights of
        shape `(batch, num_heads, target_length, source_length)`, each row
        summing to 1 (or 0 where every key is masked).

    Example:

    >>> layer = keras_latent.layers.SparseMultiHeadAttention(
    ...     num_heads=2, key_dim=4, normalizer="sparsemax"
    ... )
    >>> x = keras.random.normal((3, 5, 8))
    >>> outputs, weights = layer(x, x, return_attention_scores=True)
    >>> tuple(outputs.shape), tuple(weights.shape)
    ((3, 5, 8), (3, 2, 5, 5))

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Martins and Astudillo, 2016](https://arxiv.org/abs/1602.02068)
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
        - [Correia et al., 2019](https://arxiv.org/abs/1909.00015)
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        normalizer: str = "softmax",
        alpha: float | str | None = None,
        **kwargs,
    ):
        normalizer = check_normalizer(normalizer)
        alpha = check_alpha(alpha, normalizer, learnable=True)
        # Flash attention computes a softmax, and refuses to return the
        # scores that a sparse normalizer computes.
        if normalizer != "softmax" and kwargs.get("flash_attention"):
            raise validation.invalid_value(
                "flash_attention",
                "None or False with a sparse normalizer (flash attention "
                f"computes a softmax; normalizer={normalizer!r})",
                kwargs["flash_attention"],
            )
        super().__init__(num_heads, key_dim, **kwargs)
        # The parent's `build` replaces its `_attention_axes` by the axes it
        # chose; the config keeps the argument as given (a list, for JSON),
        # so that it does not change when the layer is built.
        attention_axes = kwargs.get("attention_axes")
        if isinstance(attention_axes, tuple):
            attention_axes = list(attention_axes)
        self._attention_axes_argument = attention_axes
        self.normalizer = normalizer
        self.alpha = alpha
        self.alpha_logits = None

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        if self.alpha == LEARNED:
            self.alpha_logits = learned_alpha.add_alpha_logits(
                self, self._num_heads
            )

    @property
    def alphas(self):
        """The alpha of each head, a float32 tensor of shape `(num_heads,)`
        (None unless `normalizer="entmax"`; built first if learned)."""
        return learned_alpha.current_alphas(
            self.alpha, self.alpha_logits, self._num_heads
        )

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        **kwargs,
    ):
        # Unless the scores are asked for, the parent computes the attention
        # with the fused `keras.ops.dot_product_attention`, a softmax; asking
        # for them keeps a sparse normalizer on the path that goes through
        # `_masked_softmax`. The layer's `call` drops them if not asked for.
        return super()._compute_attention(
            query,
            key,
            value,
            attention_mask,
            training,
            return_attention_scores or self.normalizer != "softmax",
            **kwargs,
        )

    def _masked_softmax(self, attention_scores, attention_mask=None):
        if self.normalizer == "softmax":
            return super()._masked_softmax(attention_scores, attention_mask)
        if attention_mask is not None:
            # As in the parent: the mask, (batch, <query axes>, <key axes>),
            # gains the heads axis (and any batch axes it lacks) before the
            # query axes of the scores.
            mask_expansion_axis = -len(self._attention_axes) * 2 - 1
            for _ in range(
                len(attention_scores.shape) - len(attention_mask.shape)
            ):
                attention_mask = ops.expand_dims(
                    attention_mask, axis=mask_expansion_axis
                )
            attention_scores = ops.where(
                ops.cast(attention_mask, "bool"),
                attention_scores,
                ops.cast(-np.inf, attention_scores.dtype),
            )
        # The weights are normalized jointly over the key axes, the last
        # `len(attention_axes)` axes of the scores, flattened into one.
        num_key_axes = len(self._attention_axes)
        if num_key_axes == 1:
            return self._normalize(attention_scores)
        shape = ops.shape(attention_scores)
        rows = ops.reshape(attention_scores, (*shape[:-num_key_axes], -1))
        return ops.reshape(self._normalize(rows), shape)

    def _normalize(self, attention_scores):
        """The sparse normalizer along the last axis (`-inf` gives 0)."""
        if self.normalizer != "entmax":
            return NORMALIZERS[self.normalizer](attention_scores, axis=-1)
        alpha = learned_alpha.normalizer_alpha(self.alpha, self.alpha_logits)
        if self.alpha == LEARNED:
            # The scores are (batch, heads, <query axes>, keys): one alpha
            # per head, broadcast over the query axes and the keys.
            trailing_axes = len(self._attention_axes) + 1
            alpha = ops.reshape(alpha, (-1,) + (1,) * trailing_axes)
        return NORMALIZERS["entmax"](attention_scores, alpha=alpha, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "attention_axes": self._attention_axes_argument,
            "normalizer": self.normalizer,
            "alpha": self.alpha,
        }
