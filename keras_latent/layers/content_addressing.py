"""Content-based addressing: the read of a Neural Turing Machine's memory."""

import math

import keras
from keras import ops

from keras_latent import ops as latent_ops
from keras_latent import validation
from keras_latent.ops.content_addressing import FIXED_NORMALIZERS
from keras_latent.ops.content_addressing import check_epsilon

NORMALIZERS = (*FIXED_NORMALIZERS, "gumbel")


def inverse_softplus(value):
    """The `x` with `softplus(x) = value`, for a float `value > 0`.

    `log(expm1(value))`, written so that it does not overflow for large
    values.
    """
    return value + math.log(-math.expm1(-value))


def check_shape(name, shape, expected):
    """Checks a shape against `expected`, where None matches any size."""
    compatible = len(shape) == len(expected) and all(
        None in (size, expected_size) or size == expected_size
        for size, expected_size in zip(shape, expected, strict=True)
    )
    if not compatible:
        sizes = ", ".join(
            "?" if size is None else str(size) for size in expected
        )
        raise validation.invalid_shape(
            name, f"a tensor of shape ({sizes}), ? being any size", shape
        )


def check_num_slots_and_slot_size(num_slots, slot_size):
    """Both None (the memory is an input) or both integers >= 1."""
    if num_slots is None and slot_size is None:
        return None, None
    if num_slots is None:
        raise ValueError(
            "Invalid value received for argument `num_slots`. Expected an "
            "integer >= 1 when `slot_size` is given (both None to pass the "
            f"memory as an input). Received: num_slots=None, "
            f"slot_size={slot_size!r}"
        )
    if slot_size is None:
        raise ValueError(
            "Invalid value received for argument `slot_size`. Expected an "
            "integer >= 1 when `num_slots` is given (both None to pass the "
            f"memory as an input). Received: slot_size=None, "
            f"num_slots={num_slots!r}"
        )
    return (
        validation.check_integer("num_slots", num_slots, minimum=1),
        validation.check_integer("slot_size", slot_size, minimum=1),
    )


def add_head_axes(x, num_heads_axes):
    """Inserts `num_heads_axes` axes of size 1 after the batch axis."""
    for _ in range(num_heads_axes):
        x = ops.expand_dims(x, 1)
    return x


