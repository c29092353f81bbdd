"""benchmarks/vae_step_profile.py: a tiny run end to end, and its
differences and ratios recomputed from the raw times."""

import json
import statistics

import pytest

from tests import example_modules


@pytest.fixture(scope="module")
def benchmark():
    return example_modules.load("vae_step_profile")


@pytest.mark.harness
@pytest.mark.slow
def test_a_tiny_run_times_every_rung_and_derives_the_costs(
    benchmark, tmp_path, capsys
):
    # The torch worker is the only one with every rung (plain PyTorch in
    # the same process) and the quickest to start: nothing compiles.
    output_json = tmp_path / "results.json"
    arguments = ["--backends", "torch", "--rounds", "2", "--steps", "1"]
    assert benchmark.main([*arguments, "--output-json", str(output_json)]) == 0
    printed = capsys.readouterr().out

    result = json.loads(output_json.read_text())["backends"]["torch"]
    times = result["ms_per_step"]
    # Keras's PyTorch trainer takes one step per call: no second fit.
    expected = set(benchmark.CANDIDATES) - {"fit_one_step_per_call"}
    assert set(times) == expected
    assert result["steps_per_execution"] == 1
    for name, values in times.items():
        assert len(values) == 2 and min(values) > 0.0, name
        summary = result["candidates"][name]
        assert summary["median"] == statistics.median(values)
        assert summary["range"] == [min(values), max(values)]

    def per_round(operation, first, second):
        return [
            operation(a, b)
            for a, b in zip(times[first], times[second], strict=True)
        ]

    # Without a one-step-per-call fit, the data path is fit's own.
    expected_differences = {
        "data_path_and_fit_loop": ("fit", "train_on_batch"),
        "trainer_overhead": ("train_on_batch", "custom_step"),
        "latent_layer_extra": ("categorical_latent", "gumbel_softmax_sampling"),
        "over_plain_keras": ("fit", "fit_plain_keras"),
        "fit_over_plain_pytorch": ("fit", "plain_pytorch_epoch"),
        "compute_over_plain_pytorch": ("custom_step", "plain_pytorch_step"),
        "optimizer_update": ("custom_step", "custom_gradients"),
        "plain_pytorch_optimizer_update": (
            "plain_pytorch_step",
            "plain_pytorch_gradients",
        ),
        "gradients_over_plain_pytorch": (
            "custom_gradients",
            "plain_pytorch_gradients",
        ),
    }
    differences = result["differences"]
    assert set(differences) == {*expected_differences, "model_compute"}
    assert differences["model_compute"]["per_round"] == times["custom_step"]
    for name, (first, second) in expected_differences.items():
        values = per_round(float.__sub__, first, second)
        assert differences[name]["per_round"] == pytest.approx(values)
        assert differences[name]["median"] == pytest.approx(
            statistics.median(values)
        )
    for name, (_, first, second) in benchmark.RATIOS.items():
        values = per_round(float.__truediv__, first, second)
        assert result["ratios"][name]["median"] == pytest.approx(
            statistics.median(values)
        )

    # The printed table shows the figures of the JSON.
    rows = dict(
        line.strip("|").split(" | ")
        for line in printed.splitlines()
        if line.startswith("| ") and " | " in line
    )
    for name, (label, _, _) in benchmark.DIFFERENCES.items():
        if name in differences:
            assert rows[f" *{label}*"].startswith(
                f"{differences[name]['median']:.3f} ("
            )
    label = benchmark.RATIOS["fit_to_plain_pytorch"][0]
    assert rows[f" **{label}**"].startswith(
        f"{result['ratios']['fit_to_plain_pytorch']['median']:.2f} ("
    )


def test_quick_mode_and_bad_sizes(benchmark):
    args = benchmark.parse_arguments(["--quick"])
    assert (args.rounds, args.steps) == (1, 2)
    for flag in ("--rounds", "--steps"):
        with pytest.raises(SystemExit):
            benchmark.parse_arguments([flag, "0"])
