"""Activity regularizers for softmax-family and sigmoid hidden layers.

Keras divides the value an activity regularizer returns by the size of the
output's first axis (the batch) before it reaches `layer.losses` (Keras
3.14 and later). Each regularizer here returns a value that already holds
that factor, so the loss a model trains on has the scale stated in its
docstring whatever the batch size.
"""

import math

import keras
from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.kl import bernoulli_kl

# Mean activations are clipped into [_EPSILON, 1 - _EPSILON]; in float32
# 1 - 1e-7 is still below 1, so both logs of the Bernoulli KL stay finite.
_EPSILON = 1e-7


def _batch_size(x):
    """The size of the first axis for inputs of rank >= 2, else 1.

    This is the number Keras divides an activity regularizer's value by; a
    rank-1 input is taken as a single example (a vector of units).
    """
    if len(x.shape) < 2:
        return 1.0
    return ops.cast(ops.shape(x)[0], "float32")


@keras.saving.register_keras_serializable(package="keras_latent")
class Entropy(keras.regularizers.Regularizer):
    """Penalizes the entropy of groups of probabilities along the last axis.

    The last axis, of size `units`, is split into `groups` consecutive groups
    of `units // groups` entries; each group is one probability
    distribution `p` (for example the output of a softmax over that group),
    used as is, without renormalization. Its entropy is
    `H(p) = -sum_k p_k * log(p_k)`, with `0 * log(0) = 0`; entries <= 0 add
    nothing to the value or the gradient (the derivative at an exact zero,
    infinite in exact arithmetic, is taken as 0), so one-hot inputs give
    finite values and gradients. It ranges from 0 (one-hot) to
    `log(units // groups)` (uniform).

    Scale: for an input of shape `(batch_size, ..., units)`, every leading
    axis after the first counts as more groups of the same example. Calling
    the regularizer returns

    `weight * sum over examples of (mean H over that example's groups)`,

    that is `weight * batch_size * mean(H)`, the mean over all groups of all
    examples. Used as an `activity_regularizer`, Keras divides this by
    `batch_size`, so the loss in `layer.losses` and `model.losses` is
    `weight * mean(H)`: the same for any batch size, and at most
    `weight * log(units // groups)`. A rank-1 input is one example, and
    the call returns `weight * mean(H)`.

    A positive weight pushes each group towards a peaked, decisive
    distribution; to push towards uniform groups, add the negated penalty
    yourself (the weight must be >= 0).

    The entropy is computed and returned in float32 whatever the input's
    dtype, so that under a mixed-precision policy Keras can add it to the
    model's other float32 losses.

    Args:
        weight: float >= 0 that float32 holds, the factor of the mean
            entropy (1e39 would be inf, and inf * 0 NaN).
        groups: integer >= 1, the number of distributions on the last axis;
            it must divide the size of the last axis.

    Call arguments:
        x: tensor of probabilities of shape `(batch_size, ..., units)`.

    Returns:
        A float32 scalar tensor.

    Example:

    >>> regularizer = keras_latent.regularizers.Entropy(weight=1.0, groups=2)
    >>> x = keras.ops.convert_to_tensor([[0.5, 0.5, 1.0, 0.0]])
    >>> round(float(regularizer(x)), 4)  # mean of log(2) and 0
    0.3466

    References:
        - [Grandvalet and Bengio, 2004](
          https://papers.nips.cc/paper/2740-semi-supervised-learning-by-entropy-minimization)
    """

    def __init__(self, weight=0.01, groups=1):
        self.weight = validation.check_float32("weight", weight)
        self.groups = validation.check_integer("groups", groups, minimum=1)

    def __call__(self, x):
        x, _ = as_float32(x)
        units = x.shape[-1] if len(x.shape) > 0 else None
        if units is None or units % self.groups != 0:
            raise ValueError(
                "Invalid value received for argument `groups`. Expected a "
                "divisor of the (known) size of the input's last axis. "
                f"Received: groups={self.groups} for an input of shape "
                f"{tuple(x.shape)}"
            )
        # Every axis kept, the last split in two: a -1 in the new shape
        # could not be inferred from an empty batch.
        probabilities = ops.reshape(
            x, (*ops.shape(x)[:-1], self.groups, units // self.groups)
        )
        # log(1) = 0 stands in for log(0): it keeps -inf out of the value and
        # the infinite derivative of log at 0 out of the gradient.
        positive = probabilities > 0
        log_probabilities = ops.log(ops.where(positive, probabilities, 1.0))
        entropy = -ops.sum(probabilities * log_probabilities, axis=-1)
        if len(x.shape) < 2:
            return self.weight * ops.mean(entropy)
        per_example = ops.mean(entropy, axis=tuple(range(1, len(x.shape))))
        return self.weight * ops.sum(per_example)

    def get_config(self):
        return {"weight": self.weight, "groups": self.groups}


@keras.saving.register_keras_serializable(package="keras_latent")
class KLSparsity(keras.regularizers.Regularizer):
    """The sparse-autoencoder penalty on the mean activation of each unit.

    For activations in (0, 1) (a sigmoid layer), `rho_j` is the mean
    activation of unit `j` over the batch (and over any axes between the
    first and the last). The penalty is

    `weight * sum_j KL(target || rho_j)`, with the Bernoulli KL
    `KL(t || r) = t * log(t / r) + (1 - t) * log((1 - t) / (1 - r))`,

    zero when every unit fires with mean `target`, and growing as a unit's
    mean moves away from it. `rho_j` is clipped in float32 into
    `[1e-7, 1 - 1e-7]` (the upper end rounds to `1 - 2**-23`) so the value
    stays finite; a unit whose mean lies outside that range (a
    unit that is exactly 0 or 1 on the whole batch, or activations outside
    (0, 1)) adds a constant and receives no gradient.

    Scale: the penalty is a statistic of the whole batch, not a sum over
    examples. Calling the regularizer returns
    `batch_size * weight * sum_j KL(target || rho_j)`, with `batch_size`
    the size of the first axis, so that once Keras divides an activity
    regularizer's value by `batch_size` the loss in `layer.losses` and
    `model.losses` is `weight * sum_j KL(target || rho_j)`: for the same
    mean activations, the same loss for any batch size. A rank-1 input is
    one example (`rho_j` is the activation itself) and the call returns
    the penalty without a factor.

    The KL is computed and returned in float32 whatever the input's dtype,
    so that under a mixed-precision policy Keras can add it to the model's
    other float32 losses.

    Args:
        target: float strictly between 0 and 1, the desired mean activation.
        weight: float >= 0 that float32 holds, the factor of the summed KL
            (often called beta).

    Call arguments:
        x: tensor of activations in (0, 1), of shape
            `(batch_size, ..., units)`.

    Returns:
        A float32 scalar tensor.

    Example:

    >>> regularizer = keras_latent.regularizers.KLSparsity(target=0.5)
    >>> x = keras.ops.convert_to_tensor([[0.25, 0.5], [0.75, 0.5]])
    >>> float(regularizer(x))  # both units have mean 0.5
    0.0

    References:
        - [Ng, Sparse autoencoder, CS294A lecture notes, 2011](
          https://web.stanford.edu/class/cs294a/sparseAutoencoder_2011new.pdf)
    """

    def __init__(self, target=0.05, weight=1.0):
        self.target = validation.check_open_unit_interval("target", target)
        self.weight = validation.check_float32("weight", weight)

    def __call__(self, x):
        x, _ = as_float32(x)
        if len(x.shape) < 2:
            mean_activation = x
        else:
            mean_activation = ops.mean(x, axis=tuple(range(len(x.shape) - 1)))
        mean_activation = ops.clip(mean_activation, _EPSILON, 1.0 - _EPSILON)
        # KL(Bernoulli(target) || Bernoulli(rho)), from the log-odds of both.
        target_logit = math.log(self.target / (1.0 - self.target))
        mean_logit = ops.log(mean_activation) - ops.log1p(-mean_activation)
        kl = bernoulli_kl(target_logit, prior_logits=mean_logit)
        penalty = _batch_size(x) * self.weight * ops.sum(kl)
        # An empty batch has no mean activation (0 / 0) and adds nothing.
        return ops.where(ops.size(x) > 0, penalty, 0.0)

    def get_config(self):
        return {"target": self.target, "weight": self.weight}
