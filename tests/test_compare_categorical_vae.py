"""The summary over seeds of `benchmarks/compare_categorical_vae.py`."""

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
