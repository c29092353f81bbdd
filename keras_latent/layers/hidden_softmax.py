"""A dense layer whose activation is a grouped softmax, sparsemax or entmax."""

import keras

from keras_latent import ops as latent_ops
from keras_latent import validation
from keras_latent.layers import learned_alpha
from keras_latent.ops.simplex import LEARNED
from keras_latent.ops.simplex import check_alpha
from keras_latent.ops.simplex import check_normalizer


@keras.saving.register_keras_serializable(package="keras_latent")
class HiddenSoftmax(keras.layers.Dense):
    """A dense projection followed by a normalizer within groups of units.

    `outputs = grouped_normalize(inputs @ kernel + bias, groups, normalizer,
    temperature)`: the `units` outputs are split into `groups` equal groups
    and each group is mapped onto the probability simplex by `"softmax"`,
    `"sparsemax"`, `"entmax15"` or `"entmax"` (see
    `keras_latent.ops.grouped_normalize`). With `"entmax"`, `alpha` is a
    float >= 1 (1 is the softmax, 1.5 `"entmax15"`, 2 `"sparsemax"`), or
    `"learned"`: each group then has its own trainable alpha, `1 +
    sigmoid(a)` of a trainable logit `a` initialized at 0, so in (1, 2)
    and 1.5 at first (Correia et al. 2019): each group learns how sparse to
    be. The property `alphas` gives the alphas in use.
    With `groups=1` the layer is a softmax over all its units, the
    structured hidden activation whose merits `examples/
    hidden_softmax_study.py` measures; with more groups, each group acts as
    one multinomial hidden variable. It is a `keras.layers.Dense` in every
    other respect (initializers, regularizers, constraints, LoRA,
    quantization); the normalization alone is `GroupedSoftmax`.

    Args:
        units: the number of output units, an integer >= 1.
        groups: an integer >= 1 that divides `units`.
        temperature: a finite float > 0; the pre-activations are divided by
            it before normalizing.
        normalizer: `"softmax"`, `"sparsemax"`, `"entmax15"` or `"entmax"`.
        alpha: with `normalizer="entmax"` only: a float >= 1, or
            `"learned"` for one trainable alpha per group; None (the
            default) is 1.5 there.
        use_bias: whether to add a bias.
        kernel_initializer: initializer of the kernel.
        bias_initializer: initializer of the bias.
        kernel_regularizer: regularizer of the kernel.
        bias_regularizer: regularizer of the bias.
        activity_regularizer: regularizer of the output, for example
            `keras_latent.regularizers.Entropy(groups=groups)`.
        kernel_constraint: constraint on the kernel.
        bias_constraint: constraint on the bias.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: a float tensor of shape `(..., input_dim)`.

    Returns:
        A tensor of shape `(..., units)` in the layer's compute dtype, each
        group summing to 1.

    Example:

    >>> layer = keras_latent.layers.HiddenSoftmax(256, groups=16)
    >>> tuple(layer(keras.random.normal((2, 784))).shape)
    (2, 256)
    >>> layer = keras_latent.layers.HiddenSoftmax(
    ...     256, groups=16, normalizer="entmax", alpha="learned"
    ... )
    >>> outputs = layer(keras.random.normal((2, 784)))
    >>> tuple(outputs.shape), tuple(layer.alphas.shape)
    ((2, 256), (16,))

    References:
        - [Goodfellow, Bengio and Courville, Deep Learning, section 6.2.2.3](
          https://www.deeplearningbook.org/contents/mlp.html)
        - [Martins and Astudillo, 2016](https://arxiv.org/abs/1602.02068)
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
        - [Correia et al., 2019](https://arxiv.org/abs/1909.00015)
    """

    def __init__(
        self,
        units: int,
        groups: int = 1,
        temperature: float = 1.0,
        normalizer: str = "softmax",
        alpha: float | str | None = None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        units = validation.check_integer("units", units, minimum=1)
        activation = kwargs.pop("activation", None)
        if activation is not None:
            raise ValueError(
                "Invalid value received for argument `activation`. "
                "HiddenSoftmax's activation is its grouped normalization; "
                "choose it with `normalizer`. Received: "
                f"activation={activation!r}"
            )
        super().__init__(
            units,
            activation=None,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.groups = validation.check_divisor("groups", groups, "units", units)
        self.normalizer = check_normalizer(normalizer)
        self.temperature = validation.check_positive_float32(
            "temperature", temperature
        )
        self.alpha = check_alpha(alpha, self.normalizer, learnable=True)
        self.alpha_logits = None
        # Dense applies `self.activation` on every call path (float, LoRA,
        # quantized), so the normalization goes there.
        self.activation = self._normalize

    def build(self, input_shape):
        # Dense's build ends by enabling LoRA (given `lora_rank`, as in a
        # config saved after `enable_lora`), which locks the layer's
        # variables: the alpha logits are added before, LoRA after.
        lora_rank, self.lora_rank = self.lora_rank, None
        try:
            super().build(input_shape)
        finally:
            self.lora_rank = lora_rank
        if self.alpha == LEARNED:
            self.alpha_logits = learned_alpha.add_alpha_logits(
                self, self.groups
            )
        if lora_rank:
            self.enable_lora(lora_rank)

    def _normalize(self, x):
        return latent_ops.grouped_normalize(
            x,
            groups=self.groups,
            normalizer=self.normalizer,
            temperature=self.temperature,
            alpha=learned_alpha.normalizer_alpha(self.alpha, self.alpha_logits),
        )

    @property
    def alphas(self):
        """The alpha of each group, a float32 tensor of shape `(groups,)`
        (None unless `normalizer="entmax"`; built first if learned)."""
        return learned_alpha.current_alphas(
            self.alpha, self.alpha_logits, self.groups
        )

    # Dense saves and loads its own variables by position; the alpha logits
    # go under their own key.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        if self.alpha_logits is not None:
            store["alpha_logits"] = self.alpha_logits

    def load_own_variables(self, store):
        super().load_own_variables(store)
        if self.alpha_logits is not None:
            self.alpha_logits.assign(store["alpha_logits"])

    def quantize(self, mode=None, type_check=True, config=None):
        # Dense refuses to quantize its subclasses, whose `call` may differ;
        # this one keeps Dense's call paths, so its quantized ones are right.
        super().quantize(mode, type_check=False, config=config)

    def get_config(self):
        # Dense would serialize `activation`; the normalization is described
        # by `groups`, `temperature` and `normalizer` instead.
        normalization, self.activation = (
            self.activation,
            keras.activations.linear,
        )
        try:
            config = super().get_config()
        finally:
            self.activation = normalization
        del config["activation"]
        return {
            **config,
            "groups": self.groups,
            "temperature": self.temperature,
            "normalizer": self.normalizer,
            "alpha": self.alpha,
        }
