"""The learned-alpha study (`benchmarks/learned_alpha_study.py`)."""

import json

import keras
import numpy as np
import pytest

from tests import example_modules


@pytest.fixture(scope="module")
def study():
    return example_modules.load("learned_alpha_study")


@pytest.mark.harness
@pytest.mark.slow
def test_a_tiny_study_reports_alphas_accuracy_and_support(study, tmp_path):
    status = study.main(
        [
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--variants",
            "sparsemax",
            "entmax_learned",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert status == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["backend"] == keras.backend.backend()
    assert list(results["variants"]) == ["sparsemax", "entmax_learned"]
    for variant, entry in results["variants"].items():
        (run,) = entry["runs"]
        assert 0.0 <= run["test_accuracy"] <= 1.0, variant
        assert 1.0 <= run["mean_support_size"] <= 16.0, variant
    assert results["variants"]["sparsemax"]["runs"][0]["alphas"] == {}
    learned = results["variants"]["entmax_learned"]
    for name in study.HIDDEN_LAYERS:
        (alphas,) = [run["alphas"][name] for run in learned["runs"]]
        assert len(alphas) == study.GROUPS
        # Trained from 1.5 for one epoch: moved, and inside (1, 2).
        assert all(1.0 < alpha < 2.0 and alpha != 1.5 for alpha in alphas)
        summary = learned["summary"]["alphas"][name]
        assert summary["min"] == min(alphas)
        assert summary["max"] == max(alphas)
    markdown = (tmp_path / "results.md").read_text()
    assert "| sparsemax |" in markdown
    assert "| entmax_learned |" in markdown


def test_mean_support_size_counts_the_exact_nonzeros_of_each_group(study):
    # Two examples, two groups of four units: supports 1, 4, 2 and 3.
    activations = np.array(
        [
            [1.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4],
            [0.5, 0.5, 0.0, 0.0, 0.0, 0.2, 0.3, 0.5],
        ]
    )
    assert study.mean_support_size(activations, groups=2) == 2.5


def test_summaries_pool_the_alphas_of_every_group_and_seed(study):
    runs = [
        {
            "test_accuracy": 0.5,
            "mean_support_size": 3.0,
            "alphas": {"hidden_1": [1.2, 1.4]},
        },
        {
            "test_accuracy": 0.7,
            "mean_support_size": 5.0,
            "alphas": {"hidden_1": [1.9, 1.5]},
        },
    ]
    summary = study.summarize(runs)
    assert summary["test_accuracy_mean"] == pytest.approx(0.6)
    assert summary["test_accuracy_std"] == pytest.approx(np.sqrt(0.02))
    assert summary["mean_support_size"] == 4.0
    assert summary["alphas"]["hidden_1"] == pytest.approx(
        {"mean": 1.5, "min": 1.2, "max": 1.9}
    )
