"""The hidden-softmax study and its tutorial: measures, runs, verdicts.

The study harness is `benchmarks/hidden_softmax_study.py`; the models and
the measures of a hidden layer are those of `examples/hidden_softmax.py`.
"""

import json
import math
import re

import keras
import numpy as np
import pytest

from tests import example_modules


def load_study():
    return example_modules.load("hidden_softmax_study")


@pytest.fixture(scope="module")
def study():
    return load_study()


@pytest.fixture(scope="module")
def tutorial():
    return example_modules.load("hidden_softmax")


"""
## End to end
"""

TINY_VARIANTS = ("relu", "softmax", "sparsemax", "relu_batchnorm")


@pytest.fixture(scope="module")
def tiny_study_dir(study, tmp_path_factory):
    """The output of one epoch of one seed of `TINY_VARIANTS`."""
    output_dir = tmp_path_factory.mktemp("hidden_softmax_study")
    status = study.main(
        [
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--variants",
            *TINY_VARIANTS,
            "--output-dir",
            str(output_dir),
        ]
    )
    assert status == 0
    return output_dir


@pytest.mark.harness
@pytest.mark.slow
def test_a_tiny_study_writes_a_row_per_variant_with_valid_numbers(
    tiny_study_dir,
):
    for name in ("results.md", "results.json", "learning_curves.png"):
        assert (tiny_study_dir / name).stat().st_size > 0

    results = json.loads((tiny_study_dir / "results.json").read_text())
    assert results["config"]["backend"] == keras.backend.backend()
    assert results["config"]["dataset"] == "digits"
    assert list(results["variants"]) == list(TINY_VARIANTS)
    for variant, entry in results["variants"].items():
        (run,) = entry["runs"]
        assert 0.0 <= run["test_accuracy"] <= 1.0, variant
        assert len(run["train_cross_entropy_per_epoch"]) == 1
        assert run["train_cross_entropy_per_epoch"][0] > 0.0
        assert run["seconds_per_epoch"][0] > 0.0
        assert 0.0 <= run["mean_abs_correlation"] <= 1.0, variant
        assert 1.0 <= run["effective_rank"] <= 256.0, variant
        assert 0.0 <= run["near_zero_fraction"] <= 1.0, variant
        assert 0 <= run["constant_units"] <= 256
    assert len(results["claims"]) == 4

    markdown = (tiny_study_dir / "results.md").read_text()
    rows = [
        line
        for line in markdown.splitlines()
        if line.startswith("| ") and not line.startswith("| variant")
    ]
    assert [row.split("|")[1].strip() for row in rows] == list(TINY_VARIANTS)
    # The fourth claim compares every softmax-family variant that was run
    # with relu_batchnorm, so all four claims can be judged here.
    for claim in results["claims"]:
        assert claim["verdict"] in ("supported", "contradicted", "not shown")
        assert f"**{claim['claim']}**: {claim['verdict']}." in markdown


@pytest.mark.harness
@pytest.mark.slow
def test_the_same_seed_gives_the_same_run(study, tiny_study_dir):
    results = json.loads((tiny_study_dir / "results.json").read_text())
    (recorded,) = results["variants"]["softmax"]["runs"]
    data = study.image_datasets.load_images("digits", binarize=False)
    arguments = study.parse_arguments(["--epochs", "1"])
    rerun = study.train_one("softmax", 0, data, arguments)
    for quantity in (
        "test_accuracy",
        "train_cross_entropy_per_epoch",
        "effective_rank",
    ):
        assert rerun[quantity] == recorded[quantity], quantity


def test_an_unknown_variant_is_rejected(study, capsys):
    with pytest.raises(SystemExit):
        study.main(["--variants", "relu", "swish"])
    assert "invalid choice: 'swish'" in capsys.readouterr().err


def test_a_missing_dataset_is_reported(study, monkeypatch, capsys):
    def unavailable(name, **kwargs):
        raise study.image_datasets.DatasetUnavailableError("install it")

    monkeypatch.setattr(study.image_datasets, "load_images", unavailable)
    assert study.main(["--dataset", "fashion_mnist"]) == 2
    assert "error: install it" in capsys.readouterr().err


