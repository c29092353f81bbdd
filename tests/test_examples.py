"""The example scripts run end to end on the embedded default data."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest

from tests import example_modules


def load_example(name):
    return example_modules.load(name)


def numpy_negative_elbo(model, images):
    """-ELBO per image, in nats, from the model's own parts, in NumPy.

    The negative Bernoulli log-likelihood summed over the pixels, given one
    exact latent sample per image, plus the analytic KL of each categorical
    variable to the uniform prior summed over the variables.
    """
    latent = model.get_layer("latent")
    logits = keras.ops.convert_to_numpy(
        model.get_layer("encoder")(images)
    ).astype(np.float64)
    logits = logits.reshape(len(images), latent.num_variables, -1)
    log_q = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    kl = np.sum(np.exp(log_q) * (log_q + np.log(log_q.shape[-1])), (1, 2))
    pixel_logits = keras.ops.convert_to_numpy(
        model(images, training=False)
    ).astype(np.float64)
    bernoulli_nll = np.sum(
        images * np.logaddexp(0, -pixel_logits)
        + (1 - images) * np.logaddexp(0, pixel_logits),
        axis=1,
    )
    return np.mean(bernoulli_nll + kl)


def numpy_mlp(model, inputs):
    """The Dense layers of `model` applied to flat `inputs`, in float64."""
    values = inputs.reshape(len(inputs), -1).astype(np.float64)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            values = values @ kernel.astype(np.float64) + bias
            if layer.activation.__name__ == "relu":
                values = np.maximum(values, 0.0)
            else:
                assert layer.activation.__name__ == "linear"
    return values


def numpy_importance_weighted_bounds(model, images, num_samples, generator):
    """L_m of each image (Burda et al. 2016), from the weights, in NumPy.

    log (1/m) sum_i p(x | z_i) p(z_i) / q(z_i | x), with z_i exact samples
    of the posterior, the uniform prior and the Bernoulli likelihood.
    """
    latent = model.get_layer("latent")
    num_variables, num_categories = latent.num_variables, latent.num_categories
    logits = numpy_mlp(model.get_layer("encoder"), images)
    log_q = logits.reshape(len(images), num_variables, num_categories)
    log_q = log_q - np.logaddexp.reduce(log_q, axis=-1, keepdims=True)
    bounds = []
    for image, image_log_q in zip(images, log_q, strict=True):
        cumulative = np.cumsum(np.exp(image_log_q), axis=-1)
        uniforms = generator.random((num_samples, num_variables, 1))
        categories = np.minimum(
            np.sum(uniforms > cumulative, axis=-1), num_categories - 1
        )
        codes = np.eye(num_categories)[categories]
        pixel_logits = numpy_mlp(model.get_layer("decoder"), codes)
        log_likelihood = -np.sum(
            image * np.logaddexp(0, -pixel_logits)
            + (1 - image) * np.logaddexp(0, pixel_logits),
            axis=1,
        )
        log_posterior = np.sum(image_log_q[range(num_variables), categories], 1)
        log_prior = -num_variables * np.log(num_categories)
        log_weights = log_likelihood + log_prior - log_posterior
        bounds.append(np.logaddexp.reduce(log_weights) - np.log(num_samples))
    return np.array(bounds)


SHORT_RUN_EVAL_SAMPLES = 10


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """The output folder and printed lines of a 2-epoch run on the digits.

    1500 images in batches of 500: 3 steps per epoch, 6 in all.
    """
    output_dir = tmp_path_factory.mktemp("categorical_vae")
    example = load_example("categorical_vae")
    arguments = ["--epochs", "2", "--batch-size", "500", "--verbose", "0"]
    arguments += ["--eval-samples", str(SHORT_RUN_EVAL_SAMPLES)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = example.main(arguments + ["--output-dir", str(output_dir)])
    assert status == 0
    return output_dir, printed.getvalue().splitlines()


def test_categorical_vae_writes_its_files(short_run):
    output_dir, _ = short_run
    for name in ("metrics.json", "reconstructions.png", "samples.png"):
        assert (output_dir / name).stat().st_size > 0
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["backend"] == keras.backend.backend()
    assert metrics["dataset"] == "digits"
    assert len(metrics["seconds_per_epoch"]) == 2
    reloaded = keras.saving.load_model(output_dir / "model.keras")
    assert reloaded.get_layer("latent").num_variables == 30


def test_categorical_vae_reports_the_negative_elbo_in_nats_per_image(
    short_run,
):
    # A loss averaged over the 64 pixels instead of summed would report a
    # figure about 64 times smaller than this independent estimate.
    output_dir, _ = short_run
    example = load_example("categorical_vae")
    metrics = json.loads((output_dir / "metrics.json").read_text())
    model = keras.saving.load_model(output_dir / "model.keras")
    _, (x_test, _) = example.image_datasets.load_images("digits")
    keras.utils.set_random_seed(1)
    reference = numpy_negative_elbo(model, x_test)
    # Both are means over 297 images of one random sample each: their
    # standard errors are below 0.5 nats, so 2 nats is over 3 of them.
    assert metrics["test_neg_elbo"] == pytest.approx(reference, abs=2.0)
    assert metrics["history"][-1]["test_neg_elbo"] == metrics["test_neg_elbo"]


def test_categorical_vae_reports_the_importance_weighted_bound(short_run):
    output_dir, lines = short_run
    example = load_example("categorical_vae")
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["eval_samples"] == SHORT_RUN_EVAL_SAMPLES
    assert f"{metrics['test_neg_iw_bound']:.2f} nats/image" in lines[1]
    model = keras.saving.load_model(output_dir / "model.keras")
    _, (x_test, _) = example.image_datasets.load_images("digits")
    # Four independent NumPy estimates of the same 297 bounds: their spread
    # per image gives the Monte Carlo standard error of a mean over images.
    generator = np.random.default_rng(11)
    replicas = np.stack(
        [
            numpy_importance_weighted_bounds(
                model, x_test, SHORT_RUN_EVAL_SAMPLES, generator
            )
            for _ in range(4)
        ]
    )
    variance = np.mean(np.var(replicas, axis=0, ddof=1))
    standard_error = np.sqrt(variance / len(x_test) * (1 + 1 / 4))
    reference = -np.mean(replicas)
    assert abs(metrics["test_neg_iw_bound"] - reference) < 5 * standard_error
    # The bound with 10 samples is tighter than the single-sample -ELBO,
    # measured here on the same images (four draws each): E[L_10] >= ELBO.
    # After this short run the gap is about 0.14 nats, and the standard
    # error of the ELBO estimate 0.016.
    elbo_reference = -np.mean(
        [
            numpy_importance_weighted_bounds(model, x_test, 1, generator)
            for _ in range(4)
        ]
    )
    assert reference < elbo_reference
    assert metrics["test_neg_iw_bound"] < elbo_reference


ESTIMATOR_RUNS = {"reinforce_loo": 3, "gumbel_rao": 5}


def run_with_estimator(estimator, output_dir):
    """A run of one step, on all 1500 training images, with `--estimator`
    and `--num-samples`; returns the output folder."""
    example = load_example("categorical_vae")
    arguments = ["--epochs", "1", "--batch-size", "1500", "--verbose", "0"]
    arguments += ["--estimator", estimator]
    arguments += ["--num-samples", str(ESTIMATOR_RUNS[estimator])]
    arguments += ["--eval-samples", str(SHORT_RUN_EVAL_SAMPLES)]
    with contextlib.redirect_stdout(io.StringIO()):
        status = example.main(arguments + ["--output-dir", str(output_dir)])
    assert status == 0
    return output_dir


@pytest.fixture(scope="module")
def reinforce_loo_run(tmp_path_factory):
    return run_with_estimator(
        "reinforce_loo", tmp_path_factory.mktemp("reinforce_loo")
    )


@pytest.fixture(scope="module")
def gumbel_rao_run(tmp_path_factory):
    return run_with_estimator(
        "gumbel_rao", tmp_path_factory.mktemp("gumbel_rao")
    )


@pytest.mark.parametrize("estimator", sorted(ESTIMATOR_RUNS))
def test_categorical_vae_records_and_saves_its_estimator(estimator, request):
    output_dir = request.getfixturevalue(f"{estimator}_run")
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["estimator"] == estimator
    assert metrics["num_samples"] == ESTIMATOR_RUNS[estimator]
    assert np.isfinite(metrics["test_neg_elbo"])
    assert np.isfinite(metrics["test_neg_iw_bound"])
    model = keras.saving.load_model(output_dir / "model.keras")
    latent = model.get_layer("latent")
    if estimator == "reinforce_loo":
        # The layer draws exact samples; the model holds S for training.
        assert type(model).__name__ == "ReinforceLooVAE"
        assert model.num_samples == ESTIMATOR_RUNS[estimator]
        assert latent.estimator == "straight_through"
    else:
        assert latent.estimator == estimator
        assert latent.num_samples == ESTIMATOR_RUNS[estimator]


def test_reinforce_loo_training_loss_is_the_negative_elbo(
    reinforce_loo_run,
):
    # The surrogate's value is the mean loss over the S samples plus the
    # analytic KL: an unbiased estimate of the -ELBO, which the NumPy
    # reference estimates with one exact sample per image.
    output_dir = reinforce_loo_run
    example = load_example("categorical_vae")
    model = keras.saving.load_model(output_dir / "model.keras")
    _, (x_test, _) = example.image_datasets.load_images("digits")
    keras.utils.set_random_seed(2)
    losses = []
    for _ in range(6):
        predictions = model(x_test, training=True)
        loss = model.compute_loss(x_test, x_test, predictions, training=True)
        losses.append(float(keras.ops.convert_to_numpy(loss)))
    references = [numpy_negative_elbo(model, x_test) for _ in range(12)]
    # Each estimate is a mean over 297 images: compare the two means within
    # 5 standard errors of their difference, from their spreads.
    standard_error = np.sqrt(
        np.var(losses, ddof=1) / len(losses)
        + np.var(references, ddof=1) / len(references)
    )
    assert np.mean(losses) == pytest.approx(
        np.mean(references), abs=5 * standard_error + 1e-3
    )


def test_categorical_vae_prints_no_line_of_its_own_per_epoch(short_run):
    _, lines = short_run
    assert len(lines) == 2, lines
    assert lines[0].startswith("Categorical VAE on digits")
    assert lines[1].startswith("Test -ELBO after 2 epochs")


def test_categorical_vae_anneals_to_its_floor_within_the_run(short_run):
    # 6 steps: the floor comes at step 3, so the temperature of the last
    # step of epoch 1 (step 2) is 2 ** (-2 / 3), and 0.5 at the end of
    # epoch 2 (step 5). The schedule's rate is 1e-5 (relative) steeper than
    # log(2) / 3, so that float32 lands on the floor.
    output_dir, _ = short_run
    metrics = json.loads((output_dir / "metrics.json").read_text())
    temperatures = [record["temperature"] for record in metrics["history"]]
    np.testing.assert_allclose(temperatures, [2 ** (-2 / 3), 0.5], rtol=1e-5)
    assert metrics["temperature_schedule"]["total_steps"] == 6


@pytest.mark.parametrize("total_steps", [2, 15, 1500, 60000, 1234567])
def test_temperature_schedule_reaches_the_floor_at_half_the_run(
    total_steps,
):
    example = load_example("categorical_vae")
    schedule = example.temperature_schedule(total_steps, 1.0, 0.5)
    update_steps = range(0, total_steps, schedule.update_every)
    temperatures = [float(schedule(step)) for step in update_steps]
    assert temperatures[0] == 1.0
    floor_steps = [
        step
        for step, temperature in zip(update_steps, temperatures, strict=True)
        if temperature == pytest.approx(0.5, rel=1e-12)
    ]
    assert floor_steps, "the floor is never reached"
    assert floor_steps[0] <= total_steps // 2
    assert floor_steps[0] >= total_steps // 4
    assert len(temperatures) <= 2 * example.NUM_TEMPERATURE_UPDATES + 2


def test_categorical_vae_help_gives_every_default(capsys):
    example = load_example("categorical_vae")
    with pytest.raises(SystemExit):
        example.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for option, default in [
        ("--epochs", "100"),
        ("--latent", "30x10"),
        ("--batch-size", "100"),
        ("--eval-samples", "1000"),
        ("--minimum-temperature", "0.5"),
        ("--dataset", "digits"),
        ("--verbose", "2"),
    ]:
        assert option in help_text
        assert f"(default: {default})" in help_text


def test_categorical_vae_rejects_a_malformed_latent_flag(capsys):
    example = load_example("categorical_vae")
    with pytest.raises(SystemExit):
        example.main(["--latent", "30by10"])
    assert "--latent expects NxK" in capsys.readouterr().err


@pytest.mark.parametrize(
    "temperatures", [("inf", "0.5"), ("nan", "0.5"), ("1.0", "nan")]
)
def test_categorical_vae_rejects_temperatures_not_finite(temperatures, capsys):
    example = load_example("categorical_vae")
    initial, minimum = temperatures
    with pytest.raises(SystemExit) as stop:
        example.parse_arguments(
            ["--initial-temperature", initial, "--minimum-temperature", minimum]
        )
    assert stop.value.code == 2
    assert "the temperatures need" in capsys.readouterr().err


def test_categorical_vae_reports_a_missing_dataset(monkeypatch, capsys):
    example = load_example("categorical_vae")

    def unavailable(name, **kwargs):
        raise example.image_datasets.DatasetUnavailableError("install it")

    monkeypatch.setattr(example.image_datasets, "load_images", unavailable)
    assert example.main(["--dataset", "mnist"]) == 2
    assert "error: install it" in capsys.readouterr().err


def test_categorical_vae_keeps_an_earlier_runs_files(tmp_path):
    example_modules.assert_keeps_an_earlier_run(
        load_example("categorical_vae").main,
        ["--epochs", "1"],
        tmp_path,
        "metrics.json",
    )


def test_hidden_softmax_tutorial_prints_the_measures_of_each_run(
    capsys, monkeypatch
):
    tutorial = load_example("hidden_softmax")
    trained = {}
    train_variant = tutorial.train_variant

    def recorded(variant, *args, **kwargs):
        trained[variant] = train_variant(variant, *args, **kwargs)
        return trained[variant]

    monkeypatch.setattr(tutorial, "train_variant", recorded)
    arguments = ["--epochs", "1", "--variants", "relu", "grouped_softmax"]
    assert tutorial.main(arguments) == 0
    header, *rows = capsys.readouterr().out.splitlines()[-3:]
    assert header.split()[0] == "variant"
    assert [row.split()[0] for row in rows] == ["relu", "grouped_softmax"]
    for row in rows:
        accuracy, cross_entropy, correlation, rank, near_zero = map(
            float, row.split()[1:]
        )
        assert 0.0 <= accuracy <= 1.0 and cross_entropy > 0.0
        assert 0.0 <= correlation <= 1.0 and 0.0 <= near_zero <= 1.0
        assert 1.0 <= rank <= 256.0
    # The relu row holds the numbers of that run, measured again on its
    # trained model.
    data = tutorial.image_datasets.load_images("digits", binarize=False)
    model, history = trained["relu"]
    activations = tutorial.last_hidden_activations(model, data[1][0])
    expected = [
        history["val_accuracy"][-1],
        history["cross_entropy"][-1],
        tutorial.mean_absolute_correlation(activations)[0],
        tutorial.effective_rank(activations),
        tutorial.near_zero_fraction(activations),
    ]
    printed = [float(value) for value in rows[0].split()[1:]]
    # Printed with 3 decimals, the effective rank with 1.
    for value, reference, decimals in zip(
        printed, expected, [3, 3, 3, 1, 3], strict=True
    ):
        assert value == pytest.approx(reference, abs=0.5001 * 10**-decimals)
