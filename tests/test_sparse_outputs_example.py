"""examples/sparse_outputs.py: a short run, and its figures recomputed."""

import contextlib
import io

import numpy as np

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