"""
## The measurements, against hand-computed cases
"""


def test_perfectly_correlated_units_have_mean_absolute_correlation_one(
    tutorial,
):
    base = np.array([0.0, 1.0, 3.0, 7.0])
    # An increasing and a decreasing linear function of the same unit.
    activations = np.stack([base, 2.0 * base + 1.0, -0.5 * base], axis=1)
    correlation, num_constant = tutorial.mean_absolute_correlation(activations)
    assert correlation == pytest.approx(1.0)
    assert num_constant == 0


def test_mean_absolute_correlation_of_a_hand_computed_pair(tutorial):
    # Centred: a = (-1.5, -0.5, 0.5, 1.5), b = (-1.5, 0.5, -0.5, 1.5);
    # a.b = 4 and |a|^2 = |b|^2 = 5, so the correlation is 4 / 5. The
    # third pair, with c, is orthogonal to both once centred: 0.
    a = [1.0, 2.0, 3.0, 4.0]
    b = [1.0, 3.0, 2.0, 4.0]
    c = [1.0, -1.0, -1.0, 1.0]
    correlation, _ = tutorial.mean_absolute_correlation(np.array([a, b, c]).T)
    assert correlation == pytest.approx((0.8 + 0.0 + 0.0) / 3)


def test_constant_units_are_left_out_of_the_correlation(tutorial):
    a = [1.0, 2.0, 3.0, 4.0]
    b = [1.0, 3.0, 2.0, 4.0]
    dead = [0.0, 0.0, 0.0, 0.0]
    correlation, num_constant = tutorial.mean_absolute_correlation(
        np.array([a, dead, b, dead]).T
    )
    assert correlation == pytest.approx(0.8)
    assert num_constant == 2
    single, _ = tutorial.mean_absolute_correlation(np.array([a, dead]).T)
    assert math.isnan(single)


@pytest.mark.parametrize("dimensions", [1, 3, 8])
def test_an_identity_like_representation_has_full_effective_rank(
    tutorial, dimensions
):
    # The rows of I and -I: every unit has mean 0, and the matrix has
    # `dimensions` equal singular values, sqrt(2) each.
    identity = np.eye(dimensions)
    activations = np.concatenate([identity, -identity])
    assert tutorial.effective_rank(activations) == pytest.approx(dimensions)


def test_effective_rank_ignores_a_constant_offset(tutorial):
    # The rows of a softmax-like representation: the same vector plus
    # multiples of one direction. Centred, a rank-one matrix.
    direction = np.array([1.0, -1.0, 0.0, 0.0])
    offset = np.full(4, 0.25)
    activations = offset + np.outer([-1.0, 0.0, 0.5, 2.0], direction)
    assert tutorial.effective_rank(activations) == pytest.approx(1.0)


def test_effective_rank_of_unequal_singular_values(tutorial):
    # Centred already; singular values 3 sqrt(2) and sqrt(2), so the
    # weights are 3/4 and 1/4.
    activations = np.array([[3.0, 0.0], [0.0, 1.0], [-3.0, 0.0], [0.0, -1.0]])
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert tutorial.effective_rank(activations) == pytest.approx(
        math.exp(entropy)
    )


def test_near_zero_fraction_counts_small_magnitudes_of_either_sign(tutorial):
    activations = np.array([[0.0, 5e-4, -5e-4, 1e-3], [0.5, -2.0, 1e-2, 0.0]])
    # 0, 5e-4, -5e-4 and 0 lie below 1e-3; 1e-3 itself does not.
    assert tutorial.near_zero_fraction(activations) == pytest.approx(4 / 8)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_activation_makes_every_measure_nan(tutorial, value):
    """A diverged layer is not measured: its NaN unit counted as a
    constant one, near-zero fraction 0.0 and an SVD error before."""
    activations = np.random.default_rng(0).random((20, 4))
    activations[3, 1] = value
    correlation, num_constant = tutorial.mean_absolute_correlation(activations)
    assert math.isnan(correlation)
    assert num_constant == 0
    assert math.isnan(tutorial.effective_rank(activations))
    assert math.isnan(tutorial.near_zero_fraction(activations))