@keras.saving.register_keras_serializable(package="keras_latent")
class ContentAddressing(keras.layers.Layer):
    """Reads a memory by content: the addressing of a Neural Turing Machine.

    For a key `k` and a memory of `num_slots` rows `M[i]`, the layer computes
    the cosine similarity `K[i] = cos(k, M[i])`, sharpens it by the key
    strength `beta > 0` and normalizes over the slots:
    `weights = normalize(beta * K)`; the read is `sum_i weights[i] * V[i]`,
    where the values `V` are the memory itself unless a separate `values`
    input is given (a key-value memory: weights from the keys, read from the
    values). See `keras_latent.ops.content_weights`.

    The normalizer is `"softmax"` (the Neural Turing Machine's dense
    weights), `"sparsemax"` or `"entmax15"` (weights with exact zeros), or
    `"gumbel"`: in training, the one-hot of an exact sample from
    `Categorical(softmax(beta * K))`, drawn with the layer's
    `SeedGenerator`, with the straight-through gradient of the
    Gumbel-softmax sample at temperature 1; at inference, the one-hot of the
    most similar slot (ties to the lowest index), so the read is one memory
    row in both cases.

    The memory is either a trainable matrix of the layer, of shape
    `(num_slots, slot_size)`, or (when both are None) the `memory` call
    argument. The key strength is either learned, `beta =
    softplus(layer.raw_key_strength)`, a trainable float32 scalar starting
    at `beta = key_strength`, or (when `key_strength=None`) computed from
    the `key_strength` call argument as `softplus(key_strength)`, as the
    controller of a Neural Turing Machine emits it.

    Args:
        num_slots: the number of rows of a trainable memory, an integer
            >= 1, or None (with `slot_size=None`) to pass the memory as an
            input.
        slot_size: the size of each row of a trainable memory, an integer
            >= 1, or None (with `num_slots=None`).
        normalizer: `"softmax"`, `"sparsemax"`, `"entmax15"` or `"gumbel"`.
        key_strength: the initial value of the learned key strength, a
            float > 0 that float32 holds (between 1.18e-38 and 3.4e38), or
            None to take it from the `key_strength` call argument.
        return_weights: whether to return the addressing weights with the
            read.
        memory_initializer: initializer of the trainable memory.
        epsilon: the floor of each norm in the cosine similarity (a zero
            key or zero row has similarity 0), a float between about
            1.08e-19 and 1.84e19 (see `keras_latent.ops.cosine_similarity`).
        seed: an integer or None, the seed of the layer's `SeedGenerator`
            (used by `"gumbel"`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        key: float tensor of shape `(batch, ..., key_size)`; each index of
            the axes between the batch and the last one is a separate read
            head. `key_size` must equal `slot_size`, or the last dimension
            of `memory`.
        memory: float tensor of shape `(batch, num_slots, key_size)`.
            Required when the layer has no trainable memory, and not
            accepted when it has one.
        values: optional float tensor of shape
            `(batch, num_slots, value_size)`, read with the weights computed
            on `memory`. Defaults to the memory.
        key_strength: float tensor of shape `(batch, ..., 1)`, one
            pre-activation per key: `beta = softplus(key_strength)`.
            Required when the layer was built with `key_strength=None`, and
            not accepted otherwise.
        training: whether `"gumbel"` samples (training) or takes the most
            similar slot (inference). The other normalizers ignore it.

    Returns:
        The read, a tensor of shape `(batch, ..., value_size)` (`value_size`
        being the last dimension of `values`, else of the memory) in the
        layer's compute dtype; with `return_weights=True`, the pair
        `(read, weights)`, the weights of shape `(batch, ..., num_slots)`
        summing to 1 over the slots.

    Example:

    >>> layer = keras_latent.layers.ContentAddressing(
    ...     num_slots=8, slot_size=16, normalizer="sparsemax"
    ... )
    >>> tuple(layer(keras.random.normal((2, 16))).shape)
    (2, 16)
    >>> layer = keras_latent.layers.ContentAddressing(return_weights=True)
    >>> read, weights = layer(
    ...     keras.random.normal((2, 16)),
    ...     memory=keras.random.normal((2, 8, 16)),
    ...     values=keras.random.normal((2, 8, 4)),
    ... )
    >>> tuple(read.shape), tuple(weights.shape)
    ((2, 4), (2, 8))

    References:
        - [Graves et al., 2014, section 3.3.1](
          https://arxiv.org/abs/1410.5401)
        - [Graves et al., 2016](https://doi.org/10.1038/nature20101)
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
    """

    def __init__(
        self,
        num_slots: int | None = None,
        slot_size: int | None = None,
        normalizer: str = "softmax",
        key_strength: float | None = 1.0,
        return_weights: bool = False,
        memory_initializer="glorot_uniform",
        epsilon: float = 1e-6,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_slots, self.slot_size = check_num_slots_and_slot_size(
            num_slots, slot_size
        )
        self.normalizer = validation.check_choice(
            "normalizer", normalizer, NORMALIZERS
        )
        if key_strength is not None:
            key_strength = validation.check_positive_float32(
                "key_strength", key_strength
            )
        self.initial_key_strength = key_strength
        self.return_weights = validation.check_bool(
            "return_weights", return_weights
        )
        self.memory_initializer = keras.initializers.get(memory_initializer)
        self.epsilon = check_epsilon(epsilon)
        self.seed = validation.check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def check_inputs_given(self, memory_shape, key_strength_shape):
        """Checks that `memory` and `key_strength` match the configuration."""
        if self.num_slots is None and memory_shape is None:
            raise ValueError(
                "Invalid value received for argument `memory`. Expected a "
                "tensor of shape (batch, num_slots, key_size): the layer has "
                "no trainable memory (num_slots=None). Received: memory=None"
            )
        if self.num_slots is not None and memory_shape is not None:
            raise validation.invalid_shape(
                "memory",
                "None: the layer has a trainable memory "
                f"(num_slots={self.num_slots}, slot_size={self.slot_size})",
                memory_shape,
            )
        if self.initial_key_strength is None and key_strength_shape is None:
            raise ValueError(
                "Invalid value received for argument `key_strength`. "
                "Expected a tensor of shape (batch, ..., 1): the layer was "
                "constructed with key_strength=None. "
                "Received: key_strength=None"
            )
        if (
            self.initial_key_strength is not None
            and key_strength_shape is not None
        ):
            raise validation.invalid_shape(
                "key_strength",
                "None: the layer learns its key strength (key_strength="
                f"{self.initial_key_strength}); construct it with "
                "key_strength=None to pass the key strength as an input",
                key_strength_shape,
            )

    def build(
        self,
        key_shape,
        memory_shape=None,
        values_shape=None,
        key_strength_shape=None,
    ):
        self.check_inputs_given(memory_shape, key_strength_shape)
        key_shape = tuple(key_shape)
        if len(key_shape) < 2:
            raise validation.invalid_shape(
                "key", "a tensor of shape (batch, ..., key_size)", key_shape
            )
        if memory_shape is None:
            num_slots, slot_size = self.num_slots, self.slot_size
        else:
            check_shape("memory", memory_shape, (None, None, None))
            num_slots, slot_size = memory_shape[1], memory_shape[2]
        if None not in (key_shape[-1], slot_size) and (
            key_shape[-1] != slot_size
        ):
            raise validation.invalid_shape(
                "key",
                f"a last dimension equal to the slot size, {slot_size} "
                "(`slot_size`, or the last dimension of `memory`)",
                key_shape,
            )
        if values_shape is not None:
            check_shape("values", values_shape, (None, num_slots, None))
        if key_strength_shape is not None:
            check_shape(
                "key_strength", key_strength_shape, (*key_shape[:-1], 1)
            )
        if self.num_slots is not None:
            # float32 and never autocast: the addressing runs in float32.
            self.memory = self.add_weight(
                shape=(self.num_slots, self.slot_size),
                initializer=self.memory_initializer,
                name="memory",
                dtype="float32",
                autocast=False,
            )
        if self.initial_key_strength is not None:
            self.raw_key_strength = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(
                    inverse_softplus(self.initial_key_strength)
                ),
                name="raw_key_strength",
                dtype="float32",
                autocast=False,
            )

    def call(
        self,
        key,
        memory=None,
        values=None,
        key_strength=None,
        training=None,
    ):
        self.check_inputs_given(
            None if memory is None else memory.shape,
            None if key_strength is None else key_strength.shape,
        )
        key = ops.cast(key, "float32")
        num_heads_axes = len(key.shape) - 2
        if memory is None:
            memory = self.memory
        else:
            memory = add_head_axes(memory, num_heads_axes)
        if values is None:
            values = memory
        else:
            values = add_head_axes(values, num_heads_axes)
        if key_strength is None:
            strength = ops.softplus(self.raw_key_strength)
        else:
            strength = ops.softplus(ops.cast(key_strength, "float32"))
        normalizer = self.normalizer
        if normalizer == "gumbel" and not training:
            normalizer = "argmax"
        weights = latent_ops.content_weights(
            key,
            memory,
            key_strength=strength,
            normalizer=normalizer,
            seed=self.seed_generator,
            epsilon=self.epsilon,
        )
        read = ops.cast(
            latent_ops.weighted_read(weights, values), self.compute_dtype
        )
        if self.return_weights:
            return read, ops.cast(weights, self.compute_dtype)
        return read

    def compute_output_shape(
        self,
        key_shape,
        memory_shape=None,
        values_shape=None,
        key_strength_shape=None,
    ):
        if memory_shape is None:
            num_slots, value_size = self.num_slots, self.slot_size
        else:
            num_slots, value_size = memory_shape[1], memory_shape[2]
        if values_shape is not None:
            value_size = values_shape[-1]
        read_shape = (*key_shape[:-1], value_size)
        if self.return_weights:
            return read_shape, (*key_shape[:-1], num_slots)
        return read_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_slots": self.num_slots,
            "slot_size": self.slot_size,
            "normalizer": self.normalizer,
            "key_strength": self.initial_key_strength,
            "return_weights": self.return_weights,
            "memory_initializer": keras.initializers.serialize(
                self.memory_initializer
            ),
            "epsilon": self.epsilon,
            "seed": self.seed,
        }
