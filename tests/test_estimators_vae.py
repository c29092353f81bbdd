"""The estimator benchmark: its flags, its claims' rule, and a tiny run."""

import argparse
import json

import pytest

from tests import example_modules


@pytest.fixture(scope="module")
def benchmark():
    return example_modules.load("estimators_vae")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("reinmax", ("reinmax", None)),
        ("gumbel_rao", ("gumbel_rao", 10)),
        ("gumbel_rao_k100", ("gumbel_rao", 100)),
        ("reinforce_loo_s2", ("reinforce_loo", 2)),
    ],
)
def test_estimator_names_give_the_estimator_and_its_samples(
    benchmark, name, expected
):
    assert benchmark.parse_estimator(name) == expected


@pytest.mark.parametrize("name", ["reinforce_loo_s1", "gumbel_rao_k", "rebar"])
def test_estimator_names_without_a_valid_estimator_are_rejected(
    benchmark, name
):
    with pytest.raises(argparse.ArgumentTypeError):
        benchmark.parse_estimator(name)


NAMES = [
    "straight_through_gumbel",
    "gumbel_rao_k10",
    "straight_through",
    "reinmax",
    "reinforce_loo_s2",
    "reinforce_loo_s8",
]


def summaries(bounds_by_setting):
    return {
        setting: {
            name: {"test_neg_iw_bound": pair} for name, pair in bounds.items()
        }
        for setting, bounds in bounds_by_setting.items()
    }


def verdicts_of(benchmark, bounds_by_setting):
    verdicts = benchmark.claim_verdicts(summaries(bounds_by_setting), NAMES)
    return [verdict for _, verdict, _ in verdicts]


def test_claims_follow_the_noise_margin_rule(benchmark):
    # Margins sqrt(1 + 1) = 1.41 for every pair. (a) Gumbel-Rao lower by 2
    # in both settings; (b) ReinMax lower by 2 in one setting, higher by 2
    # in the other; (c) S=2 higher than straight-through Gumbel by 3, but
    # S=8 only 1 below S=2 in one setting: within the margin.
    common = {
        "straight_through": (100.0, 1.0),
        "reinforce_loo_s2": (103.0, 1.0),
    }
    first = {
        **common,
        "straight_through_gumbel": (100.0, 1.0),
        "gumbel_rao_k10": (98.0, 1.0),
        "reinmax": (98.0, 1.0),
        "reinforce_loo_s8": (100.0, 1.0),
    }
    second = {
        **first,
        "reinmax": (102.0, 1.0),
        "reinforce_loo_s8": (102.0, 1.0),
    }
    assert verdicts_of(benchmark, {"one": first, "two": second}) == [
        "reproduced",
        "not reproduced",
        "within noise",
    ]


def test_claims_whose_estimators_were_not_run_are_not_measured(benchmark):
    verdicts = benchmark.claim_verdicts(
        summaries({"one": {"reinmax": (1.0, 0.0)}}), ["reinmax"]
    )
    assert [verdict for _, verdict, _ in verdicts] == ["not measured"] * 3


@pytest.mark.harness
def test_a_tiny_run_writes_its_table_and_bounds(benchmark, tmp_path):
    status = benchmark.main(
        [
            "--dataset",
            "digits",
            "--estimators",
            "reinforce_loo_s2",
            "--latents",
            "4x3",
            "--batch-sizes",
            "50",
            "--steps",
            "2",
            "--seeds",
            "1",
            "--eval-samples",
            "4",
            "--eval-images",
            "20",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert status == 0
    results = json.loads((tmp_path / "results.json").read_text())
    runs = results["runs"]["4x3, batch 50"]
    assert sorted(runs) == ["reinforce_loo_s2"]
    # An untrained model explains 64 binary pixels in at most about
    # 64 log 2 = 44 nats plus the KL; the bound is positive and finite.
    for seed_runs in runs.values():
        assert [run["seed"] for run in seed_runs] == [0]
        for run in seed_runs:
            assert 0 < run["test_neg_iw_bound"] < 100
    table = (tmp_path / "results.md").read_text()
    assert "| reinforce_loo_s2 |" in table
