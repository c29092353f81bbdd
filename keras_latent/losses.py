"""Reconstruction losses summed over features; Fenchel-Young losses.

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

The Fenchel-Young losses (`SparsemaxLoss`, `Entmax15Loss`,
`EntmaxBisectLoss`) are the classification losses of sparse outputs: they
take logits and labels, as `keras.losses.SparseCategoricalCrossentropy(
from_logits=True)` does, and train a model whose predictions, normalized by
sparsemax or entmax, put exactly zero probability on most classes. Their
math is in `keras_latent.ops.fenchel_young`.
"""

import keras
import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops import fenchel_young


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
    >>> loss = keras_latent.losses.summed_binary_crossentropy(
    ...     images, logits, from_logits=True)
    >>> keras.ops.convert_to_numpy(loss)  # 2 * log(2) per example
    array([1.3862944, 1.3862944], dtype=float32)
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
    >>> float(loss(images, keras.ops.zeros((2, 2))))  # 2 * log(2)
    1.38629...
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
    >>> float(loss(keras.ops.ones((2, 3)), keras.ops.zeros((2, 3))))
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


def _targets(y_true, y_pred, sparse_y_true):
    """The targets as distributions along the last axis of `y_pred`.

    With `sparse_y_true`, `y_true` holds class indices, shaped like `y_pred`
    without its last axis (or with a last axis of size 1, as Keras's
    `sparse_categorical_crossentropy` accepts); an index that is not an
    integer in `[0, num_classes)` names no class and gives a NaN target,
    and so a NaN loss rather than a plausible finite one.
    """
    sparse_y_true = validation.check_bool("sparse_y_true", sparse_y_true)
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    if not sparse_y_true:
        return y_true
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    classes = ops.arange(ops.shape(y_pred)[-1], dtype="float32")
    is_label = ops.equal(ops.expand_dims(y_true, -1), classes)
    names_a_class = ops.any(is_label, axis=-1, keepdims=True)
    return ops.where(names_a_class, ops.cast(is_label, "float32"), np.nan)


@keras.saving.register_keras_serializable(package="keras_latent")
def sparsemax_loss(y_true, y_pred, sparse_y_true=True):
    """The sparsemax loss of each example (Martins and Astudillo, 2016).

    The Fenchel-Young loss whose prediction is `sparsemax(y_pred)`:
    `<p - y, z> + (|y| ** 2 - |p| ** 2) / 2` for logits `z`, target
    distribution `y` and `p = sparsemax(z)`. See `SparsemaxLoss`.

    Args:
        y_true: class indices (with `sparse_y_true=True`), shaped like
            `y_pred` without its last axis, or distributions over the
            classes shaped like `y_pred`.
        y_pred: logits, shaped `(batch_size, ..., num_classes)`.
        sparse_y_true: whether `y_true` holds class indices.

    Returns:
        A tensor of the shape of `y_pred` without its last axis.

    Example:

    >>> loss = keras_latent.losses.sparsemax_loss([1], [[2.0, 0.0, -1.0]])
    >>> keras.ops.convert_to_numpy(loss).tolist()
    [2.0]
    """
    y_pred = ops.convert_to_tensor(y_pred)
    return fenchel_young.sparsemax_loss(
        _targets(y_true, y_pred, sparse_y_true), y_pred
    )


@keras.saving.register_keras_serializable(package="keras_latent")
def entmax15_loss(y_true, y_pred, sparse_y_true=True):
    """The 1.5-entmax loss of each example (Peters et al., 2019).

    The Fenchel-Young loss whose prediction is `entmax15(y_pred)`. See
    `Entmax15Loss`.

    Args:
        y_true: class indices (with `sparse_y_true=True`), shaped like
            `y_pred` without its last axis, or distributions over the
            classes shaped like `y_pred`.
        y_pred: logits, shaped `(batch_size, ..., num_classes)`.
        sparse_y_true: whether `y_true` holds class indices.

    Returns:
        A tensor of the shape of `y_pred` without its last axis.

    Example:

    >>> loss = keras_latent.losses.entmax15_loss([0], [[4.0, 0.0, -1.0]])
    >>> keras.ops.convert_to_numpy(loss).tolist()
    [0.0]
    """
    y_pred = ops.convert_to_tensor(y_pred)
    return fenchel_young.entmax15_loss(
        _targets(y_true, y_pred, sparse_y_true), y_pred
    )


