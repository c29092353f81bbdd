"""Trains a tiny categorical-latent model data-parallel on 2 CPU devices.

Run by `tests/test_data_parallel.py` in a subprocess, because the devices
must be declared before the backend starts: under TensorFlow, two logical
CPUs and a `tf.distribute.MirroredStrategy`; under JAX, two host devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`, set by the caller)
and a `keras.distribution.DataParallel`. Under torch, which Keras does not
distribute, two processes of a `torch.distributed` group (gloo) wrap a
model in `DistributedDataParallel` and draw samples. It prints one JSON
object of measurements; the test states the properties they must have.
"""

import json
import os
import socket

BACKEND = os.environ["KERAS_BACKEND"]
if BACKEND == "tensorflow":
    import tensorflow as tf

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2,
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_latent  # noqa: E402
from tests import example_modules  # noqa: E402

NUM_VARIABLES = 8
NUM_CATEGORIES = 4
FEATURES = 16
BATCH_SIZE = 64
NUM_EXAMPLES = 256
EPOCHS = 3
LEARNING_RATE = 0.02
# Noise draws per example for the per-example variance of the loss.
VARIANCE_DRAWS = 8
TEMPERATURE = keras_latent.schedules.ExponentialDecay(
    initial=1.0, minimum=0.1, rate=0.1
)


def data_parallel_engine():
    """The engine of the examples' `--distribute`, over the 2 devices."""
    return example_modules.load("data_parallel").choose_engine(True)


def build_model():
    inputs = keras.Input((FEATURES,))
    logits = keras.layers.Dense(NUM_VARIABLES * NUM_CATEGORIES, name="encoder")(
        inputs
    )
    latent = keras_latent.layers.CategoricalLatent(
        NUM_VARIABLES,
        NUM_CATEGORIES,
        temperature=TEMPERATURE,
        seed=3,
        name="latent",
    )
    features = keras.layers.Flatten()(latent(logits))
    outputs = keras.layers.Dense(FEATURES, name="decoder")(features)
    model = keras_latent.models.LatentModel(inputs, outputs)
    model.compile(keras.optimizers.SGD(LEARNING_RATE), loss="mse")
    return model


def build_sampler():
    """The latent layer alone, called in training mode even by `predict`."""
    inputs = keras.Input((NUM_VARIABLES * NUM_CATEGORIES,))
    latent = keras_latent.layers.CategoricalLatent(
        NUM_VARIABLES, NUM_CATEGORIES, seed=1
    )
    return keras.Model(inputs, latent(inputs, training=True))


