"""The parameter-free grouped softmax, sparsemax or entmax layer."""

import keras

from keras_latent import ops as latent_ops
from keras_latent import validation
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
    normalization fused with a dense projection.

    Args:
        groups: an integer >= 1 that divides the input's last dimension.
        normalizer: `"softmax"`, `"sparsemax"` or `"entmax15"`.
        temperature: a finite float > 0.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: a float tensor of shape `(..., units)`.

    Returns:
        A tensor of the shape of `inputs` in the layer's compute dtype, each
        group summing to 1.

    Example:

    >>> layer = keras_latent.layers.GroupedSoftmax(groups=4)
    >>> layer(keras.random.normal((2, 16))).shape
    (2, 16)

    References:
        - [Martins and Astudillo, 2016](https://arxiv.org/abs/1602.02068)
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
    """

    def __init__(
        self,
        groups: int = 1,
        normalizer: str = "softmax",
        temperature: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.groups = validation.check_divisor("groups", groups, "units", None)
        self.normalizer = check_normalizer(normalizer)
        self.temperature = validation.check_positive_float32(
            "temperature", temperature
        )
        # A mask passes through unchanged, as in `keras.layers.GaussianNoise`.
        self.supports_masking = True

    def build(self, input_shape):
        validation.check_divisor(
            "groups",
            self.groups,
            "the input's last dimension",
            input_shape[-1],
        )

    def call(self, inputs):
        return latent_ops.grouped_normalize(
            inputs, self.groups, self.normalizer, self.temperature
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "normalizer": self.normalizer,
            "temperature": self.temperature,
        }
