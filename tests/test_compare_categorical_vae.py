"""The summary over seeds of `benchmarks/compare_categorical_vae.py`."""

import json

import keras
import numpy as np
import pytest

from tests import example_modules


def test_summary_gives_elbo_spread_and_same_round_time_ratios():
    compare = example_modules.load("compare_categorical_vae")
    # Steady seconds (the first, compiling epoch is left out; median of the
    # rest) per round: PyTorch 2, 4, 1; JAX 1, 4, 1. The ratios of each
    # round are 0.5, 1, 1: median 1, whereas the ratio of the medians
    # would be 0.5.
    torch_epochs = [[9.0, 2.0, 2.0, 5.0], [9.0, 4.0], [9.0, 1.0, 0.5, 1.0]]
    jax_epochs = [[30.0, 1.0], [30.0, 4.0, 4.0, 0.1], [30.0, 1.0]]
    rounds = [
        {
            "PyTorch (plain)": {
                "test_neg_elbo": 20.0 + seed,
                "seconds_per_epoch": torch_epochs[seed],
            },
            "keras-latent, jax": {
                "test_neg_elbo": 21.0 - 2 * seed,
                "seconds_per_epoch": jax_epochs[seed],
            },
        }
        for seed in range(3)
    ]
    baseline, jax_row = compare.summarize(rounds)
    assert baseline["implementation"] == "PyTorch (plain)"
    assert baseline["seconds"] == [2.0, 4.0, 1.0]
    assert baseline["ratio_median"] == 1.0
    assert baseline["test_neg_elbo_mean"] == pytest.approx(21.0)
    assert baseline["test_neg_elbo_std"] == pytest.approx(1.0)
    assert jax_row["implementation"] == "keras-latent, jax"
    assert jax_row["seconds"] == [1.0, 4.0, 1.0]
    assert jax_row["seconds_median"] == 1.0
    assert jax_row["seconds_range"] == [1.0, 4.0]
    assert jax_row["ratio_median"] == pytest.approx(1.0)
    assert jax_row["ratio_range"] == pytest.approx([0.5, 1.0])
    assert jax_row["test_neg_elbo_mean"] == pytest.approx(19.0)
    assert jax_row["test_neg_elbo_std"] == pytest.approx(
        np.std([21.0, 19.0, 17.0], ddof=1)
    )


def test_keras_latent_rows_get_their_ratio_to_plain_keras_of_the_round():
    compare = example_modules.load("compare_categorical_vae")
    # Steady seconds per round: PyTorch 2, 2; plain Keras 1, 4;
    # keras-latent 1.5, 2: ratios to plain Keras 1.5 and 0.5.
    rounds = [
        {
            "PyTorch (plain)": {
                "test_neg_elbo": 20.0,
                "seconds_per_epoch": [9.0, 2.0],
            },
            "plain Keras, jax": {
                "test_neg_elbo": 20.5,
                "seconds_per_epoch": [9.0, plain],
            },
            "keras-latent, jax": {
                "test_neg_elbo": 20.4,
                "seconds_per_epoch": [9.0, ours],
            },
        }
        for plain, ours in ((1.0, 1.5), (4.0, 2.0))
    ]
    baseline, plain_row, ours_row = compare.summarize(rounds)
    assert baseline["plain_keras_ratio_median"] is None
    assert plain_row["plain_keras_ratio_median"] is None
    assert ours_row["ratio_median"] == pytest.approx(0.875)
    assert ours_row["plain_keras_ratio_median"] == pytest.approx(1.0)
    assert ours_row["plain_keras_ratio_range"] == pytest.approx([0.5, 1.5])


@pytest.mark.harness
def test_plain_keras_baseline_trains_and_reports_a_discrete_elbo(tmp_path):
    baseline = example_modules.load("keras_categorical_vae")
    output = tmp_path / "summary.json"
    assert baseline.main(["--epochs", "2", "--output-json", str(output)]) == 0
    with open(output) as file:
        summary = json.load(file)
    assert summary["framework"] == f"keras-{keras.backend.backend()}"
    assert len(summary["seconds_per_epoch"]) == 2
    assert all(seconds > 0 for seconds in summary["seconds_per_epoch"])
    # 64 binary pixels: the untrained -ELBO is about 64 log 2 = 44 nats;
    # two epochs of training bring it well below.
    assert summary["train_loss"][1] < summary["train_loss"][0]
    assert 5.0 < summary["test_neg_elbo"] < 40.0
