"""Content-based addressing of a memory (Neural Turing Machine read)."""

import math

from keras import ops

from keras_latent import validation
from keras_latent.ops.dtypes import as_float32
from keras_latent.ops.gumbel import gumbel_softmax
from keras_latent.ops.gumbel import one_hot_argmax
from keras_latent.ops.simplex import NORMALIZERS

# The deterministic normalizers, then "gumbel" (a hard straight-through
# sample) and "argmax" (that sample's mode, without gradient).
# "entmax" takes an alpha, which addressing does not: its fixed-alpha
# member is "entmax15".
FIXED_NORMALIZERS = tuple(name for name in NORMALIZERS if name != "entmax")
ADDRESSING_NORMALIZERS = (*FIXED_NORMALIZERS, "gumbel", "argmax")


# The norm floor is applied to squared norms, in float32: its square must
# be a normal float32 number, or a zero vector would give 0 / 0.
SMALLEST_EPSILON = math.sqrt(validation.FLOAT32_TINY)
LARGEST_EPSILON = math.sqrt(validation.FLOAT32_MAX)


def check_epsilon(epsilon):
    """Checks the norm floor of `cosine_similarity`; returns it as a float."""
    if (
        not validation.is_python_number(epsilon)
        or not SMALLEST_EPSILON <= epsilon <= LARGEST_EPSILON
    ):
        raise validation.invalid_value(
            "epsilon",
            f"a float value between {SMALLEST_EPSILON:.6g} and "
            f"{LARGEST_EPSILON:.6g} (its square is the floor of a float32 "
            "squared norm)",
            epsilon,
        )
    return float(epsilon)


def _check_rows(vectors, rows, rows_name, rows_axis, size_name):
    """Checks that `rows` has rank >= 2 and, along `rows_axis`, the size of
    the last axis of `vectors` (where both are known)."""
    size = vectors.shape[-1] if len(vectors.shape) > 0 else None
    if len(rows.shape) < 2:
        raise validation.invalid_shape(
            rows_name, "a tensor of rank >= 2", rows.shape
        )
    rows_size = rows.shape[rows_axis]
    if size is not None and rows_size is not None and size != rows_size:
        raise validation.invalid_shape(
            rows_name,
            f"{size_name} ({size}) along axis {rows_axis}",
            rows.shape,
        )


def _unit_vectors(x, epsilon):
    """`x / max(norm(x), epsilon)` along the last axis.

    The floor applies to the squared norm, so a zero vector maps to zero
    with a finite gradient: `sqrt` is never differentiated at 0, and the
    gradient through the constant branch of `maximum` is 0.

    A vector with an entry of size 1 or more is first divided by its
    largest entry (without gradient; the result does not depend on it):
    entries from about 1e19 on would square to inf in float32, and the
    vector would map to zero. Its squared norm is then at least 1, above
    the floor, which it would also exceed unscaled.
    """
    largest = ops.stop_gradient(ops.amax(ops.abs(x), axis=-1, keepdims=True))
    scale = ops.where(largest > 1.0, largest, 1.0)
    x = x / scale
    squared_norm = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x / ops.sqrt(ops.maximum(squared_norm, ops.square(epsilon / scale)))


def cosine_similarity(keys, memory, epsilon=1e-6):
    """The cosine similarity between each key and each row of a memory.

    `similarity[..., i] = dot(key, memory[..., i, :]) /
    (max(norm(key), epsilon) * max(norm(memory[..., i, :]), epsilon))`:
    the cosine of the angle between the key and slot `i`, in [-1, 1]. A
    zero key or a zero slot gets similarity 0, with finite gradients.

    Args:
        keys: float tensor of shape `(..., key_size)`.
        memory: float tensor of shape `(..., num_slots, key_size)`. The
            leading axes of `keys` and `memory` broadcast, so one memory of
            shape `(num_slots, key_size)` serves a batch of keys.
        epsilon: the floor of each norm, a float between about 1.08e-19
            and 1.84e19 (its square, the floor of a float32 squared norm,
            must be a normal float32 number).

    Returns:
        A tensor of shape `(..., num_slots)` in the dtype of `keys`.

    Example:

    >>> keys = keras.ops.convert_to_tensor([[1.0, 0.0]])
    >>> memory = keras.ops.convert_to_tensor([[2.0, 0.0], [0.0, 3.0]])
    >>> similarity = keras_latent.ops.cosine_similarity(keys, memory)
    >>> keras.ops.convert_to_numpy(similarity).tolist()
    [[1.0, 0.0]]

    References:
        - [Graves et al., 2014, section 3.3.1](
          https://arxiv.org/abs/1410.5401)
    """
    epsilon = check_epsilon(epsilon)
    keys, dtype = as_float32(keys)
    memory, _ = as_float32(memory)
    _check_rows(keys, memory, "memory", -1, "the key size")
    unit_keys = ops.expand_dims(_unit_vectors(keys, epsilon), -1)
    similarity = ops.matmul(_unit_vectors(memory, epsilon), unit_keys)
    return ops.cast(ops.squeeze(similarity, -1), dtype)


