"""The Gumbel-softmax layer."""

import keras

from keras_latent import ops as latent_ops
from keras_latent import validation
from keras_latent.layers.relaxed_layer import RelaxedLayer


@keras.saving.register_keras_serializable(package="keras_latent")
class GumbelSoftmax(RelaxedLayer):
    """Draws relaxed one-hot samples from logits (Gumbel-softmax).

    In training the layer returns `softmax((logits + g) / temperature)`
    along `axis`, `g` being fresh standard Gumbel noise at every call (see
    `keras_latent.ops.gumbel_softmax`) and the temperature a float or a
    schedule evaluated at the layer's step counter (see `RelaxedLayer`);
    that is `estimator="gumbel_softmax"`, the default. The other
    estimators return one-hot samples whose gradient is their own (see
    `keras_latent.ops.categorical_estimator`):
    `"straight_through_gumbel"` (also `hard=True`), the one-hot of that
    sample's argmax with the relaxed sample's gradient;
    `"straight_through"`, `"gumbel_rao"` and `"reinmax"`. At inference the
    output depends on `eval_mode`: `"mode"` (default) gives the one-hot of
    the argmax of the logits, `"sample"` an exact categorical one-hot
    sample, `"probs"` softmax(logits).

    Args:
        temperature: a float >= 1e-30, or a schedule of the training step
            (see `keras_latent.schedules`) whose values are > 0.
        hard: None, or whether to return one-hot samples in training:
            `hard=True` alone means `estimator="straight_through_gumbel"`;
            given with `estimator`, it must agree with it.
        estimator: None (decided by `hard`), `"gumbel_softmax"`,
            `"straight_through_gumbel"`, `"straight_through"`,
            `"gumbel_rao"` or `"reinmax"`.
        num_samples: K of `"gumbel_rao"` (default 10); None otherwise.
        axis: the category axis.
        eval_mode: `"mode"`, `"sample"` or `"probs"`, the output at
            inference.
        seed: an integer or None, the seed of the layer's `SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: logits, a float tensor of any rank.
        training: whether to sample (training) or to apply `eval_mode`.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype.

    Example:

    >>> layer = keras_latent.layers.GumbelSoftmax(temperature=0.5, seed=1)
    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0]])
    >>> mode = layer(logits, training=False)
    >>> keras.ops.convert_to_numpy(mode).tolist()
    [[1.0, 0.0, 0.0]]

    References:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
        - [Paulus et al., 2021](https://arxiv.org/abs/2010.04838)
        - [Liu et al., 2023](https://arxiv.org/abs/2304.08612)
    """

    def __init__(
        self,
        temperature: float = 1.0,
        hard: bool | None = None,
        estimator: str | None = None,
        num_samples: int | None = None,
        axis: int = -1,
        eval_mode: str = "mode",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            temperature=temperature,
            hard=hard,
            estimator=estimator,
            num_samples=num_samples,
            eval_mode=eval_mode,
            seed=seed,
            **kwargs,
        )
        self.axis = validation.check_axis("axis", axis)

    def build(self, input_shape):
        validation.check_axis_in_rank("axis", self.axis, len(input_shape))
        super().build(input_shape)

    def call(self, inputs, training=None):
        if training:
            outputs, _ = latent_ops.categorical_estimator(
                inputs,
                self.estimator,
                temperature=self.current_temperature(),
                num_samples=self.num_samples,
                axis=self.axis,
                seed=self.seed_generator,
            )
            self._count_training_call()
            return outputs
        return latent_ops.categorical_inference(
            inputs, self.eval_mode, self.axis, self.seed_generator
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
