"""The parameter-free grouped softmax, sparsemax or entmax layer."""

import keras

from keras_latent import ops as latent_ops
from keras_latent import validation
from keras_latent.layers import learned_alpha
from keras_latent.ops.simplex import LEARNED
from keras_latent.ops.simplex import check_alpha
from keras_latent.ops.simplex import check_normalizer


@keras.saving.register_keras_serializable(package="keras_latent")
class GroupedSoftmax(keras.layers.Layer):
    """Normalizes equal groups of the last axis: softmax, sparsemax, entmax.

    The last axis of the input, of size `units`, is split into `groups`
    consecutive groups; `normalizer` maps each group of `inputs /
    temperature` onto the probability simplex (see
    `keras_latent.ops.grouped_normalize`). With `groups=1` and
    `normalizer="softmax"` this is `keras.layers.Softmax`. Use it after any
    layer (a convolution, an attention score); `HiddenSoftmax` is the same
    normalization fused with a dense projection. With `"entmax"`, `alpha`
    is a float >= 1 or `"learned"`: one trainable alpha per group, `1 +
    sigmoid(a)` of a logit `a` initialized at 0 (in (1, 2), 1.5 at first;
    Correia et al. 2019), the layer's only weight; `alphas` gives them.

    Args:
        groups: an integer >= 1 that divides the input's last dimension.
        normalizer: `"softmax"`, `"sparsemax"`, `"entmax15"` or `"entmax"`.
        temperature: a finite float > 0.
        alpha: with `normalizer="entmax"` only: a float >= 1, or
            `"learned"` for one trainable alpha per group; None (the
            default) is 1.5 there.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: a float tensor of shape `(..., units)`.

    Returns:
        A tensor of the shape of `inputs` in the layer's compute dtype, each
        group summing to 1.

    Example:

    >>> layer = keras_latent.layers.GroupedSoftmax(groups=4)
    >>> tuple(layer(keras.random.normal((2, 16))).shape)
    (2, 16)

    References:
        - [Martins and Astudillo, 2016](https://arxiv.org/abs/1602.02068)
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
        - [Correia et al., 2019](https://arxiv.org/abs/1909.00015)
    """

    def __init__(
        self,
        groups: int = 1,
        normalizer: str = "softmax",
        temperature: float = 1.0,
        alpha: float | str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.groups = validation.check_divisor("groups", groups, "units", None)
        self.normalizer = check_normalizer(normalizer)
        self.temperature = validation.check_positive_float32(
            "temperature", temperature
        )
        self.alpha = check_alpha(alpha, self.normalizer, learnable=True)
        self.alpha_logits = None
        # A mask passes through unchanged, as in `keras.layers.GaussianNoise`.
        self.supports_masking = True

    def build(self, input_shape):
        validation.check_divisor(
            "groups",
            self.groups,
            "the input's last dimension",
            input_shape[-1],
        )
        if self.alpha == LEARNED:
            self.alpha_logits = learned_alpha.add_alpha_logits(
                self, self.groups
            )

    def call(self, inputs):
        return latent_ops.grouped_normalize(
            inputs,
            self.groups,
            self.normalizer,
            self.temperature,
            alpha=learned_alpha.normalizer_alpha(self.alpha, self.alpha_logits),
        )

    @property
    def alphas(self):
        """The alpha of each group, a float32 tensor of shape `(groups,)`
        (None unless `normalizer="entmax"`; built first if learned)."""
        return learned_alpha.current_alphas(
            self.alpha, self.alpha_logits, self.groups
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "normalizer": self.normalizer,
            "temperature": self.temperature,
            "alpha": self.alpha,
        }