@keras.saving.register_keras_serializable(package="keras_latent")
def entmax_bisect_loss(
    y_true, y_pred, alpha=1.5, sparse_y_true=True, n_iter=50
):
    """The alpha-entmax loss of each example (Blondel et al., 2020).

    The Fenchel-Young loss whose prediction is `entmax_bisect(y_pred,
    alpha)`. See `EntmaxBisectLoss`.

    Args:
        y_true: class indices (with `sparse_y_true=True`), shaped like
            `y_pred` without its last axis, or distributions over the
            classes shaped like `y_pred`.
        y_pred: logits, shaped `(batch_size, ..., num_classes)`.
        alpha: float >= 1, the entmax index.
        sparse_y_true: whether `y_true` holds class indices.
        n_iter: integer >= 1, the bisection steps of `entmax_bisect`.

    Returns:
        A tensor of the shape of `y_pred` without its last axis.

    Example:

    >>> loss = keras_latent.losses.entmax_bisect_loss(
    ...     [0], [[0.0, 0.0]], alpha=2.0)
    >>> keras.ops.convert_to_numpy(loss).tolist()
    [0.25]
    """
    y_pred = ops.convert_to_tensor(y_pred)
    return fenchel_young.entmax_bisect_loss(
        _targets(y_true, y_pred, sparse_y_true),
        y_pred,
        alpha=alpha,
        n_iter=n_iter,
    )


class _FenchelYoungLoss(keras.losses.Loss):
    """The label format, reduction and config shared by the losses below."""

    def __init__(self, sparse_y_true, reduction, name, dtype):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.sparse_y_true = validation.check_bool(
            "sparse_y_true", sparse_y_true
        )

    def get_config(self):
        return {**super().get_config(), "sparse_y_true": self.sparse_y_true}


@keras.saving.register_keras_serializable(package="keras_latent")
class SparsemaxLoss(_FenchelYoungLoss):
    """The sparsemax loss: the classification loss of sparsemax outputs.

    For logits `z` and a target distribution `y` (the one-hot of the label),
    `loss = <p - y, z> + (|y| ** 2 - |p| ** 2) / 2` with `p = sparsemax(z)`
    (Martins and Astudillo, 2016). It is the Fenchel-Young loss of the
    Tsallis negentropy of index 2 (Blondel et al., 2020): >= 0, 0 exactly
    when `sparsemax(z)` is the target, which it reaches at finite logits
    once the label's logit leads all others by 1, and with gradient
    `sparsemax(z) - y`. Predict with `keras_latent.ops.sparsemax` of the
    logits: it puts exactly zero probability on the classes the loss has
    ruled out. Entries of `-inf` in the logits mask classes; a label on a
    masked class has an infinite loss. NaN logits give a NaN loss.

    Args:
        sparse_y_true: whether the labels are class indices (`True`, the
            default), shaped like the logits without their last axis (or
            with a last axis of size 1), or distributions over the classes
            (`False`: one-hot or soft labels), shaped like the logits. The
            name and meaning are those of `keras.metrics.IoU`'s argument: one
            class per loss serves both formats, where Keras pairs
            `SparseCategoricalCrossentropy` with `CategoricalCrossentropy`.
            An index that names no class gives a NaN loss.
        reduction: how the per-example losses are reduced, as for every
            Keras loss: `"sum_over_batch_size"` (the default, their mean),
            `"sum"`, `"mean"`, `"mean_with_sample_weight"` or `None`.
        name: the name of the loss instance.
        dtype: the dtype of the reduced loss; the loss itself is computed
            in float32.

    Call arguments:
        y_true: the labels (see `sparse_y_true`).
        y_pred: logits, shaped `(batch_size, ..., num_classes)`. There is no
            `from_logits`: a Fenchel-Young loss is defined on scores, and
            its normalizer, not a softmax, turns them into a prediction.
        sample_weight: optional weights, one per example (`(batch_size,)`),
            or one per loss value (the shape of `y_pred` without its last
            axis).

    Returns:
        The reduced loss: a scalar, or one value per example with
        `reduction=None`.

    Example:

    >>> loss = keras_latent.losses.SparsemaxLoss()
    >>> float(loss([1, 0], [[2.0, 0.0, -1.0], [2.0, 0.0, -1.0]]))  # (2 + 0) / 2
    1.0

    References:
        - [Martins and Astudillo, 2016](https://arxiv.org/abs/1602.02068)
        - [Blondel et al., 2020](https://arxiv.org/abs/1901.02324)
    """

    def __init__(
        self,
        sparse_y_true: bool = True,
        reduction="sum_over_batch_size",
        name="sparsemax_loss",
        dtype=None,
    ):
        super().__init__(sparse_y_true, reduction, name, dtype)

    def call(self, y_true, y_pred):
        return sparsemax_loss(y_true, y_pred, self.sparse_y_true)


