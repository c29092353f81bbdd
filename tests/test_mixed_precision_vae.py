"""The categorical VAE trains under each dtype policy of `--dtype-policy`.

Each policy trains the example for 300 steps on the digits (1500 images in
batches of 25, 5 epochs) from the same seed; the float32 run is shared by
the comparisons through a module fixture.
"""

import contextlib
import io
import json
import math

import keras
import pytest

from tests import example_modules

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
MIXED_POLICIES = POLICIES[1:]
TRAINING_ARGUMENTS = ["--epochs", "5", "--batch-size", "25", "--verbose", "0"]
TRAINING_ARGUMENTS += ["--eval-samples", "10"]

# The float32 test -ELBO of this run over seeds 0-4 on TensorFlow (measured
# once, 2026/11/30, with `main(TRAINING_ARGUMENTS + ["--seed", seed])`, i.e.
# `KERAS_BACKEND=tensorflow python examples/categorical_vae.py --epochs 5
# --batch-size 25 --eval-samples 10 --seed S`): 23.20, 23.42, 23.93,
# 23.97, 23.88 nats, standard deviation 0.35. The difference of two
# independent runs then has a standard deviation of 0.35 * sqrt(2) = 0.49;
# 2 nats is 4 of them, a false-failure rate near 6e-5 for a Gaussian
# difference. A mixed-precision run from the same seed shares the initial
# weights, the batches and the noise with the float32 run, so it is nearer
# to it than another seed's run is. Training that stalls or diverges in
# half precision stays far above: the untrained model's -ELBO is about 44
# nats.
NEG_ELBO_TOLERANCE = 2.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A function giving the metrics and folder of a policy's run, each run
    once per module."""
    runs = {}

    def run(policy):
        if policy not in runs:
            output_dir = tmp_path_factory.mktemp(policy)
            example = example_modules.load("categorical_vae")
            arguments = [*TRAINING_ARGUMENTS, "--dtype-policy", policy]
            arguments += ["--output-dir", str(output_dir)]
            with contextlib.redirect_stdout(io.StringIO()):
                status = example.main(arguments)
            # `main` leaves its policy in force; the tests check in float32.
            keras.config.set_dtype_policy("float32")
            # 1: the reloaded model's predictions differ from the trained.
            assert status == 0
            metrics = json.loads((output_dir / "metrics.json").read_text())
            runs[policy] = metrics, output_dir
        return runs[policy]

    return run


@pytest.mark.parametrize("policy", POLICIES)
def test_categorical_vae_trains_with_finite_losses(trained, policy):
    metrics, _ = trained(policy)
    assert metrics["dtype_policy"] == policy
    # An epoch's mean is finite only if every step's loss was.
    for record in metrics["history"]:
        assert math.isfinite(record["train_loss"])
        assert math.isfinite(record["test_neg_elbo"])
    assert math.isfinite(metrics["test_neg_iw_bound"])
    # The benchmark's figure: each epoch's training CPU seconds.
    assert len(metrics["cpu_seconds_per_epoch"]) == 5
    assert all(seconds > 0 for seconds in metrics["cpu_seconds_per_epoch"])


@pytest.mark.parametrize("policy", MIXED_POLICIES)
def test_mixed_precision_negative_elbo_is_close_to_float32(trained, policy):
    float32_metrics, _ = trained("float32")
    metrics, _ = trained(policy)
    assert metrics["test_neg_elbo"] == pytest.approx(
        float32_metrics["test_neg_elbo"], abs=NEG_ELBO_TOLERANCE
    )


@pytest.mark.parametrize("policy", MIXED_POLICIES)
def test_model_saved_under_mixed_policy_reloads_with_its_policy(
    trained, policy
):
    metrics, output_dir = trained(policy)
    # `main` compared the reloaded model's reconstructions with the
    # trained model's before writing the metrics.
    assert metrics["reload_max_abs_difference"] <= 1e-5
    # Loaded under the float32 policy, the layers keep the saved policy.
    model = keras.saving.load_model(output_dir / "model.keras", compile=False)
    encoder_dense = model.get_layer("encoder").layers[1]
    assert encoder_dense.dtype_policy.name == policy
    pixel_logits = model.get_layer("decoder").layers[-1]
    assert pixel_logits.compute_dtype == "float32"
    example = example_modules.load("categorical_vae")
    _, (x_test, _) = example.image_datasets.load_images("digits")
    outputs = model(x_test[:10], training=False)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
