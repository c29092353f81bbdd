"""Reconstruction losses summed over the features of each example.

A variational autoencoder minimizes the negative ELBO,
`-log p(x | z) + KL(q(z | x) || p(z))`, per example. The latent layers of
keras-latent add the KL summed over the latent variables of each example
(averaged over the batch), so the reconstruction term must be the negative
log-likelihood of the whole example too: summed over its features, not
averaged. Keras's `BinaryCrossentropy` and `MeanSquaredError` average over
the last axis; paired with a per-example KL, they weigh the KL
`num_features` times too much (64 times for 8x8 images, 784 for 28x28), and
the optimizer then buys a small KL with a useless code: the posterior
collapses onto the prior and the decoder ignores the latent variables.

The losses here sum over every axis but the batch axis, so that a model's
loss is the negative ELBO in nats per example, the figure papers report.
Like Keras's losses they then reduce over the batch (`"sum_over_batch_size"`
by default) and take one sample weight per example.
"""

import keras
from keras import ops


def _sum_over_features(values):
    """Sums over every axis but the first (the batch axis)."""
    if len(values.shape) < 2:
        return values
    return ops.sum(values, axis=tuple(range(1, len(values.shape))))


@keras.saving.register_keras_serializable(package="keras_latent")
def summed_binary_crossentropy(y_true, y_pred, from_logits=False):
    """The Bernoulli negative log-likelihood of each example, in nats.

    For targets `z` in [0, 1] and predicted probabilities `p`, the
    elementwise loss is `-(z * log(p) + (1 - z) * log(1 - p))`, summed over
    every axis but the batch axis. With `from_logits=True`, `y_pred` holds
    logits `x` and the elementwise loss is computed as
    `max(x, 0) - x * z + log(1 + exp(-|x|))`, which is exact and finite for
    any finite logit. Probabilities are clipped into
    `[epsilon, 1 - epsilon]` (`keras.config.epsilon()`), as Keras's
    `binary_crossentropy` does. Computed in float32.

    Args:
        y_true: targets in [0, 1], shaped `(batch_size, ...)`.
        y_pred: predictions of the same shape: probabilities, or logits
            when `from_logits=True`.
        from_logits: whether `y_pred` holds logits.

    Returns:
        A float32 tensor of shape `(batch_size,)`.

    Example:

    >>> images = keras.ops.convert_to_tensor([[1.0, 0.0], [1.0, 1.0]])
    >>> logits = keras.ops.zeros((2, 2))
    >>> keras_latent.losses.summed_binary_crossentropy(
    ...     images, logits, from_logits=True)  # 2 * log(2) per example
    [1.3862944, 1.3862944]
    """
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(y_true, "float32")
    if from_logits:
        elementwise = (
            ops.relu(y_pred)
            - y_pred * y_true
            + ops.log1p(ops.exp(-ops.abs(y_pred)))
        )
    else:
        epsilon = keras.config.epsilon()
        probabilities = ops.clip(y_pred, epsilon, 1.0 - epsilon)
        elementwise = -(
            y_true * ops.log(probabilities)
            + (1.0 - y_true) * ops.log(1.0 - probabilities)
        )
    return _sum_over_features(elementwise)


@keras.saving.register_keras_serializable(package="keras_latent")
def summed_squared_error(y_true, y_pred):
    """The squared error of each example, summed over its features.

    `sum((y_true - y_pred) ** 2)` over every axis but the batch axis. Half
    of it is the negative log-likelihood of a Gaussian with unit variance,
    up to the constant `num_features * log(2 * pi) / 2`: the reconstruction
    term of a Gaussian decoder, on the scale of a per-example KL. Computed
    in float32.

    Args:
        y_true: targets, shaped `(batch_size, ...)`.
        y_pred: predictions of the same shape.

    Returns:
        A float32 tensor of shape `(batch_size,)`.
    """
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(y_true, "float32")
    return _sum_over_features(ops.square(y_true - y_pred))


@keras.saving.register_keras_serializable(package="keras_latent")
class SummedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy summed over the features of each example.

    The negative Bernoulli log-likelihood of each example, in nats (see
    `summed_binary_crossentropy`), then reduced over the batch. Use it as
    the reconstruction loss of a VAE with binary data next to a
    keras-latent layer's KL, which is summed per example too: with the
    default reduction a model's loss is then the negative ELBO in nats per
    example. Keras's `BinaryCrossentropy` averages over the last axis
    instead, which weighs the KL `num_features` times too much.

    Args:
        from_logits: whether the predictions are logits (recommended: exact
            and finite for any finite logit) rather than probabilities.
        reduction: how the per-example losses are reduced, as for every
            Keras loss: `"sum_over_batch_size"` (the default, their mean),
            `"sum"`, `"mean"`, `"mean_with_sample_weight"` or `None`.
        name: the name of the loss instance.
        dtype: the dtype of the reduced loss; the loss itself is computed
            in float32.

    Call arguments:
        y_true: targets in [0, 1], shaped `(batch_size, ...)`.
        y_pred: predictions of the same shape.
        sample_weight: optional weights, one per example (`(batch_size,)`).

    Returns:
        The reduced loss: a scalar, or one value per example with
        `reduction=None`.

    Example:

    >>> loss = keras_latent.losses.SummedBinaryCrossentropy(from_logits=True)
    >>> images = keras.ops.convert_to_tensor([[1.0, 0.0], [1.0, 1.0]])
    >>> loss(images, keras.ops.zeros((2, 2)))  # 2 * log(2)
    1.3862944
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction="sum_over_batch_size",
        name="summed_binary_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not isinstance(from_logits, bool):
            raise ValueError(
                "Invalid value received for argument `from_logits`. Expected "
                f"a boolean. Received: from_logits={from_logits!r}"
            )
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        return summed_binary_crossentropy(
            y_true, y_pred, from_logits=self.from_logits
        )

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_latent")
class SummedSquaredError(keras.losses.Loss):
    """Squared error summed over the features of each example.

    `sum((y_true - y_pred) ** 2)` per example (see `summed_squared_error`),
    then reduced over the batch. Half of it is the negative log-likelihood
    of a unit-variance Gaussian decoder up to a constant, so it has the
    scale of a per-example KL; Keras's `MeanSquaredError` averages over the
    last axis instead, which weighs the KL `num_features` times too much.

    Args:
        reduction: how the per-example losses are reduced, as for every
            Keras loss: `"sum_over_batch_size"` (the default, their mean),
            `"sum"`, `"mean"`, `"mean_with_sample_weight"` or `None`.
        name: the name of the loss instance.
        dtype: the dtype of the reduced loss; the loss itself is computed
            in float32.

    Call arguments:
        y_true: targets, shaped `(batch_size, ...)`.
        y_pred: predictions of the same shape.
        sample_weight: optional weights, one per example (`(batch_size,)`).

    Returns:
        The reduced loss: a scalar, or one value per example with
        `reduction=None`.

    Example:

    >>> loss = keras_latent.losses.SummedSquaredError()
    >>> loss(keras.ops.ones((2, 3)), keras.ops.zeros((2, 3)))
    3.0
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="summed_squared_error",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return summed_squared_error(y_true, y_pred)
