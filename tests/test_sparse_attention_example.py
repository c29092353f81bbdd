"""examples/sparse_attention.py: a short run, its files, and its figures
recomputed in NumPy from the saved model on the test split."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest

from tests import example_modules
from tests.arrays import to_numpy

NUM_PAIRS = 6
NUM_VALUES = 4
NUM_KEYS = 12
TRAIN_SIZE = 128
TEST_SIZE = 64
DATA_SEED = 3
SHORT_RUN = [
    "--variants",
    "softmax",
    "sparsemax",
    "--num-pairs",
    str(NUM_PAIRS),
    "--num-keys",
    str(NUM_KEYS),
    "--num-values",
    str(NUM_VALUES),
    "--train-size",
    str(TRAIN_SIZE),
    "--test-size",
    str(TEST_SIZE),
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--seeds",
    "0",
    "--data-seed",
    str(DATA_SEED),
]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """The example's status, printed table and output folder."""
    example = example_modules.load("sparse_attention")
    output_dir = tmp_path_factory.mktemp("sparse_attention")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = example.main(SHORT_RUN + ["--output-dir", str(output_dir)])
    with open(output_dir / "results.json") as file:
        metrics = json.load(file)
    return status, printed.getvalue(), output_dir, metrics


def short_run_test_split():
    """The test split of the short run, drawn as the example draws it."""
    example = example_modules.load("sparse_attention")
    rng = np.random.default_rng(DATA_SEED)
    sizes = (NUM_PAIRS, NUM_KEYS, NUM_VALUES)
    example.associative_recall(TRAIN_SIZE, *sizes, rng)
    return example.associative_recall(TEST_SIZE, *sizes, rng)


def test_examples_pair_distinct_keys_and_ask_for_one_of_them():
    inputs, targets, positions = short_run_test_split()
    rows = np.arange(len(targets))
    keys = inputs["keys"]
    assert all(len(set(row)) == NUM_PAIRS for row in keys)
    np.testing.assert_array_equal(inputs["query"][:, 0], keys[rows, positions])
    np.testing.assert_array_equal(targets, inputs["values"][rows, positions])


def test_short_run_writes_its_files(short_run):
    status, printed, output_dir, metrics = short_run
    assert status == 0
    assert (output_dir / "attention.png").read_bytes()[:4] == b"\x89PNG"
    assert metrics["saved_model"]["reload_max_abs_difference"] <= 1e-5
    assert metrics["chance_accuracy"] == 1 / NUM_VALUES
    assert list(metrics["runs"]) == ["softmax", "sparsemax"]
    assert printed.startswith((output_dir / "results.md").read_text())


def test_table_shows_the_figures_of_the_json(short_run):
    _, _, output_dir, metrics = short_run
    lines = (output_dir / "results.md").read_text().splitlines()
    rows = [line.strip("|").split(" | ") for line in lines[2:4]]
    for row, (variant, runs) in zip(rows, metrics["runs"].items(), strict=True):
        (run,) = runs
        expected = [
            f"{run[key]:.3f}"
            for key in (
                "accuracy",
                "zero_fraction",
                "support_size",
                "pair_weight",
                "pair_is_largest",
            )
        ]
        assert [cell.strip() for cell in row] == [variant, *expected]
    assert f"Chance accuracy: {1 / NUM_VALUES:.3f}." in lines


def test_saved_model_gives_the_recorded_figures_on_the_test_split(short_run):
    """The saved model is sparsemax's; reloaded, its outputs on the test
    split give the figures recorded for it, recomputed here."""
    _, _, output_dir, metrics = short_run
    inputs, targets, positions = short_run_test_split()
    model = keras.saving.load_model(output_dir / "model.keras")
    outputs = model(inputs, training=False)
    logits = to_numpy(outputs["value_logits"]).astype("float64")
    weights = to_numpy(outputs["attention_weights"]).astype("float64")
    num_heads = weights.shape[1]
    assert weights.shape == (len(targets), num_heads, 1, NUM_PAIRS)
    np.testing.assert_allclose(np.sum(weights, -1), 1.0, atol=1e-5)
    (run,) = metrics["runs"]["sparsemax"]
    rows = np.arange(len(targets))
    pair_weights = np.stack(
        [weights[rows, head, 0, positions] for head in range(num_heads)]
    )
    recomputed = {
        "accuracy": np.mean(np.argmax(logits, -1) == targets),
        "zero_fraction": np.mean(weights == 0.0),
        "support_size": np.sum(weights > 0.0) / (len(targets) * num_heads),
        "pair_weight": np.mean(pair_weights),
        "pair_is_largest": np.mean(
            np.argmax(np.sum(weights[:, :, 0], 1), -1) == positions
        ),
    }
    for name, value in recomputed.items():
        np.testing.assert_allclose(run[name], value, atol=1e-6, err_msg=name)
    assert 0.0 <= run["accuracy"] <= 1.0


def test_sparsemax_weights_have_zeros_and_softmax_weights_none(short_run):
    _, _, _, metrics = short_run
    (softmax,) = metrics["runs"]["softmax"]
    (sparsemax,) = metrics["runs"]["sparsemax"]
    assert softmax["zero_fraction"] == 0.0
    assert softmax["support_size"] == NUM_PAIRS
    assert sparsemax["zero_fraction"] > 0.0
    assert sparsemax["support_size"] < NUM_PAIRS
    assert 0.0 <= softmax["accuracy"] <= 1.0


def test_fewer_keys_than_pairs_is_a_usage_error():
    example = example_modules.load("sparse_attention")
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        with pytest.raises(SystemExit):
            example.parse_arguments(["--num-pairs", "8", "--num-keys", "4"])
    assert "--num-keys must be at least --num-pairs" in errors.getvalue()


def test_an_earlier_runs_files_are_kept_unless_overwrite(tmp_path):
    example = example_modules.load("sparse_attention")
    example_modules.assert_keeps_an_earlier_run(
        example.main, SHORT_RUN, tmp_path, "results.md"
    )
    arguments = ["--output-dir", str(tmp_path), "--overwrite"]
    assert example.parse_arguments(arguments).overwrite


def test_a_nan_logit_or_weight_gives_nan_figures():
    example = example_modules.load("sparse_attention")
    logits = np.eye(2, 3)
    weights = np.full((2, 1, 3), 1.0 / 3.0)
    targets, positions = np.array([0, 1]), np.array([2, 0])
    assert example.evaluate(logits, weights, targets, positions)[
        "accuracy"
    ] == pytest.approx(1.0)
    for array in (logits, weights):
        array.flat[1] = np.nan
        figures = example.evaluate(logits, weights, targets, positions)
        assert set(figures) == set(example.FIGURES)
        assert all(np.isnan(value) for value in figures.values())
