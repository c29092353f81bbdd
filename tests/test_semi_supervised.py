"""The semi-supervised example (M2 with a Gumbel-softmax class) end to end,
and its harness over seeds, `benchmarks/semi_supervised_seeds.py`."""

import json
import math

import keras
import numpy as np
import pytest

from tests import example_modules

EPOCHS = 10


@pytest.fixture(scope="module")
def example():
    return example_modules.load("semi_supervised")


@pytest.fixture(scope="module")
def seeds_benchmark():
    return example_modules.load("semi_supervised_seeds")


@pytest.fixture(scope="module")
def short_run(example, tmp_path_factory):
    """The output folder of a 10-epoch run on the digits, seed 0.

    10 labels per class, 1500 rows in batches of 100: 150 steps.
    """
    output_dir = tmp_path_factory.mktemp("semi_supervised")
    arguments = ["--epochs", str(EPOCHS), "--hidden-units", "128"]
    arguments += ["--latent-dim", "16", "--output-dir", str(output_dir)]
    assert example.main(arguments) == 0
    return output_dir


def test_semi_supervised_beats_chance_by_a_wide_margin(short_run):
    # Chance is 0.1 on the ten digits; the 100 labels alone, through the
    # classification loss, take a classifier far above it in 150 steps.
    metrics = json.loads((short_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.1 + 0.3
    assert metrics["seed"] == 0
    # One accuracy per epoch, the last of them the reported one.
    per_epoch = metrics["test_accuracy_per_epoch"]
    assert len(per_epoch) == EPOCHS
    assert per_epoch[-1] == metrics["test_accuracy"]
    # 64 binary pixels: -ELBO between 0 and 64 * log(2) plus a KL budget.
    assert 0 < metrics["test_neg_elbo"] < 64 * np.log(2)


def test_semi_supervised_writes_its_files_and_reloads_the_classifier(
    example, short_run
):
    for name in ("metrics.json", "class_samples.png", "model.keras"):
        assert (short_run / name).stat().st_size > 0
    metrics = json.loads((short_run / "metrics.json").read_text())
    assert metrics["backend"] == keras.backend.backend()
    assert metrics["reload_max_abs_difference"] <= 1e-5
    # The saved model classifies the test set as the trained one did.
    model = keras.saving.load_model(short_run / "model.keras")
    _, (x_test, y_test) = example.image_datasets.load_images("digits")
    class_logits = example.call_in_chunks(model, x_test, "class_logits")
    accuracy = np.mean(class_logits.argmax(-1) == y_test)
    assert accuracy == metrics["test_accuracy"]


def test_sampled_and_marginalized_elbo_agree_in_expectation(example, short_run):
    # On the trained parts and 6 fixed unlabelled images, the mean of the
    # sampled -ELBO (an exact class sample, one z) over 3000 draws matches
    # M2's sum over the classes (one z per class, 300 draws). Each image's
    # difference is compared with 4.5 standard errors: a false failure has
    # probability below 1e-5 per image.
    model = keras.saving.load_model(short_run / "model.keras")
    parts = [model.get_layer(name) for name in ("classifier", "encoder")]
    parts.append(model.get_layer("decoder"))
    (x_train, _), _ = example.image_datasets.load_images("digits")
    images = x_train[:6]
    draws = {}
    for marginalize, copies in ((False, 3000), (True, 300)):
        keras.utils.set_random_seed(1)
        elbo_model = example.build_model(parts, 1.0, 1.0, False, 1, marginalize)
        batch = example.unlabelled(np.tile(images, (copies, 1)))
        values = elbo_model(batch, training=False)["negative_elbo"]
        draws[marginalize] = keras.ops.convert_to_numpy(values).reshape(
            copies, len(images)
        )
    sampled, summed = draws[False], draws[True]
    difference = sampled.mean(0) - summed.mean(0)
    standard_error = np.sqrt(
        sampled.var(0, ddof=1) / len(sampled)
        + summed.var(0, ddof=1) / len(summed)
    )
    assert np.all(np.abs(difference) < 4.5 * standard_error), (
        difference,
        standard_error,
    )


def test_unlabelled_rows_give_the_classifier_no_gradient(example):
    # One SGD step on all-zero label rows leaves a classifier unchanged;
    # Keras's CategoricalCrossentropy moved it on TensorFlow.
    classifier = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    classifier.compile(
        optimizer=keras.optimizers.SGD(1.0),
        loss=example.labelled_cross_entropy,
    )
    before = [w.copy() for w in classifier.get_weights()]
    inputs = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    classifier.train_on_batch(inputs, np.zeros((8, 3), "float32"))
    for weight, old in zip(classifier.get_weights(), before, strict=True):
        np.testing.assert_array_equal(weight, old)
    one_label = np.zeros((8, 3), "float32")
    one_label[0, 1] = 1.0
    classifier.train_on_batch(inputs, one_label)
    assert not np.array_equal(classifier.get_weights()[0], before[0])


@pytest.mark.harness
def test_seeds_benchmark_summarizes_the_example_runs_and_times_both_models(
    example, seeds_benchmark, tmp_path
):
    # Two 1-epoch runs of a small model, and two timed steps per model at
    # 10 classes: the summary is the mean and sample standard deviation of
    # the runs, and seed 1's run is the example's own run from seed 1.
    arguments = ["--epochs", "1", "--hidden-units", "32", "--latent-dim", "4"]
    assert (
        seeds_benchmark.main(
            [*arguments, "--seeds", "2", "--speed-classes", "10"]
            + ["--speed-steps", "2", "--output-dir", str(tmp_path / "seeds")]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "seeds" / "metrics.json").read_text())
    assert [run["seed"] for run in metrics["runs"]] == [0, 1]
    for key in ("test_accuracy", "test_neg_elbo"):
        values = [run[key] for run in metrics["runs"]]
        assert metrics[key]["mean"] == pytest.approx(np.mean(values))
        assert metrics[key]["std"] == pytest.approx(np.std(values, ddof=1))
    assert metrics["reload_max_abs_difference"] <= 1e-5
    assert (tmp_path / "seeds" / "model.keras").stat().st_size > 0
    [row] = metrics["step_time"]
    assert row["num_classes"] == 10
    assert row["sampled_ms"] > 0 and row["marginalized_ms"] > 0
    assert row["speedup"] == pytest.approx(
        row["marginalized_ms"] / row["sampled_ms"]
    )
    output_dir = str(tmp_path / "example")
    assert (
        example.main([*arguments, "--seed", "1", "--output-dir", output_dir])
        == 0
    )
    alone = json.loads((tmp_path / "example" / "metrics.json").read_text())
    assert alone["test_accuracy"] == metrics["runs"][1]["test_accuracy"]
    assert alone["test_neg_elbo"] == metrics["runs"][1]["test_neg_elbo"]


def test_semi_supervised_help_gives_every_default(
    example, seeds_benchmark, capsys
):
    for script, options in [
        (example, [("--seed", "0")]),
        (seeds_benchmark, [("--seeds", "3"), ("--speed-classes", "[10, 100]")]),
    ]:
        with pytest.raises(SystemExit):
            script.main(["--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        for option, default in [
            ("--dataset", "digits"),
            ("--epochs", "100"),
            ("--labels-per-class", "10"),
            ("--classification-weight", "10.0"),
            *options,
        ]:
            assert f"{option} " in help_text
            assert f"(default: {default})" in help_text


@pytest.mark.parametrize("weight", ["0", "-1", "nan", "inf"])
def test_semi_supervised_rejects_a_classification_weight_not_positive(
    example, weight, capsys
):
    with pytest.raises(SystemExit):
        example.main(["--classification-weight", weight])
    assert "--classification-weight must be positive" in capsys.readouterr().err


def test_mixed_float16_trains_as_float32_does(example, tmp_path):
    """Two epochs under `mixed_float16` (half-precision hidden layers, a
    loss-scaled optimizer) and under float32, the same seed and noise: the
    test -ELBO (about 31 nats) within 2 nats, under 2 standard deviations
    of float32's over seeds (1.2, seeds 1-5 on JAX), and the logits'
    layers in float32. Measured gaps: 0.54-0.77 nats on the three
    backends, from the 2 of 30 steps that the loss scale skips as it falls
    from 2**15 to 2**13 (measured on JAX; under `mixed_bfloat16`, which
    scales nothing, the gap is below 0.01)."""
    arguments = ["--epochs", "2", "--hidden-units", "64", "--latent-dim", "8"]
    neg_elbo = {}
    for policy in ("float32", "mixed_float16"):
        output_dir = tmp_path / policy
        try:
            code = example.main(
                [*arguments, "--dtype-policy", policy]
                + ["--output-dir", str(output_dir)]
            )
        finally:
            keras.config.set_dtype_policy("float32")
        assert code == 0
        metrics = json.loads((output_dir / "metrics.json").read_text())
        assert metrics["settings"]["dtype_policy"] == policy
        neg_elbo[policy] = metrics["test_neg_elbo"]
    assert abs(neg_elbo["mixed_float16"] - neg_elbo["float32"]) < 2.0
    model = keras.saving.load_model(tmp_path / "mixed_float16" / "model.keras")
    classifier = model.get_layer("classifier")
    policies = [layer.dtype_policy.name for layer in classifier.layers[1:]]
    assert policies == ["mixed_float16", "float32"]


def test_semi_supervised_keeps_an_earlier_runs_files(example, tmp_path):
    example_modules.assert_keeps_an_earlier_run(
        example.main, ["--epochs", "1"], tmp_path, "model.keras"
    )


def test_a_nan_reload_difference_fails_the_run(
    example, monkeypatch, tmp_path, capsys
):
    """The reload check compares with `<=`: a NaN difference (a reloaded
    model giving NaN) must fail the run, not pass as within 1e-5."""
    monkeypatch.setattr(
        example,
        "train_and_evaluate",
        lambda *args: (None, {"test_accuracy": 0.5, "test_neg_elbo": 30.0}),
    )
    monkeypatch.setattr(example, "save_and_check", lambda *args: math.nan)
    assert example.main(["--output-dir", str(tmp_path)]) == 1
    assert "the reloaded model differs by nan" in capsys.readouterr().out


def test_accuracy_is_nan_for_a_nan_logit(example):
    """Before, argmax took a NaN row's class as its first NaN's index."""
    labels = np.array([0, 1, 1])
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert example.accuracy(logits, labels) == pytest.approx(2 / 3)
    logits[2, 1] = np.nan
    assert math.isnan(example.accuracy(logits, labels))