def content_weights(
    key,
    memory,
    key_strength=1.0,
    normalizer="softmax",
    seed=None,
    epsilon=1e-6,
):
    """Content-based addressing weights of a memory's slots.

    `weights = normalize(key_strength * cosine_similarity(key, memory))`
    over the slots: the key strength (beta) sharpens the similarities
    before `normalizer` maps them onto the probability simplex.
    `"softmax"` gives the dense weights of the Neural Turing Machine;
    `"sparsemax"` and `"entmax15"` give weights with exact zeros (see
    `keras_latent.ops.sparsemax` and `keras_latent.ops.entmax15`);
    `"gumbel"` draws the one-hot of an exact sample from
    `Categorical(softmax(key_strength * similarity))`, with the
    straight-through gradient of the Gumbel-softmax sample at temperature
    1 (see `keras_latent.ops.gumbel_softmax`); `"argmax"` gives the one-hot
    of the most similar slot (ties to the lowest index), the mode of the
    `"gumbel"` sample, without gradient.

    Args:
        key: float tensor of shape `(..., key_size)`.
        memory: float tensor of shape `(..., num_slots, key_size)`, whose
            leading axes broadcast with those of `key`.
        key_strength: the sharpening factor beta, a float >= 0 that float32
            holds (0, or between 1.18e-38 and 3.4e38), or a
            tensor of shape `(..., 1)` (for example the softplus of a
            network output), which broadcasts with the similarities.
        normalizer: `"softmax"`, `"sparsemax"`, `"entmax15"`, `"gumbel"` or
            `"argmax"`.
        seed: an integer, a `keras.random.SeedGenerator`, or None; used by
            `"gumbel"` only. Inside a layer pass the layer's
            `SeedGenerator` so that every call draws new noise.
        epsilon: the floor of each norm in the cosine similarity, a float
            between about 1.08e-19 and 1.84e19 (see `cosine_similarity`).

    Returns:
        A tensor of shape `(..., num_slots)` in the dtype of `key`, each
        slice over the slots summing to 1.

    Example:

    >>> key = keras.ops.convert_to_tensor([[1.0, 0.0]])
    >>> memory = keras.ops.convert_to_tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> weights = keras_latent.ops.content_weights(
    ...     key, memory, 2.0, "sparsemax")
    >>> keras.ops.convert_to_numpy(weights).tolist()
    [[1.0, 0.0]]

    References:
        - [Graves et al., 2014, section 3.3.1](
          https://arxiv.org/abs/1410.5401)
        - [Graves et al., 2016](https://doi.org/10.1038/nature20101)
    """
    normalizer = validation.check_choice(
        "normalizer", normalizer, ADDRESSING_NORMALIZERS
    )
    if validation.is_python_number(key_strength):
        key_strength = validation.check_float32("key_strength", key_strength)
    else:
        # A negative tensor would address the least similar slots: NaN.
        key_strength = validation.nan_below(key_strength, 0.0)
    key, dtype = as_float32(key)
    key_strength, _ = as_float32(key_strength)
    logits = key_strength * cosine_similarity(key, memory, epsilon)
    if normalizer == "gumbel":
        weights = gumbel_softmax(logits, hard=True, seed=seed)
    elif normalizer == "argmax":
        weights = one_hot_argmax(ops.stop_gradient(logits))
    else:
        weights = NORMALIZERS[normalizer](logits, axis=-1)
    return ops.cast(weights, dtype)


def weighted_read(weights, values):
    """The read of a memory under addressing weights.

    `read = sum_i weights[..., i] * values[..., i, :]`, the weighted sum of
    the memory's rows.

    Args:
        weights: float tensor of shape `(..., num_slots)`.
        values: float tensor of shape `(..., num_slots, value_size)`, whose
            leading axes broadcast with those of `weights`.

    Returns:
        A tensor of shape `(..., value_size)` in the dtype of `weights`.

    Example:

    >>> weights = keras.ops.convert_to_tensor([[0.25, 0.75]])
    >>> values = keras.ops.convert_to_tensor([[4.0, 0.0], [0.0, 4.0]])
    >>> read = keras_latent.ops.weighted_read(weights, values)
    >>> keras.ops.convert_to_numpy(read).tolist()
    [[1.0, 3.0]]
    """
    weights, dtype = as_float32(weights)
    values, _ = as_float32(values)
    _check_rows(weights, values, "values", -2, "the number of slots")
    read = ops.matmul(ops.expand_dims(weights, -2), values)
    return ops.cast(ops.squeeze(read, -2), dtype)