@keras.saving.register_keras_serializable(package="keras_latent")
class Entmax15Loss(_FenchelYoungLoss):
    """The 1.5-entmax loss: the classification loss of entmax15 outputs.

    For logits `z` and a target distribution `y` (the one-hot of the label),
    `loss = <p - y, z> + Omega(y) - Omega(p)` with `p = entmax15(z)` and
    `Omega(p) = (sum_i p_i ** 1.5 - 1) / 0.75` (Peters et al., 2019): the
    Fenchel-Young loss of the Tsallis negentropy of index 1.5 (Blondel et
    al., 2020). It is >= 0, 0 exactly when `entmax15(z)` is the target
    (once the label's logit leads all others by 2), and its gradient is
    `entmax15(z) - y`. Its predictions, `keras_latent.ops.entmax15` of the
    logits, are sparse like sparsemax's but keep more classes. Entries of
    `-inf` in the logits mask classes; a label on a masked class has an
    infinite loss. NaN logits give a NaN loss.

    Args:
        sparse_y_true: whether the labels are class indices (`True`, the
            default), shaped like the logits without their last axis (or
            with a last axis of size 1), or distributions over the classes
            (`False`: one-hot or soft labels), shaped like the logits. The
            name and meaning are those of `keras.metrics.IoU`'s argument: one
            class per loss serves both formats, where Keras pairs
            `SparseCategoricalCrossentropy` with `CategoricalCrossentropy`.
            An index that names no class gives a NaN loss.
        reduction: how the per-example losses are reduced, as for every
            Keras loss: `"sum_over_batch_size"` (the default, their mean),
            `"sum"`, `"mean"`, `"mean_with_sample_weight"` or `None`.
        name: the name of the loss instance.
        dtype: the dtype of the reduced loss; the loss itself is computed
            in float32.

    Call arguments:
        y_true: the labels (see `sparse_y_true`).
        y_pred: logits, shaped `(batch_size, ..., num_classes)`. There is no
            `from_logits`: a Fenchel-Young loss is defined on scores, and
            its normalizer, not a softmax, turns them into a prediction.
        sample_weight: optional weights, one per example (`(batch_size,)`),
            or one per loss value (the shape of `y_pred` without its last
            axis).

    Returns:
        The reduced loss: a scalar, or one value per example with
        `reduction=None`.

    Example:

    >>> loss = keras_latent.losses.Entmax15Loss(reduction=None)
    >>> values = loss([0, 1], [[4.0, 0.0, -1.0], [4.0, 0.0, -1.0]])
    >>> keras.ops.convert_to_numpy(values).tolist()
    [0.0, 4.0]

    References:
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
        - [Blondel et al., 2020](https://arxiv.org/abs/1901.02324)
    """

    def __init__(
        self,
        sparse_y_true: bool = True,
        reduction="sum_over_batch_size",
        name="entmax15_loss",
        dtype=None,
    ):
        super().__init__(sparse_y_true, reduction, name, dtype)

    def call(self, y_true, y_pred):
        return entmax15_loss(y_true, y_pred, self.sparse_y_true)


