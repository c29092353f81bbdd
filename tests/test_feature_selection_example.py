"""examples/feature_selection.py: a short sweep, and its figures recomputed."""

import json

import keras
import numpy as np
import pytest

from tests import example_modules

TINY_KS = (2, 5)


@pytest.fixture(scope="module")
def example():
    return example_modules.load("feature_selection")


@pytest.fixture(scope="module")
def digits(example):
    return example.image_datasets.load_images("digits", binarize=False)


@pytest.fixture(scope="module")
def tiny_run(example, tmp_path_factory):
    """The output folder of a sweep over `TINY_KS` on 300 digits."""
    output_dir = tmp_path_factory.mktemp("feature_selection")
    arguments = ["--dataset", "digits", "--train-images", "300"]
    arguments += ["--epochs", "1", "--ks", *map(str, TINY_KS)]
    status = example.main(arguments + ["--output-dir", str(output_dir)])
    assert status == 0
    return output_dir, arguments


def test_outputs_are_written_with_one_row_per_k(tiny_run):
    output_dir, _ = tiny_run
    with open(output_dir / "selection.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    results = json.loads((output_dir / "results.json").read_text())
    assert results["backend"] == keras.backend.backend()
    assert results["test_images"] == 297
    assert [row["k"] for row in results["by_k"]] == list(TINY_KS)
    table = (
        (output_dir / "results.md").read_text().splitlines()[-len(TINY_KS) :]
    )
    for row, line in zip(results["by_k"], table, strict=True):
        names = ("accuracy", "random_accuracy", "post_hoc_accuracy")
        names += ("random_post_hoc_accuracy",)
        cells = [float(cell) for cell in line.strip("| ").split(" | ")[2:]]
        np.testing.assert_allclose(cells, [row[n] for n in names], atol=5e-4)
        assert all(0.0 <= row[name] <= 1.0 for name in names)
        # The digits' features are single pixels: k of them per image.
        assert row["pixels"] == row["k"]
        np.testing.assert_allclose(
            np.sum(row["selection_frequency"]), row["k"], rtol=1e-5
        )


def test_reloaded_model_selects_k_pixels_and_gives_the_reported_accuracy(
    example, tiny_run, digits
):
    output_dir, _ = tiny_run
    results = json.loads((output_dir / "results.json").read_text())
    model = keras.saving.load_model(output_dir / "model.keras")
    _, (x_test, y_test) = digits
    k = results["saved_k"]
    masks = example.pixel_masks(model, x_test)
    assert set(np.unique(masks)) <= {0.0, 1.0}
    np.testing.assert_array_equal(np.sum(masks, axis=-1), k)
    (row,) = [row for row in results["by_k"] if row["k"] == k]
    logits = keras.ops.convert_to_numpy(model(x_test))
    accuracy = np.mean(np.argmax(logits, axis=-1) == y_test)
    np.testing.assert_allclose(accuracy, row["accuracy"])
    np.testing.assert_allclose(
        np.mean(masks, axis=0), row["selection_frequency"], atol=1e-6
    )
    assert results["reload_max_abs_difference"] <= 1e-5


def test_a_second_run_leaves_the_first_outputs_alone(example, tiny_run):
    output_dir, arguments = tiny_run
    before = {p.name: p.read_bytes() for p in output_dir.iterdir()}
    with pytest.raises(SystemExit) as exit_info:
        example.main(arguments + ["--output-dir", str(output_dir)])
    assert exit_info.value.code == 2
    assert {p.name: p.read_bytes() for p in output_dir.iterdir()} == before


def test_random_baseline_draws_k_patches_uniformly(example, digits):
    """Each patch is in a uniform k-subset of n with probability k / n.

    Over 297 images x 64 pixels with k = 8, each pixel's count is
    Binomial(297, 1/8); the chi-square statistic of the 64 counts (whose
    total is fixed) against 297 k / 64 has about 63 degrees of freedom
    (slightly fewer: draws within an image are without replacement), and
    exceeds 110 with probability below 1e-4.
    """
    args, k = example.parse_arguments(["--seed", "3"])[1], 8
    model = example.build_explainer(64, 10, 1, k, args, random_selection=True)
    _, (x_test, _) = digits
    masks = example.pixel_masks(model, x_test)
    np.testing.assert_array_equal(np.sum(masks, axis=-1), k)
    counts = np.sum(masks, axis=0)
    expected = len(x_test) * k / 64
    assert np.sum((counts - expected) ** 2 / expected) < 110


def test_without_fashion_mnist_the_default_falls_back_to_the_digits(
    example, monkeypatch
):
    def unavailable():
        raise example.image_datasets.DatasetUnavailableError("not here")

    monkeypatch.setattr(
        example.image_datasets, "_load_fashion_mnist", unavailable
    )
    parser, args = example.parse_arguments(["--train-images", "100"])
    (x_train, _), (x_test, _) = example.load_data(parser, args)
    assert args.dataset == "digits" and args.patch_size == 1
    assert x_train.shape == (100, 64) and x_test.shape == (297, 64)
    assert max(args.ks) < 64
    parser, args = example.parse_arguments(["--dataset", "fashion_mnist"])
    with pytest.raises(SystemExit) as exit_info:
        example.load_data(parser, args)
    assert exit_info.value.code == 2


@pytest.mark.parametrize("temperature", ["0", "nan", "inf"])
def test_a_temperature_not_positive_and_finite_is_a_usage_error(
    example, temperature, capsys
):
    with pytest.raises(SystemExit) as stop:
        example.parse_arguments(["--temperature", temperature])
    assert stop.value.code == 2
    assert "--temperature must be above 0" in capsys.readouterr().err


def test_a_model_with_a_nan_logit_gets_nan_accuracies(example):
    logits = np.eye(3, dtype="float32")
    labels = np.array([0, 1, 1])

    def model(images):
        return logits

    figures = example.evaluate(model, None, labels, labels)
    assert figures == pytest.approx(
        {"accuracy": 2 / 3, "post_hoc_accuracy": 2 / 3}
    )
    logits[0, 1] = np.nan
    figures = example.evaluate(model, None, labels, labels)
    assert all(np.isnan(value) for value in figures.values())
