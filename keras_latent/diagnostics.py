"""Exact expectations and gradients over a few categorical variables.

For `N` categorical variables of `K` categories each, the `K ** N` joint
one-hot configurations can be listed, and the expectation of any function
under `q(z) = prod_n softmax(logits_n)[z_n]` summed exactly. This is the
reference that the bias and variance of a gradient estimator are measured
against, on a toy objective or on a model of your own.
"""

import itertools

import numpy as np
from keras import ops

from keras_latent import validation
from keras_latent.ops.discrete import one_hot_categorical_log_prob
from keras_latent.ops.dtypes import as_float32

DEFAULT_MAX_CONFIGURATIONS = 2**16


def one_hot_configurations(
    num_variables, num_categories, max_configurations=DEFAULT_MAX_CONFIGURATIONS
):
    """Every joint one-hot configuration of `num_variables` variables.

    The configurations come in lexicographic order of their categories,
    the first variable varying slowest: row `c` holds the one-hot codes of
    the digits of `c` written in base `num_categories`.

    Args:
        num_variables: an integer >= 1.
        num_categories: an integer >= 2.
        max_configurations: the largest `num_categories ** num_variables`
            accepted; the configurations take
            `4 * max_configurations * num_variables * num_categories` bytes.

    Returns:
        A float32 tensor of shape
        `(num_categories ** num_variables, num_variables, num_categories)`.

    Example:

    >>> codes = keras_latent.diagnostics.one_hot_configurations(2, 3)
    >>> tuple(codes.shape)
    (9, 2, 3)
    """
    num_variables = validation.check_integer(
        "num_variables", num_variables, minimum=1
    )
    num_categories = validation.check_integer(
        "num_categories", num_categories, minimum=2
    )
    max_configurations = validation.check_integer(
        "max_configurations", max_configurations, minimum=1
    )
    count = num_categories**num_variables
    if count > max_configurations:
        raise ValueError(
            "Invalid value received for argument `num_variables`. Expected "
            f"num_categories ** num_variables <= max_configurations="
            f"{max_configurations} joint configurations to enumerate. "
            f"Received: num_variables={num_variables} with "
            f"num_categories={num_categories}, {count} configurations"
        )
    categories = np.array(
        list(itertools.product(range(num_categories), repeat=num_variables)),
        dtype="int64",
    )
    codes = np.eye(num_categories, dtype="float32")[categories]
    return ops.convert_to_tensor(codes)


def _configurations_and_log_probs(logits, max_configurations):
    """The configurations and their log-probabilities `(C, *batch_shape)`."""
    logits, dtype = as_float32(logits)
    if len(logits.shape) < 2 or None in logits.shape[-2:]:
        raise validation.invalid_shape(
            "logits",
            "a shape (..., num_variables, num_categories) with known last "
            "two dimensions",
            logits.shape,
        )
    num_variables, num_categories = logits.shape[-2:]
    codes = one_hot_configurations(
        num_variables, num_categories, max_configurations
    )
    batch_rank = len(logits.shape) - 2
    broadcast_codes = ops.reshape(
        codes, (-1, *([1] * batch_rank), num_variables, num_categories)
    )
    log_probs = ops.sum(
        one_hot_categorical_log_prob(broadcast_codes, logits), axis=-1
    )
    return logits, dtype, codes, log_probs


def _values(fn, codes, log_probs):
    """`fn(codes)` in float32, checked against the shape of `log_probs`,
    and 0 on the configurations of probability exactly 0 (a `-inf` logit),
    which the expectation leaves out even where `fn` is infinite or NaN."""
    values, _ = as_float32(fn(codes))
    if tuple(values.shape) != tuple(log_probs.shape) and tuple(
        values.shape
    ) != (log_probs.shape[0],):
        raise ValueError(
            "Invalid value received for argument `fn`. Expected a function "
            "returning one value per configuration, of shape "
            f"(num_configurations, *batch_shape) = {tuple(log_probs.shape)}. "
            f"Received: fn(codes).shape={tuple(values.shape)}"
        )
    if len(values.shape) < len(log_probs.shape):
        values = ops.reshape(values, (-1, *([1] * (len(log_probs.shape) - 1))))
    return ops.where(ops.equal(log_probs, -np.inf), 0.0, values)


