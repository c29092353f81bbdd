"""examples/sparse_outputs.py: a short run, and its figures recomputed."""

import contextlib
import io

import numpy as np
import pytest

from tests import example_modules
from tests import references
from tests.arrays import to_numpy


def test_short_run_prints_one_row_per_loss():
    example = example_modules.load("sparse_outputs")
    printed = io.StringIO()
    arguments = ["--epochs", "1", "--batch-size", "500"]
    with contextlib.redirect_stdout(printed):
        status = example.main(arguments + ["--variants", "sparsemax"])
    assert status == 0
    rows = printed.getvalue().splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["sparsemax"]


def test_figures_match_numpy_on_the_trained_model():
    example = example_modules.load("sparse_outputs")
    data = example.image_datasets.load_images("digits", binarize=False)
    _, (x_test, y_test) = data
    figures = {}
    for variant in ("softmax", "sparsemax"):
        model = example.train_variant(variant, data, 1, 500, seed=0)
        logits = to_numpy(model(x_test))
        probabilities = (
            references.sparsemax(logits)
            if variant == "sparsemax"
            else references.softmax(logits)
        )
        figures[variant] = example.evaluate(variant, model, x_test, y_test)
        np.testing.assert_allclose(
            figures[variant]["accuracy"],
            np.mean(np.argmax(logits, -1) == y_test),
        )
        # Sparsemax entries at 0 are exact; float32 and float64 may only
        # disagree on an entry within rounding of the threshold.
        np.testing.assert_allclose(
            figures[variant]["support_size"],
            np.mean(np.sum(probabilities > 1e-6, -1)),
            atol=0.02,
        )
        in_support = probabilities[np.arange(len(y_test)), y_test] > 1e-6
        np.testing.assert_allclose(
            figures[variant]["label_in_support"], np.mean(in_support), atol=0.01
        )
    assert figures["softmax"]["support_size"] == 10.0
    assert figures["sparsemax"]["support_size"] < 10.0


@pytest.mark.parametrize("script", ["sparse_outputs", "hidden_softmax"])
@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--batch-size", "-5"], "--batch-size must be at least 1"),
    ],
)
def test_sizes_below_one_are_usage_errors(script, arguments, message):
    """Keras trained with its default batch of 32 for a batch size of 0,
    and 0 epochs crashed after training with a KeyError."""
    example = example_modules.load(script)
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        with pytest.raises(SystemExit) as stop:
            example.main(arguments + ["--variants", "softmax"])
    assert stop.value.code == 2
    assert message in errors.getvalue()


@pytest.mark.parametrize("script", ["sparse_outputs", "hidden_softmax"])
def test_a_missing_dataset_is_reported_in_one_line(script, monkeypatch):
    example = example_modules.load(script)

    def unavailable(name, **kwargs):
        raise example.image_datasets.DatasetUnavailableError("install it")

    monkeypatch.setattr(example.image_datasets, "load_images", unavailable)
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        assert example.main(["--dataset", "mnist"]) == 2
    assert errors.getvalue() == "error: install it\n"


def test_a_model_with_a_nan_logit_gets_nan_figures():
    """Before, argmax of NaN logits was class 0 (a plausible accuracy)
    and a NaN probability was outside every support."""
    example = example_modules.load("sparse_outputs")
    labels = np.array([0, 1, 2])
    logits = np.eye(3, 4, dtype="float32")
    logits[1, 2] = np.nan

    def model(images, training):
        return logits

    figures = example.evaluate("sparsemax", model, None, labels)
    assert set(figures) == set(example.FIGURES)
    assert all(np.isnan(value) for value in figures.values())
