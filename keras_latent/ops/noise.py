"""Seeded float32 noise that differs between data-parallel replicas.

Every random draw of keras-latent goes through `uniform_noise` (on the
open interval (0, 1)); `normal_noise` draws standard normal noise the same
way, for the continuous latents that users put beside ours (the Gaussian
style of a semi-supervised model, a reparameterized encoder). In
data-parallel training every replica holds its own copy of a
`keras.random.SeedGenerator`'s state, all equal (the same seed, and
PyTorch's `DistributedDataParallel` even copies rank 0's state to every
rank), so every replica would draw the same noise for its shard of the
batch. `uniform_noise` therefore folds the replica's index into the seed:
under a `tf.distribute` strategy with several replicas, and on the torch
backend in a `torch.distributed` group of several processes. A fixed seed
stays reproducible: the fold is a pure function of the seed and the
index. Elsewhere the draw is `keras.random.uniform`'s (or `normal`'s), on
TensorFlow with the Philox algorithm named (see `_tensorflow_draw`).
`keras.distribution.DataParallel` on JAX needs no fold: its train step
draws the noise of the whole global batch, which is then sharded.
"""

import keras
import numpy as np
from keras import ops
from keras import random

from keras_latent import validation

# The smallest normal float32 and the largest float32 below 1. A uniform draw
# in [TINY, ONE_MINUS_EPSILON] keeps log(u), log(1 - u) and -log(-log(u))
# finite on every backend: a draw of exactly 0 or 1 would give an infinite
# Gumbel sample and then NaN in a softmax. Every backend maps its raw draw r
# onto [minval, maxval] as (maxval - minval) * r + minval, and rounding
# keeps that within the bounds for any r in [0, 1], 1 included (which some
# GPU samplers have returned): these bounds need no clip afterwards.
TINY = float(np.finfo(np.float32).tiny)
ONE_MINUS_EPSILON = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def uniform_noise(shape, seed=None):
    """Float32 uniform noise on the open interval (0, 1).

    Args:
        shape: the shape of the draw.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A float32 tensor with values in [tiny, 1 - 2**-24].
    """
    return _draw("uniform", shape, seed)


def normal_noise(shape, seed=None):
    """Float32 standard normal noise, independent between replicas.

    What a reparameterized Gaussian sample `mean + scale * noise` should
    draw in a model trained data-parallel: `keras.random.normal` with a
    `SeedGenerator` gives every replica the same noise (see the module's
    docstring).

    Args:
        shape: the shape of the draw.
        seed: an integer, a `keras.random.SeedGenerator`, or None.

    Returns:
        A float32 tensor of standard normal draws.

    Example:

    >>> mean = keras.ops.zeros((2, 3))
    >>> log_variance = keras.ops.zeros((2, 3))
    >>> noise = keras_latent.ops.normal_noise(
    ...     keras.ops.shape(mean), seed=keras.random.SeedGenerator(0))
    >>> z = mean + keras.ops.exp(0.5 * log_variance) * noise
    >>> tuple(z.shape)
    (2, 3)
    """
    return _draw("normal", shape, seed)


def _draw(distribution, shape, seed):
    if seed is not None and keras.backend.backend() == "tensorflow":
        return _tensorflow_draw(distribution, shape, seed)
    rank = _torch_distributed_rank()
    if seed is not None and rank is not None:
        seed = _rank_seed(seed, rank)
    if distribution == "normal":
        return random.normal(shape, dtype="float32", seed=seed)
    return random.uniform(
        shape, minval=TINY, maxval=ONE_MINUS_EPSILON, dtype="float32", seed=seed
    )


def _tensorflow_draw(distribution, shape, seed):
    """`keras.random.uniform` on [TINY, ONE_MINUS_EPSILON] (or
    `keras.random.normal`), drawn with the Philox algorithm named, and
    under several replicas with the replica's index folded into the seed.

    Keras draws with TensorFlow's `alg="auto_select"`, which under XLA
    (`jit_compile=True`, and Keras's default for TensorFlow on a GPU or
    TPU) is another algorithm, and on a CPU costs 115 times Philox: 3.7 s
    against 32 ms for 8.4 million draws, measured with one thread. Without
    XLA "auto_select" is Philox, so the draws are those of
    `keras.random.uniform` (or `normal`) with the same seed; with XLA they
    are now the same as without.

    Under a `tf.distribute` strategy every replica holds an equal copy of
    the seed state; `replica_id_in_sync_group` is the global index (across
    the workers of a `MultiWorkerMirroredStrategy` too) and a graph
    constant, so the fold costs no host round trip.
    """
    import tensorflow as tf

    if isinstance(seed, random.SeedGenerator):
        seed = seed.next()
    else:
        seed = tf.constant([seed, 0], dtype="int64")
    # `tf.random.stateless_*` take int32 seeds under XLA; Keras reduces
    # its int64 seed state the same way before every draw.
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), "int32")
    replica_context = _tensorflow_replica_context()
    if replica_context is not None:
        seed = tf.random.experimental.stateless_fold_in(
            seed, replica_context.replica_id_in_sync_group
        )
    if distribution == "normal":
        return tf.random.stateless_normal(
            shape, seed=seed, dtype="float32", alg="philox"
        )
    return tf.random.stateless_uniform(
        shape,
        seed=seed,
        minval=TINY,
        maxval=ONE_MINUS_EPSILON,
        dtype="float32",
        alg="philox",
    )


def _tensorflow_replica_context():
    """The `tf.distribute` replica context of a step run on several
    replicas, or None (one replica, or cross-replica code)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def _torch_distributed_rank():
    """This process's rank in a `torch.distributed` group of several
    processes, or None (other backends, no group, one process)."""
    if keras.backend.backend() != "torch":
        return None
    import torch.distributed

    if not (
        torch.distributed.is_available() and torch.distributed.is_initialized()
    ):
        return None
    if torch.distributed.get_world_size() == 1:
        return None
    return torch.distributed.get_rank()


def _rank_seed(seed, rank):
    """An integer seed for `rank` from `seed`'s next state.

    Keras's torch backend reads every seed on the host to seed a
    `torch.Generator`; reading it here costs one more such read per draw,
    under `torch.distributed` only. `SeedSequence` mixes the three numbers,
    where a sum would give one rank the seeds of another.
    """
    if isinstance(seed, random.SeedGenerator):
        state = seed.next()
        if state.is_meta:
            # Keras infers a layer's output on the meta device, where the
            # state holds no data and no noise is drawn.
            return seed
        first, second = (int(v) for v in ops.convert_to_numpy(state))
    else:
        first, second = seed, 0
    entropy = [first & 0xFFFFFFFF, second & 0xFFFFFFFF, rank]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def given_or_uniform_noise(noise, shape, seed=None):
    """`noise` as float32, checked against `shape`, or a fresh draw.

    What the ops that take `noise=` in place of `seed` use: passing the
    same uniform draws twice gives the same value and gradient.

    Args:
        noise: None, or uniform draws on (0, 1) of shape `shape`.
        shape: the shape of the draw.
        seed: an integer, a `keras.random.SeedGenerator`, or None; used
            when `noise` is None.

    Returns:
        A float32 tensor of shape `shape`.
    """
    if noise is None:
        return uniform_noise(shape, seed=seed)
    noise = ops.cast(ops.convert_to_tensor(noise), "float32")
    if tuple(noise.shape) != tuple(shape):
        raise validation.invalid_shape(
            "noise", f"uniform noise of shape {tuple(shape)}", noise.shape
        )
    return noise
