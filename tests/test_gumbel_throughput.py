"""The Gumbel-softmax throughput harness, `benchmarks/gumbel_throughput.py`."""

import json

import numpy as np
import pytest

from tests import example_modules


@pytest.fixture(scope="module")
def throughput():
    return example_modules.load("gumbel_throughput")


def test_a_case_gives_median_times_and_the_median_of_same_round_ratios(
    throughput,
):
    seconds = {
        "keras_latent": [2e-3, 3e-3, 1e-3],
        "peer": [1e-3, 3e-3, 4e-3],
    }
    row = throughput.summarize_case("jax", (4, 3), "forward", "soft", seconds)
    assert row["milliseconds"] == pytest.approx(2.0)
    peer = row["peers"]["peer"]
    assert peer["milliseconds"] == pytest.approx(3.0)
    # Same-round ratios 2, 1 and 0.25: their median, not 2 / 3.
    assert peer["ratio"] == pytest.approx(1.0)
    assert peer["ratio_range"] == pytest.approx([0.25, 2.0])


def test_default_shapes_reach_the_workers_as_given(throughput):
    args = throughput.parse_arguments([])
    command = throughput.child_command("jax", args, "rows.json")
    shapes = command[command.index("--shapes") + 1 : command.index("--repeats")]
    assert shapes == ["100x30x10", "1024x64x128"]


def test_the_largest_shape_has_the_strict_goal(throughput):
    shapes = [(100, 30, 10), (1024, 64, 128)]
    assert throughput.goal_for((1024, 64, 128), shapes) == 1.0
    assert throughput.goal_for((100, 30, 10), shapes) == 1.1


@pytest.mark.harness
def test_a_tiny_run_times_every_case_against_its_peers(throughput, tmp_path):
    status = throughput.main(
        [
            "--backends",
            "tensorflow",
            "--shapes",
            "4x3x5",
            "--repeats",
            "2",
            "--block-seconds",
            "0.002",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert status == 0
    with open(tmp_path / "results.json") as file:
        rows = json.load(file)["rows"]
    cases = {
        (row["backend"], tuple(row["shape"]), row["pass"], row["variant"])
        for row in rows
    }
    # One shape, two passes, two variants; without and with XLA.
    assert len(rows) == len(cases) == 2 * 2 * 2
    for row in rows:
        # TFP's relaxed categorical has no straight-through sample, and is
        # timed without XLA only.
        with_tfp = row["variant"] == "soft" and row["backend"] == "tensorflow"
        expected = {"tf.function", "tfp"} if with_tfp else {"tf.function"}
        assert set(row["peers"]) == expected
        assert row["rounds"] == 2
        assert row["milliseconds"] > 0
        for peer in row["peers"].values():
            low, high = peer["ratio_range"]
            assert 0 < low <= peer["ratio"] <= high < np.inf
    table = (tmp_path / "results.md").read_text()
    assert table.count("| tensorflow |") == (2 + 1) * 2
    assert table.count("| tensorflow, XLA |") == 2 * 2
