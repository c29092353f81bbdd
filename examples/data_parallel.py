"""
Title: Data-parallel training on the engine of each backend
Author: keras-latent contributors
Date created: 2026/11/30
Last modified: 2026/11/30
Description: The `--distribute` option of the examples: one helper that
picks the data-parallel engine of the Keras backend, on one host or several.

- JAX: `keras.distribution.DataParallel` over every device of every
  process; with `KERAS_DISTRIBUTION_NUM_PROCESSES` (or on a Cloud TPU pod)
  `keras.distribution.initialize` joins the processes first.
- TensorFlow: a `tf.distribute` strategy, whose scope must hold the model's
  construction and `compile`: `TPUStrategy` with `--tpu`,
  `MultiWorkerMirroredStrategy` when `TF_CONFIG` describes a cluster, and
  `MirroredStrategy` over the local GPUs (or logical CPUs) otherwise.
- torch: Keras has no data-parallel distribution for it; `choose_engine`
  raises an error that names what to use instead.

`--batch-size` stays the global batch: each engine splits it between the
devices. The keras-latent layers draw independent noise on each replica
(see `keras_latent.ops.noise`). This is a helper of the examples, not of the
package: where the engine comes from (flags, `TF_CONFIG`, a TPU name) is a
launcher's choice, while the layers need nothing but the engine itself.
"""

import contextlib
import os

import keras

TORCH_ERROR = (
    "--distribute: Keras has no data-parallel distribution for the torch "
    "backend. Run the example with KERAS_BACKEND=jax or tensorflow, or write "
    "a PyTorch training loop around torch.nn.parallel."
    "DistributedDataParallel, launched with torchrun (see the README, "
    "'Data-parallel training')."
)


class EngineUnavailableError(RuntimeError):
    """The backend has no data-parallel engine that Keras drives."""


def add_arguments(parser):
    """Adds `--distribute` and `--tpu` to an `argparse` parser."""
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="train data-parallel: keras.distribution.DataParallel on JAX, "
        "tf.distribute on TensorFlow (MirroredStrategy, or "
        "MultiWorkerMirroredStrategy with TF_CONFIG)",
    )
    parser.add_argument(
        "--tpu",
        default=None,
        help="with --distribute on TensorFlow: the TPU to train on, as "
        "tf.distribute.cluster_resolver.TPUClusterResolver names it ('local' "
        "on a TPU VM)",
    )


class Engine:
    """The data-parallel engine in force.

    Attributes:
        name: what trains the model, for the logs.
        num_replicas: the number of devices sharing each batch.
        process_index: this process's index among `process_count`; 0 is
            the chief.
        process_count: the number of processes (hosts) of the run.
        feeds_local_data: whether each process passes its own part of the
            data to `fit` (Keras's JAX trainer) or the whole data, which
            the engine shards (`tf.distribute`).
    """

    def __init__(
        self,
        name,
        scope=contextlib.nullcontext,
        num_replicas=1,
        process_index=0,
        process_count=1,
        feeds_local_data=False,
    ):
        self.name = name
        self._scope = scope
        self.num_replicas = num_replicas
        self.process_index = process_index
        self.process_count = process_count
        self.feeds_local_data = feeds_local_data

    def scope(self):
        """The scope around building, compiling and training the model."""
        return self._scope()

    def local_data(self, data, batch_size):
        """This process's part of `data` and of the global batch.

        Every batch, the last one included, must split evenly between the
        replicas: JAX shards it in equal parts, and Keras's TensorFlow
        trainer fails on a first batch that does not split evenly. So the
        batch size must be a multiple of the replicas, and the data loses
        its last few rows (fewer than the replicas) when its length is
        not one.
        """
        if batch_size % self.num_replicas:
            raise ValueError(
                "Invalid value received for argument `batch_size`. Expected "
                f"a multiple of the {self.num_replicas} replicas. Received: "
                f"batch_size={batch_size}"
            )
        replicas = self.num_replicas
        if self.feeds_local_data:
            data = data[self.process_index :: self.process_count]
            batch_size //= self.process_count
            replicas //= self.process_count
        return data[: len(data) - len(data) % replicas], batch_size

    def output_dir(self, base):
        """Where this process writes: `base` on the chief, a folder of its
        own on another process, which would write the same files at once."""
        if self.process_index == 0:
            return base
        return os.path.join(base, f"process_{self.process_index}")


def replica_share(loss):
    """A loss computed by hand in `compute_loss`, scaled as Keras scales
    its own.

    Under `tf.distribute` each replica's gradients are summed, so Keras
    divides each replica's compiled and added losses by the number of
    replicas (and multiplies the logged loss back). A `compute_loss` that
    forms its loss itself must do the same, or it trains with a larger
    step and logs a multiple of its loss. Elsewhere the loss is unchanged.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / num_replicas if num_replicas > 1 else loss


def choose_engine(distribute, tpu=None):
    """The engine for `--distribute` and `--tpu` on the current backend.

    Args:
        distribute: whether to train data-parallel.
        tpu: None, or the TPU of a TensorFlow `TPUStrategy`.

    Returns:
        An `Engine`; without `distribute`, the default one (one device).

    Raises:
        EngineUnavailableError: on torch with `distribute`.
        ValueError: `tpu` without `distribute` or off TensorFlow.
    """
    backend = keras.backend.backend()
    if tpu is not None and not (distribute and backend == "tensorflow"):
        raise ValueError(
            "Invalid value received for argument `tpu`. Expected None "
            "unless --distribute is given on the TensorFlow backend (JAX "
            "finds a TPU by itself). Received: "
            f"tpu={tpu!r} on the {backend} backend"
        )
    if not distribute:
        return Engine("one device")
    if backend == "jax":
        return _jax_data_parallel()
    if backend == "tensorflow":
        return _tensorflow_strategy(tpu)
    raise EngineUnavailableError(TORCH_ERROR)


def _jax_data_parallel():
    import jax

    if int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1")) > 1:
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices)
    )
    return Engine(
        f"keras.distribution.DataParallel over {len(devices)} devices",
        num_replicas=len(devices),
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        feeds_local_data=True,
    )


def _tensorflow_strategy(tpu):
    import tensorflow as tf

    if tpu is not None:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    elif "TF_CONFIG" in os.environ:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        # The GPUs, or else every logical CPU: one, unless the process
        # split its CPU in several (as the tests do).
        devices = tf.config.list_logical_devices("GPU")
        devices = devices or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy(
            [device.name for device in devices]
        )
    process_index, process_count = 0, 1
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        process_index, process_count = _worker_of_cluster(strategy)
    return Engine(
        f"tf.distribute.{type(strategy).__name__} over "
        f"{strategy.num_replicas_in_sync} replicas",
        scope=strategy.scope,
        num_replicas=strategy.num_replicas_in_sync,
        process_index=process_index,
        process_count=process_count,
    )


def _worker_of_cluster(strategy):
    """This worker's index (0 for the chief) and the number of workers of
    a `MultiWorkerMirroredStrategy`."""
    resolver = strategy.cluster_resolver
    if resolver.task_type is None:
        return 0, 1
    cluster = resolver.cluster_spec().as_dict()
    # The workers of a cluster without a "chief" task count from the chief,
    # worker 0; with one, from 1.
    chiefs = len(cluster.get("chief", []))
    workers = len(cluster.get("worker", []))
    if resolver.task_type == "chief":
        return 0, chiefs + workers
    return chiefs + resolver.task_id, chiefs + workers
