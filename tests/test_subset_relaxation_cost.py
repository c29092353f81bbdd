"""benchmarks/subset_relaxation_cost.py: a tiny run end to end, and its
summary recomputed from the raw times."""

import json
import statistics

import keras
import pytest

from tests import example_modules


@pytest.fixture(scope="module")
def benchmark():
    return example_modules.load("subset_relaxation_cost")


@pytest.mark.harness
@pytest.mark.slow
def test_a_tiny_run_times_every_op_and_writes_its_table(benchmark, tmp_path):
    backend = keras.backend.backend()
    arguments = ["--cases", "8x16:2", "--repeats", "2", "--min-ms", "0"]
    arguments += ["--backends", backend, "--output-dir", str(tmp_path)]
    assert benchmark.main(arguments) == 0

    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["backends"][backend]["rows"]
    # gumbel_top_k has no gradient, hence no backward row.
    assert len(rows) == 2 * len(benchmark.OPS) - 1
    baseline = {
        row["mode"]: row["ms"] for row in rows if row["op"] == "gumbel_softmax"
    }
    for row in rows:
        assert row["case"] == [8, 16, 2]
        assert row["calls_per_round"] == 1
        assert len(row["ms"]) == 2 and min(row["ms"]) > 0.0
        assert row["median_ms"] == statistics.median(row["ms"])
        ratios = [
            value / base
            for value, base in zip(
                row["ms"], baseline[row["mode"]], strict=True
            )
        ]
        assert row["ratio"] == pytest.approx(statistics.median(ratios))
    table = (tmp_path / "results.md").read_text().splitlines()[2:]
    assert [line.split(" | ")[3] for line in table] == list(benchmark.OPS)
    assert table[1].endswith("| n/a | n/a |")

    with pytest.raises(SystemExit):
        benchmark.main(arguments)


def test_cases_are_parsed_and_checked(benchmark):
    assert benchmark.parse_case("256x784:8") == (256, 784, 8)
    for text in ("256x784", "256x784:0", "4x3:5", "ax3:1"):
        with pytest.raises(benchmark.argparse.ArgumentTypeError):
            benchmark.parse_case(text)
