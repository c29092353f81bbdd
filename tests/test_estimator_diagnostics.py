"""The estimator diagnostics: its statistics and a small end-to-end run.

The harness is `benchmarks/estimator_diagnostics.py`; the exact gradient
it measures against is `keras_latent.diagnostics.exact_gradient`, tested in
`tests/test_diagnostics.py`.
"""

import json

import numpy as np
import pytest

from tests import example_modules


@pytest.fixture(scope="module")
def harness():
    return example_modules.load("estimator_diagnostics")


def test_statistics_split_the_error_into_bias_and_variance(harness):
    """Two draws `exact + b + s` and `exact + b - s`: the bias is ||b||, the
    variance ||s||^2 and the MSE their sum, written out by hand."""
    exact = np.array([1.0, -2.0, 0.5])
    offset = np.array([0.3, 0.0, -0.4])
    spread = np.array([0.0, 1.0, 2.0])
    gradients = np.stack([exact + offset + spread, exact + offset - spread])
    statistics = harness.error_statistics(gradients, exact)
    assert statistics["bias"] == pytest.approx(0.5)
    assert statistics["variance"] == pytest.approx(5.0)
    assert statistics["mse"] == pytest.approx(5.25)
    assert statistics["bias_standard_error"] == pytest.approx(np.sqrt(2.5))
    assert statistics["relative_mse"] == pytest.approx(5.25 / 5.25)


def test_number_of_variables_keeps_the_enumeration_small(harness):
    assert [harness.num_variables_for(k) for k in (2, 10, 64, 65)] == [
        4,
        3,
        2,
        1,
    ]


@pytest.fixture(scope="module")
def tiny_run(harness, tmp_path_factory):
    """One objective, K = 2, one temperature, 400 draws."""
    output_dir = tmp_path_factory.mktemp("estimator_diagnostics")
    status = harness.main(
        [
            "--objectives",
            "quadratic",
            "--num-categories",
            "2",
            "--temperatures",
            "0.5",
            "--gumbel-rao-samples",
            "10",
            "--loo-samples",
            "4",
            "--draws",
            "400",
            "--output-dir",
            str(output_dir),
        ]
    )
    assert status == 0
    return output_dir


def rows_by_estimator(output_dir):
    with open(output_dir / "results.json") as file:
        results = json.load(file)
    return {row["estimator"]: row for row in results["rows"]}


@pytest.mark.harness
@pytest.mark.slow
def test_a_tiny_run_writes_a_row_per_estimator_and_its_files(tiny_run):
    rows = rows_by_estimator(tiny_run)
    assert sorted(rows) == sorted(
        [
            "gumbel_softmax",
            "straight_through_gumbel",
            "straight_through",
            "gumbel_rao_10",
            "reinmax",
            "reinforce_loo_4",
        ]
    )
    for row in rows.values():
        assert row["relative_mse"] == pytest.approx(
            row["relative_bias"] ** 2 + row["relative_std"] ** 2
        )
    assert (tiny_run / "mse_vs_temperature.png").stat().st_size > 0
    assert "| quadratic | 2 (4) | reinmax |" in (
        (tiny_run / "results.md").read_text()
    )


@pytest.mark.harness
@pytest.mark.slow
def test_reinforce_loo_is_unbiased_and_straight_through_is_not(tiny_run):
    """The harness's draws against its exact gradient: REINFORCE-LOO's mean
    lies within 4 standard errors of it, straight-through's far outside.

    For an unbiased estimator, ||mean - exact||^2 / standard_error^2 is
    about a weighted sum of chi-square(1) variables with weights summing to
    1, above 16 with probability at most that of one chi-square(1), 6e-5
    (Szekely and Bakirov 2003): the false-failure rate. On this toy problem
    straight-through's bias is about 0.47 of its standard deviation, 9.4
    standard errors at 400 draws, which falls below 5 with probability
    about 1e-5. The noise comes from NumPy at a fixed seed, the same on
    every backend.
    """
    rows = rows_by_estimator(tiny_run)
    unbiased = rows["reinforce_loo_4"]
    assert unbiased["bias"] < 4.0 * unbiased["bias_standard_error"]
    biased = rows["straight_through"]
    assert biased["bias"] > 5.0 * biased["bias_standard_error"]