@keras.saving.register_keras_serializable(package="keras_latent")
class EntmaxBisectLoss(_FenchelYoungLoss):
    """The alpha-entmax loss, for any `alpha >= 1`.

    For logits `z` and a target distribution `y` (the one-hot of the label),
    `loss = <p - y, z> + Omega(y) - Omega(p)` with
    `p = entmax_bisect(z, alpha)` and `Omega` the Tsallis negentropy
    `(sum_i p_i ** alpha - 1) / (alpha * (alpha - 1))` (Blondel et al.,
    2020). It is >= 0, 0 exactly when the prediction is the target (for
    `alpha > 1`, once the label's logit leads all others by
    `1 / (alpha - 1)`), and its gradient is `entmax_bisect(z, alpha) - y`.
    `alpha=2` is `SparsemaxLoss`, `alpha=1.5` is `Entmax15Loss` (which finds
    the threshold exactly from its support), and `alpha=1` is the softmax
    cross-entropy minus the entropy of the labels (so, for one-hot labels,
    `SparseCategoricalCrossentropy(from_logits=True)`): `alpha` moves
    continuously from dense to sparse predictions. Predict with
    `keras_latent.ops.entmax_bisect(logits, alpha)`. Entries of `-inf` in
    the logits mask classes; a label on a masked class has an infinite
    loss. NaN logits give a NaN loss.

    Args:
        alpha: float >= 1, the entmax index.
        n_iter: integer >= 1, the bisection steps of
            `keras_latent.ops.entmax_bisect`.
        sparse_y_true: whether the labels are class indices (`True`, the
            default), shaped like the logits without their last axis (or
            with a last axis of size 1), or distributions over the classes
            (`False`: one-hot or soft labels), shaped like the logits. The
            name and meaning are those of `keras.metrics.IoU`'s argument: one
            class per loss serves both formats, where Keras pairs
            `SparseCategoricalCrossentropy` with `CategoricalCrossentropy`.
            An index that names no class gives a NaN loss.
        reduction: how the per-example losses are reduced, as for every
            Keras loss: `"sum_over_batch_size"` (the default, their mean),
            `"sum"`, `"mean"`, `"mean_with_sample_weight"` or `None`.
        name: the name of the loss instance.
        dtype: the dtype of the reduced loss; the loss itself is computed
            in float32.

    Call arguments:
        y_true: the labels (see `sparse_y_true`).
        y_pred: logits, shaped `(batch_size, ..., num_classes)`. There is no
            `from_logits`: a Fenchel-Young loss is defined on scores, and
            its normalizer, not a softmax, turns them into a prediction.
        sample_weight: optional weights, one per example (`(batch_size,)`),
            or one per loss value (the shape of `y_pred` without its last
            axis).

    Returns:
        The reduced loss: a scalar, or one value per example with
        `reduction=None`.

    Example:

    >>> loss = keras_latent.losses.EntmaxBisectLoss(alpha=1.5)
    >>> float(loss([0], [[0.0, 0.0]]))  # p = [0.5, 0.5]
    0.39052...

    References:
        - [Blondel et al., 2020](https://arxiv.org/abs/1901.02324)
        - [Peters et al., 2019](https://arxiv.org/abs/1905.05702)
    """

    def __init__(
        self,
        alpha: float = 1.5,
        n_iter: int = 50,
        sparse_y_true: bool = True,
        reduction="sum_over_batch_size",
        name="entmax_bisect_loss",
        dtype=None,
    ):
        super().__init__(sparse_y_true, reduction, name, dtype)
        self.alpha = validation.check_float_at_least("alpha", alpha, 1)
        self.n_iter = validation.check_integer("n_iter", n_iter, 1)

    def call(self, y_true, y_pred):
        return entmax_bisect_loss(
            y_true,
            y_pred,
            alpha=self.alpha,
            sparse_y_true=self.sparse_y_true,
            n_iter=self.n_iter,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "n_iter": self.n_iter,
        }