def exact_expectation(
    fn, logits, max_configurations=DEFAULT_MAX_CONFIGURATIONS
):
    """The exact expectation of `fn(z)` under independent categoricals.

    `E_q[fn(z)] = sum_z q(z) fn(z)`, summed over all
    `num_categories ** num_variables` joint one-hot configurations `z`
    (see `one_hot_configurations`), with
    `q(z) = prod_n softmax(logits[..., n, :])[z_n]`. The result is
    differentiable with respect to `logits` (and to whatever `fn` closes
    over) on every backend; `exact_gradient` gives the gradient with
    respect to the logits without automatic differentiation. Computed in
    float32; categories masked with `-inf` logits have probability 0, and
    the configurations that use them are left out, even where `fn` is
    infinite or NaN on them.

    Args:
        fn: a function written with `keras.ops` mapping the configurations,
            a float32 tensor of shape
            `(num_configurations, num_variables, num_categories)`, to
            their values, of shape `(num_configurations,)` or
            `(num_configurations, *batch_shape)` for batched logits.
        logits: a float tensor of shape
            `(*batch_shape, num_variables, num_categories)`.
        max_configurations: the largest number of configurations accepted;
            more raise a `ValueError`.

    Returns:
        A tensor of shape `batch_shape` in the dtype of `logits`.

    Example:

    >>> logits = keras.ops.zeros((2, 3))
    >>> def first_variable_is_category_0(codes):
    ...     return codes[:, 0, 0]
    >>> round(float(keras_latent.diagnostics.exact_expectation(
    ...     first_variable_is_category_0, logits)), 4)
    0.3333
    """
    logits, dtype, codes, log_probs = _configurations_and_log_probs(
        logits, max_configurations
    )
    values = _values(fn, codes, log_probs)
    return ops.cast(ops.sum(ops.exp(log_probs) * values, axis=0), dtype)


def exact_gradient(fn, logits, max_configurations=DEFAULT_MAX_CONFIGURATIONS):
    """The exact gradient of `E_q[fn(z)]` with respect to the logits.

    By the score-function identity, summed over every configuration rather
    than sampled:

    `d E_q[fn] / d logits[n, k] = sum_z q(z) (fn(z) - E_q[fn]) (z[n, k] -
    softmax(logits[n])[k])`,

    since `d log q(z) / d logits[n, k] = z[n, k] - softmax(logits[n])[k]`.
    Subtracting `E_q[fn]` changes nothing (the score has mean zero) but
    keeps float32 from losing a small gradient next to a large mean. `fn`
    is only evaluated, never differentiated, so it may be any function of
    the codes, on any backend. It is the expectation's derivative for `fn`
    independent of the logits; `fn` is evaluated once, as in
    `exact_expectation`.

    Args:
        fn: as in `exact_expectation`.
        logits: as in `exact_expectation`.
        max_configurations: as in `exact_expectation`.

    Returns:
        A tensor of the shape and dtype of `logits`.

    Example:

    >>> logits = keras.ops.zeros((1, 2))
    >>> def category_1(codes):
    ...     return codes[:, 0, 1]
    >>> keras.ops.convert_to_numpy(keras_latent.diagnostics.exact_gradient(
    ...     category_1, logits))
    array([[-0.25,  0.25]], dtype=float32)
    """
    logits, dtype, codes, log_probs = _configurations_and_log_probs(
        logits, max_configurations
    )
    values = _values(fn, codes, log_probs)
    probabilities = ops.exp(log_probs)
    mean = ops.sum(probabilities * values, axis=0)
    weights = probabilities * (values - mean)
    # sum_z w(z) z[n, k] for every batch entry, as one matrix product.
    num_configurations = ops.shape(codes)[0]
    flat_weights = ops.reshape(weights, (num_configurations, -1))
    flat_codes = ops.reshape(codes, (num_configurations, -1))
    weighted_codes = ops.reshape(
        ops.matmul(ops.transpose(flat_weights), flat_codes),
        ops.shape(logits),
    )
    total_weight = ops.expand_dims(ops.expand_dims(ops.sum(weights, 0), -1), -1)
    gradient = weighted_codes - total_weight * ops.softmax(logits, axis=-1)
    return ops.cast(gradient, dtype)