class NormalNoise(keras.layers.Layer):
    """Adds `keras_latent.ops.normal_noise`, as a Gaussian latent would.

    Without `compute_output_shape`: Keras infers its output by calling it
    on the meta device, where, under `torch.distributed`, the rank's seed
    fold once failed to read the seed state."""

    def __init__(self, seed, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        return inputs + keras_latent.ops.normal_noise(
            shape, self.seed_generator
        )


def build_normal_sampler():
    inputs = keras.Input((NUM_VARIABLES,))
    return keras.Model(inputs, NormalNoise(seed=1)(inputs))


def per_example_kl(model, x):
    """The analytic KL to the uniform prior of each row, in float64."""
    kernel, bias = model.get_layer("encoder").get_weights()
    logits = (x.astype("float64") @ kernel + bias).reshape(
        len(x), NUM_VARIABLES, NUM_CATEGORIES
    )
    log_q = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    return np.sum(np.exp(log_q) * (log_q + np.log(NUM_CATEGORIES)), (1, 2))


def noise_standard_deviation(model, x):
    """The standard deviation of one example's training loss due to the
    Gumbel noise alone (the example fixed), pooled over the examples."""
    losses = []
    for _ in range(VARIANCE_DRAWS):
        reconstruction = keras.ops.convert_to_numpy(model(x, training=True))
        losses.append(np.mean((reconstruction - x) ** 2, axis=1))
    return float(np.sqrt(np.mean(np.var(losses, axis=0, ddof=1))))


def replica_steps_and_temperatures(latent):
    """The step counter and the temperature that each replica reads."""
    if BACKEND == "tensorflow":
        strategy = tf.distribute.get_strategy()
        steps = strategy.run(
            lambda: keras.ops.convert_to_tensor(latent.iterations.value)
        )
        temperatures = strategy.run(latent.current_temperature)
        return (
            [int(s) for s in strategy.experimental_local_results(steps)],
            [
                float(t)
                for t in strategy.experimental_local_results(temperatures)
            ],
        )
    shards = latent.iterations.value.addressable_shards
    steps = [int(shard.data) for shard in shards]
    return steps, [float(TEMPERATURE(step)) for step in steps]


def identical_row_share(samples):
    """The share of rows of the first half equal to their counterpart in
    the second half."""
    first, second = np.split(samples.reshape(len(samples), -1), 2)
    return float(np.mean(np.all(first == second, axis=1)))


def main():
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(NUM_EXAMPLES, FEATURES)).astype("float32")
    # The two replicas' shards of the first batch have different KLs, so
    # a log of one replica's KL would not pass for the global one.
    x[BATCH_SIZE // 2 : BATCH_SIZE] *= 3.0
    first_batch = x[:BATCH_SIZE]

    single = build_model()
    initial_weights = single.get_weights()
    # A model of its own: the draws advance its step counter and seeds.
    probe = build_model()
    probe.set_weights(initial_weights)
    results = {
        "noise_std": noise_standard_deviation(probe, x),
        "first_batch_kl": float(np.mean(per_example_kl(single, first_batch))),
        "first_half_kl": float(
            np.mean(per_example_kl(single, first_batch[: BATCH_SIZE // 2]))
        ),
    }
    single_history = first_step_and_epochs(single, first_batch, x)

    engine = data_parallel_engine()
    with engine.scope():
        model = build_model()
        model.set_weights(initial_weights)
        history = first_step_and_epochs(model, first_batch, x)
        latent = model.get_layer("latent")
        steps, temperatures = replica_steps_and_temperatures(latent)
        zeros = np.zeros((BATCH_SIZE, NUM_VARIABLES * NUM_CATEGORIES))
        samples, repeated = (
            keras.ops.convert_to_numpy(
                build_sampler().predict(zeros, batch_size=BATCH_SIZE, verbose=0)
            )
            for _ in range(2)
        )
        normal_samples = build_normal_sampler().predict(
            np.zeros((BATCH_SIZE, NUM_VARIABLES)),
            batch_size=BATCH_SIZE,
            verbose=0,
        )

    results.update(
        engine=engine.name,
        logged_first_step_kl=history["first_step"]["latent_kl"][0],
        single_first_step_loss=single_history["first_step"]["loss"][0],
        data_parallel_first_step_loss=history["first_step"]["loss"][0],
        single_losses=single_history["epochs"]["loss"],
        data_parallel_losses=history["epochs"]["loss"],
        replica_steps=steps,
        replica_temperatures=temperatures,
        steps_trained=1 + EPOCHS * NUM_EXAMPLES // BATCH_SIZE,
        identical_row_share=identical_row_share(samples),
        identical_normal_row_share=identical_row_share(normal_samples),
        reproducible=bool(np.array_equal(samples, repeated)),
        distinct_rows_within_half=len(
            np.unique(
                samples[: BATCH_SIZE // 2].reshape(BATCH_SIZE // 2, -1), axis=0
            )
        ),
    )
    print(json.dumps(results))


def first_step_and_epochs(model, first_batch, x):
    """The histories of one step on `first_batch`, then EPOCHS on `x`."""
    return {
        name: model.fit(
            data,
            data,
            batch_size=BATCH_SIZE,
            epochs=epochs,
            shuffle=False,
            verbose=0,
        ).history
        for name, data, epochs in (
            ("first_step", first_batch, 1),
            ("epochs", x, EPOCHS),
        )
    }


def torch_rank_samples(rank, port):
    """Rank `rank`'s samples through `DistributedDataParallel`, twice
    (two models of the same seed); rank 0 prints the measurements."""
    import torch

    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2
    )
    draws = []
    for _ in range(2):
        inputs = keras.Input((NUM_VARIABLES * NUM_CATEGORIES,))
        # A trainable layer: DistributedDataParallel wants parameters.
        logits = keras.layers.Dense(
            NUM_VARIABLES * NUM_CATEGORIES, kernel_initializer="zeros"
        )(inputs)
        latent = keras_latent.layers.CategoricalLatent(
            NUM_VARIABLES, NUM_CATEGORIES, seed=1
        )
        model = keras.Model(inputs, latent(logits, training=True))
        parallel = torch.nn.parallel.DistributedDataParallel(model)
        zeros = torch.zeros((BATCH_SIZE // 2, NUM_VARIABLES * NUM_CATEGORIES))
        samples = parallel(zeros).detach().contiguous()
        draws.append(all_gathered(samples))
    normal_sampler = build_normal_sampler()
    normal_samples = normal_sampler(
        torch.zeros((BATCH_SIZE // 2, NUM_VARIABLES))
    )
    normal_draws = all_gathered(normal_samples.detach().contiguous())
    torch.distributed.destroy_process_group()
    if rank == 0:
        results = {
            "identical_row_share": identical_row_share(draws[0]),
            "identical_normal_row_share": identical_row_share(normal_draws),
            "reproducible": bool(np.array_equal(*draws)),
        }
        print(json.dumps(results), flush=True)
    # A rank's interpreter can hang at exit after the group is destroyed
    # (seen with gloo on CPU, the parent then waiting until its timeout):
    # everything is measured and printed, so leave at once.
    os._exit(0)


def all_gathered(samples):
    """Every rank's `samples`, rank 0's first."""
    import torch

    gathered = [torch.zeros_like(samples) for _ in range(2)]
    torch.distributed.all_gather(gathered, samples)
    return np.concatenate([g.numpy() for g in gathered])


def torch_main():
    import torch.multiprocessing

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(torch_rank_samples, args=(port,), nprocs=2)


if __name__ == "__main__":
    if BACKEND == "torch":
        torch_main()
    else:
        main()
