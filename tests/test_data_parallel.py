"""Data-parallel training on 2 CPU devices matches one device.

Under TensorFlow, a `tf.distribute.MirroredStrategy` over two logical
CPUs; under JAX, `keras.distribution.DataParallel` over two host devices.
Keras has no data-parallel engine for torch (see the README): there, two
processes of PyTorch's `DistributedDataParallel` check the noise only.
The devices must exist before the backend starts, so
`tests/data_parallel_run.py` runs in one subprocess per session and
reports its measurements.

The tolerances come from the Gumbel noise: one example's training loss
has a standard deviation `noise_std` due to the noise alone, so the mean
loss of two runs over the same `n` examples with independent noise differs
by a standard deviation of `sqrt(2 / n) * noise_std`; five of them bound
the difference with a two-sided false-failure rate of 6e-7.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests import data_parallel_run as run

ENGINES = {
    "tensorflow": {},
    "jax": {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    "torch": {},
}
STANDARD_ERRORS = 5.0


@pytest.fixture(scope="module")
def measured():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    completed = subprocess.run(
        [sys.executable, "-m", "tests.data_parallel_run"],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, **ENGINES[keras.backend.backend()]},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(measured):
    """The measurements of training, which Keras runs data-parallel on
    TensorFlow and JAX only."""
    if keras.backend.backend() == "torch":
        pytest.skip("Keras has no data-parallel training on torch")
    return measured


def noise_tolerance(measured, num_examples):
    return STANDARD_ERRORS * np.sqrt(2.0 / num_examples) * measured["noise_std"]


def test_replicas_draw_different_noise_for_identical_rows(measured):
    # Continuous samples: two independent draws of a row coincide with
    # probability 0; replicas that share their noise repeat every row.
    assert measured["identical_row_share"] == 0.0
    # `keras_latent.ops.normal_noise`, for Gaussian latents of one's own.
    assert measured["identical_normal_row_share"] == 0.0


def test_each_replica_draws_distinct_rows(trained):
    assert trained["distinct_rows_within_half"] == run.BATCH_SIZE // 2


def test_a_fixed_seed_draws_the_same_noise_again(measured):
    # Two samplers built with the same seed, each run once.
    assert measured["reproducible"]


def test_the_examples_engine_spans_both_devices(trained):
    assert trained["engine"] in (
        "tf.distribute.MirroredStrategy over 2 replicas",
        "keras.distribution.DataParallel over 2 devices",
    )


def test_first_step_loss_matches_one_device(trained):
    # Same weights, same batch: only the noise differs.
    difference = abs(
        trained["data_parallel_first_step_loss"]
        - trained["single_first_step_loss"]
    )
    assert difference <= noise_tolerance(trained, run.BATCH_SIZE)


def test_epoch_losses_match_one_device(trained):
    np.testing.assert_allclose(
        trained["data_parallel_losses"],
        trained["single_losses"],
        rtol=0,
        atol=noise_tolerance(trained, run.NUM_EXAMPLES),
    )


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="only DataParallel on JAX draws the noise of the global batch",
)
def test_jax_data_parallel_trains_as_one_device_exactly(trained):
    # The compiled step draws the global batch's noise from the same seed
    # state as on one device, then shards it: the same training.
    np.testing.assert_allclose(
        trained["data_parallel_losses"], trained["single_losses"], rtol=1e-5
    )
    np.testing.assert_allclose(
        trained["data_parallel_first_step_loss"],
        trained["single_first_step_loss"],
        rtol=1e-5,
    )


def test_every_replica_reads_the_scheduled_temperature(trained):
    steps = trained["steps_trained"]
    expected = max(0.1, np.exp(-0.1 * steps))
    assert trained["replica_steps"] == [steps, steps]
    np.testing.assert_allclose(
        trained["replica_temperatures"], [expected, expected], rtol=1e-6
    )


def test_logged_kl_is_the_global_batch_kl(trained):
    # The halves of the batch differ, so one replica's KL would show.
    assert not np.isclose(
        trained["first_half_kl"], trained["first_batch_kl"], rtol=0.1
    )
    np.testing.assert_allclose(
        trained["logged_first_step_kl"], trained["first_batch_kl"], rtol=1e-5
    )


# The example's process splits its CPU before TensorFlow starts, then runs
# the script (its path the first argument) as `python <script>` would.
TWO_CPU_EXAMPLE = """
import runpy
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2,
)
sys.argv = sys.argv[1:]
sys.path.insert(0, "examples")
runpy.run_path(sys.argv[0], run_name="__main__")
"""
# One epoch of each example with `--distribute`; on the digits' 297 test
# images the VAE drops one, so that batches split evenly.
DISTRIBUTED_EXAMPLES = {
    "categorical_vae": ["--batch-size", "500", "--eval-samples", "2"],
    "semi_supervised": ["--hidden-units", "64", "--latent-dim", "8"],
}


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="one backend: TensorFlow runs the example's eager parts without "
    "compiling them for the devices, the cheapest",
)
@pytest.mark.parametrize("example", DISTRIBUTED_EXAMPLES)
def test_example_trains_with_distribute_on_two_devices(example, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    arguments = [f"examples/{example}.py", "--distribute", "--epochs", "1"]
    arguments += [*DISTRIBUTED_EXAMPLES[example], "--verbose", "0"]
    completed = subprocess.run(
        [sys.executable, "-c", TWO_CPU_EXAMPLE, *arguments]
        + ["--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["engine"] == "tf.distribute.MirroredStrategy over 2 replicas"
    assert np.isfinite(metrics["test_neg_elbo"])


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the other backends have a data-parallel engine",
)
def test_distribute_on_torch_names_what_to_use_instead(capsys):
    from tests import example_modules

    example = example_modules.load("categorical_vae")
    assert example.main(["--distribute", "--epochs", "1"]) == 2
    assert "DistributedDataParallel" in capsys.readouterr().err