def test_epochs_to_target_is_the_first_epoch_at_or_above_it(study):
    assert study.epochs_to_target([0.5, 0.9, 0.8, 0.95], 0.9) == 2
    assert study.epochs_to_target([0.5, 0.6], 0.9) is None


"""
## The verdicts follow the numbers
"""


def crafted_summaries(**overrides):
    """Summaries in which softmax is no different from relu, within noise.

    `overrides` maps "variant__quantity" to a `(mean, std)` pair.
    """
    quantities = (
        "test_accuracy",
        "mean_abs_correlation",
        "epochs_to_target_or_budget_plus_one",
        "mean_train_cross_entropy",
        "final_train_cross_entropy",
        "effective_rank",
    )
    summaries = {
        variant: {quantity: (0.5, 0.01) for quantity in quantities}
        for variant in ("relu", "softmax", "grouped_softmax", "relu_batchnorm")
    }
    for key, pair in overrides.items():
        variant, quantity = key.split("__")
        summaries[variant][quantity] = pair
    return summaries


def verdict_of(study, summaries, claim_number):
    claim, verdict, _ = study.claim_verdicts(summaries)[claim_number - 1]
    assert claim.startswith(f"{claim_number}.")
    return verdict


def test_claim_one_is_supported_only_when_both_numbers_say_so(study):
    assert verdict_of(study, crafted_summaries(), 1) == "not shown"
    dependent_and_worse = crafted_summaries(
        softmax__mean_abs_correlation=(0.6, 0.01),
        softmax__test_accuracy=(0.4, 0.01),
    )
    assert verdict_of(study, dependent_and_worse, 1) == "supported"
    dependent_but_better = crafted_summaries(
        softmax__mean_abs_correlation=(0.6, 0.01),
        softmax__test_accuracy=(0.6, 0.01),
    )
    assert verdict_of(study, dependent_but_better, 1) == "contradicted"
    # The same differences inside a wider spread are only noise.
    noisy = crafted_summaries(
        softmax__mean_abs_correlation=(0.6, 0.2),
        softmax__test_accuracy=(0.4, 0.2),
    )
    assert verdict_of(study, noisy, 1) == "not shown"


def test_claims_two_and_three_follow_training_speed_rank_and_fit(study):
    slower = crafted_summaries(
        softmax__epochs_to_target_or_budget_plus_one=(9.0, 1.0),
        softmax__mean_train_cross_entropy=(0.9, 0.01),
    )
    assert verdict_of(study, slower, 2) == "supported"
    faster = crafted_summaries(
        softmax__epochs_to_target_or_budget_plus_one=(0.1, 0.0),
    )
    assert verdict_of(study, faster, 2) == "contradicted"

    narrower = crafted_summaries(
        softmax__effective_rank=(0.1, 0.01),
        softmax__final_train_cross_entropy=(0.9, 0.01),
    )
    assert verdict_of(study, narrower, 3) == "supported"
    wider = crafted_summaries(softmax__effective_rank=(0.9, 0.01))
    assert verdict_of(study, wider, 3) == "contradicted"


def test_claim_four_compares_batch_norm_with_every_softmax_variant(study):
    better_than_all = crafted_summaries(
        relu_batchnorm__test_accuracy=(0.9, 0.01)
    )
    assert verdict_of(study, better_than_all, 4) == "supported"
    one_softmax_variant_wins = crafted_summaries(
        relu_batchnorm__test_accuracy=(0.9, 0.01),
        grouped_softmax__test_accuracy=(0.95, 0.01),
    )
    assert verdict_of(study, one_softmax_variant_wins, 4) == "contradicted"


def test_a_claim_whose_variants_were_not_run_is_not_measured(study):
    summaries = crafted_summaries()
    del summaries["relu_batchnorm"]
    verdicts = study.claim_verdicts(summaries)
    assert [verdict for _, verdict, _ in verdicts] == [
        "not shown",
        "not shown",
        "not shown",
        "not measured",
    ]
    assert re.search("relu_batchnorm", verdicts[3][2])
