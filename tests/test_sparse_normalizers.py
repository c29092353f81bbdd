"""The speed harness of the sparse normalizers: one tiny end-to-end run."""

import json
import math
import statistics

import pytest

from tests import example_modules


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One round of the PyTorch worker on shapes divided by 64."""
    harness = example_modules.load("sparse_normalizers")
    output_dir = tmp_path_factory.mktemp("sparse_normalizers")
    status = harness.main(
        [
            "--backends",
            "torch",
            "--repeats",
            "1",
            "--scale",
            "64",
            "--output-dir",
            str(output_dir),
        ]
    )
    assert status == 0
    return harness, output_dir


@pytest.mark.harness
@pytest.mark.slow
def test_a_tiny_run_writes_ratios_derived_from_the_measured_times(tiny_run):
    harness, output_dir = tiny_run
    results = json.loads((output_dir / "results.json").read_text())
    (measured,) = results["measurements"]
    assert measured["backend"] == "torch"
    assert results["config"]["shapes"] == {
        "batch": [16, 512],
        "attention": [1, 256, 256],
    }

    summary = results["summary"]
    rows = {(row["shape"], row["op"]): row for row in summary["ops"]}
    assert set(rows) == {
        (shape, op) for shape in harness.SHAPES for op in harness.OPS
    }
    for (shape, op), row in rows.items():
        seconds = measured["ops"][shape]["seconds"]
        (own,) = seconds[op]
        assert own > 0.0
        assert row["ratio_to_softmax"] == own / seconds["softmax"][0]
        if op in harness.PACKAGE_OPS:
            (peer,) = seconds[f"entmax package {op}"]
            assert row["ratio_to_package"] == own / peer
        else:
            assert row["ratio_to_package"] is None
    for row in summary["ops"] + summary["hidden_step"]:
        assert math.isfinite(row["ratio_to_softmax"])
        assert row["ratio_to_softmax"] > 0.0

    steps = measured["hidden_step"]["seconds"]
    for row in summary["hidden_step"]:
        (own,) = steps[row["normalizer"]]
        assert row["seconds"] == statistics.median([own])
        assert row["ratio_to_softmax"] == own / steps["softmax"][0]
    assert [row["normalizer"] for row in summary["hidden_step"]] == list(
        harness.HIDDEN_NORMALIZERS
    )

    table = (output_dir / "results.md").read_text()
    assert "| torch | batch 16x512 | entmax15 |" in table
    assert "| torch | sparsemax |" in table
    assert table.count("\n| torch |") == len(rows) + 3
