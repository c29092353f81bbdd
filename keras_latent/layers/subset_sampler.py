"""The k-subset sampling layer."""

import keras

from keras_latent import ops as latent_ops
from keras_latent import validation
from keras_latent.layers.relaxed_layer import RelaxedLayer

SUBSET_ESTIMATORS = ("relaxed", "straight_through")


@keras.saving.register_keras_serializable(package="keras_latent")
class SubsetSampler(RelaxedLayer):
    """Selects k of the categories of its logits: a relaxed or k-hot subset.

    In training the layer draws a subset of `k` categories without
    replacement, with probabilities `softmax(logits)` along `axis`, from
    fresh Gumbel noise at every call. With `estimator="relaxed"` (the
    default) it returns Xie and Ermon's relaxation of the subset's k-hot
    vector: k successive softmaxes of the noisy logits at the temperature,
    summing to k (see `keras_latent.ops.relaxed_top_k`). With
    `estimator="straight_through"` it returns the exact k-hot vector with
    the relaxation's gradient (see `keras_latent.ops.straight_through_top_k`).
    The temperature is a float or a schedule evaluated at the layer's step
    counter, as in `GumbelSoftmax` (see `RelaxedLayer`).

    At inference the output depends on `eval_mode`: `"mode"` (default)
    gives the k-hot of the k largest logits, deterministic; `"sample"` an
    exact k-hot sample (see `keras_latent.ops.gumbel_top_k`).

    Its uses: feature selection (multiply the features by the output),
    top-k routing, learning to explain. Categories are masked out with
    `-inf` logits: they are never selected. A Keras mask passes through
    unchanged, as in the other latent layers.

    Args:
        k: an integer >= 1, the number of categories to select; at most the
            size of `axis`.
        temperature: a float >= 1e-30, or a schedule of the training step
            (see `keras_latent.schedules`) whose values are > 0.
        estimator: `"relaxed"` or `"straight_through"`.
        axis: the category axis.
        eval_mode: `"mode"` or `"sample"`, the output at inference.
        seed: an integer or None, the seed of the layer's `SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: logits, a float tensor of any rank whose size along `axis`
            is known.
        training: whether to sample (training) or to apply `eval_mode`.

    Returns:
        A tensor of the shape of `inputs`, in the layer's compute dtype,
        each slice along `axis` summing to `k`.

    Example:

    >>> layer = keras_latent.layers.SubsetSampler(k=2, seed=1)
    >>> logits = keras.ops.convert_to_tensor([[2.0, 0.5, -1.0, 1.0]])
    >>> keras.ops.convert_to_numpy(layer(logits, training=False))
    array([[1., 0., 0., 1.]], dtype=float32)

    References:
        - [Xie and Ermon, 2019](https://arxiv.org/abs/1901.10517)
        - [Kool et al., 2019](https://arxiv.org/abs/1903.06059)
        - [Chen et al., 2018](https://arxiv.org/abs/1802.07814)
    """

    eval_modes = ("mode", "sample")

    def __init__(
        self,
        k: int,
        temperature: float = 1.0,
        estimator: str = "relaxed",
        axis: int = -1,
        eval_mode: str = "mode",
        seed: int | None = None,
        **kwargs,
    ):
        # The base class would take these categorical options and the
        # subset estimator would then silently override them.
        for name in ("hard", "num_samples"):
            if name in kwargs:
                raise validation.invalid_value(
                    name,
                    "no such argument: a SubsetSampler's `estimator` "
                    "('relaxed' or 'straight_through') says whether its "
                    "samples are k-hot",
                    kwargs[name],
                )
        super().__init__(
            temperature=temperature, eval_mode=eval_mode, seed=seed, **kwargs
        )
        self.k = validation.check_integer("k", k, minimum=1)
        self.estimator = validation.check_choice(
            "estimator", estimator, SUBSET_ESTIMATORS
        )
        self.hard = self.estimator == "straight_through"
        self.axis = validation.check_axis("axis", axis)

    def build(self, input_shape):
        validation.check_axis_in_rank("axis", self.axis, len(input_shape))
        num_categories = input_shape[self.axis]
        if num_categories is None or self.k > num_categories:
            raise ValueError(
                "Invalid value received for argument `k`. Expected an "
                "integer between 1 and the number of categories along "
                f"`axis` ({num_categories}). Received: k={self.k}"
            )
        super().build(input_shape)

    def call(self, inputs, training=None):
        if training:
            sample_op = (
                latent_ops.straight_through_top_k
                if self.hard
                else latent_ops.relaxed_top_k
            )
            outputs = sample_op(
                inputs,
                self.k,
                self.current_temperature(),
                axis=self.axis,
                seed=self.seed_generator,
            )
            self._count_training_call()
            return outputs
        if self.eval_mode == "sample":
            return latent_ops.gumbel_top_k(
                inputs, self.k, axis=self.axis, seed=self.seed_generator
            )
        return latent_ops.k_hot_top_k(inputs, self.k, axis=self.axis)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        # `hard` and `num_samples` are the categorical estimators' options
        # of the base class; a subset's estimator alone says which it is.
        del config["hard"], config["num_samples"]
        return {**config, "k": self.k, "axis": self.axis}
