"""The hidden-softmax study: eleven hidden activations, seeds, verdicts.

Why softmax is the output activation of classifiers but almost never a
hidden one: one MLP trained with eleven hidden activations, and the usual
explanations checked against the numbers. The models and the measurements
are those of the tutorial `examples/hidden_softmax.py`; this harness adds
the seeds, the summaries, the verdicts and the files.

Softmax turns the last layer's scores into class probabilities, yet hidden
layers use ReLU, tanh or sigmoid. The reasons usually given are:

1. softmax hidden units are linearly dependent (they sum to 1), so the
   features are less independent and generalize worse;
2. raising one activation lowers the others, a competition that harms
   training;
3. the sum-to-one constraint reduces the layer's expressive power;
4. batch normalization does the job of normalizing hidden activity better.

This script trains the same classifier with each hidden activation, on the
same data, with the same optimizer, batch size and number of epochs, over
several seeds, and measures what each claim is about:

- test accuracy (claims 1 and 4), mean and standard deviation over seeds;
- the training cross-entropy per epoch (claims 2 and 3) and the number of
  epochs to reach a fixed test accuracy (claim 2);
- the mean absolute Pearson correlation between the units of the last hidden
  layer on the test set (claim 1);
- the effective rank of that representation (claim 3);
- the fraction of near-zero activations, and the seconds per epoch.

Each claim then gets a verdict derived from those numbers by the rules in
`claim_verdicts`, never written in advance: rerun on other data and the
verdicts may change.

Run it with the backend of your choice:

    python benchmarks/hidden_softmax_study.py  # digits, 3 seeds, a few minutes

    KERAS_BACKEND=jax python benchmarks/hidden_softmax_study.py \
        --dataset fashion_mnist --epochs 20 \
        --output-dir outputs/hidden_softmax_study_fashion

    python benchmarks/hidden_softmax_study.py --epochs 1 --seeds 1 \
        --variants relu softmax sparsemax  # a smoke test

It writes `results.md` (the table and the verdicts), `results.json` (every
number, per seed and per epoch) and `learning_curves.png` to the output
directory, and prints the table at the end.
"""

import argparse
import json
import math
import os
import sys
import time

import keras
import numpy as np

import keras_latent

# The tutorial and the data loader live in examples/, beside this folder.
EXAMPLES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"
)
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

import hidden_softmax  # noqa: E402
import image_datasets  # noqa: E402
import training_timer  # noqa: E402

NUM_HIDDEN_LAYERS = hidden_softmax.NUM_HIDDEN_LAYERS
LEARNING_RATE = hidden_softmax.LEARNING_RATE
NEAR_ZERO_THRESHOLD = hidden_softmax.NEAR_ZERO_THRESHOLD

"""
## The variants

The tutorial's variants (`examples/hidden_softmax.py`), its models and its
measurements of a hidden layer (`mean_absolute_correlation`,
`effective_rank`, `near_zero_fraction`), and four variants of the study's
own: batch normalization before a ReLU or a softmax (claim 4), and a
sparsity penalty on a softmax or a sigmoid layer.

The sparsity penalties differ by family. `KLSparsity(target=0.05)` pulls
the mean activation of each unit towards 0.05, which suits units in (0, 1)
that fire independently, such as sigmoid units. The mean activations of a
softmax over 256 units always average exactly 1/256, so for it the sparsity
penalty is the entropy of each example's distribution, `Entropy`.
"""

HIDDEN_UNITS = hidden_softmax.HIDDEN_UNITS
# log(256) = 5.5 nats at most per layer: a nudge of at most 0.11 beside a
# cross-entropy that starts at log(10) = 2.3.
ENTROPY_WEIGHT = 0.01
# A sigmoid layer starts near 0.5, where KL(0.05 || 0.5) over 256 units is
# 127 nats; this weight makes that 0.13 per layer.
KL_SPARSITY_TARGET = 0.05
KL_SPARSITY_WEIGHT = 1e-3

VARIANTS = {
    **hidden_softmax.VARIANTS,
    "relu_batchnorm": "Dense(256, no bias), BatchNormalization, relu",
    "softmax_batchnorm": (
        "Dense(256, no bias), BatchNormalization, GroupedSoftmax(groups=1)"
    ),
    "softmax_entropy": (
        "HiddenSoftmax(256, groups=1) with the activity regularizer "
        f"Entropy(weight={ENTROPY_WEIGHT})"
    ),
    "sigmoid_kl_sparsity": (
        "Dense(256, sigmoid) with the activity regularizer "
        f"KLSparsity(target={KL_SPARSITY_TARGET}, "
        f"weight={KL_SPARSITY_WEIGHT})"
    ),
}


def hidden_layer(variant, inputs, index):
    """One hidden layer of `variant`, the tutorial's or the study's own."""
    name = f"hidden_{index}"
    if variant == "sigmoid_kl_sparsity":
        regularizer = keras_latent.regularizers.KLSparsity(
            target=KL_SPARSITY_TARGET, weight=KL_SPARSITY_WEIGHT
        )
        return keras.layers.Dense(
            HIDDEN_UNITS, "sigmoid", activity_regularizer=regularizer, name=name
        )(inputs)
    if variant == "softmax_entropy":
        regularizer = keras_latent.regularizers.Entropy(
            weight=ENTROPY_WEIGHT, groups=1
        )
        return keras_latent.layers.HiddenSoftmax(
            HIDDEN_UNITS, groups=1, activity_regularizer=regularizer, name=name
        )(inputs)
    if variant in ("relu_batchnorm", "softmax_batchnorm"):
        # Ioffe and Szegedy's order: normalize the pre-activations, then
        # apply the nonlinearity; the normalization's shift is the bias.
        projected = keras.layers.Dense(
            HIDDEN_UNITS, use_bias=False, name=f"dense_{index}"
        )(inputs)
        normalized = keras.layers.BatchNormalization(
            name=f"batch_normalization_{index}"
        )(projected)
        if variant == "relu_batchnorm":
            return keras.layers.Activation("relu", name=name)(normalized)
        return keras_latent.layers.GroupedSoftmax(groups=1, name=name)(
            normalized
        )
    if variant in hidden_softmax.VARIANTS:
        return hidden_softmax.hidden_layer(variant, inputs, index)
    raise ValueError(
        "Invalid value received for argument `variant`. Expected one of "
        f"{tuple(VARIANTS)}. Received: variant={variant!r}"
    )


# The variants whose hidden units lie on a probability simplex.
SOFTMAX_FAMILY = (
    "softmax",
    "grouped_softmax",
    "sparsemax",
    "entmax15",
    "softmax_batchnorm",
    "softmax_entropy",
)

# Test accuracy that the "epochs to target" column counts towards, when
# --target-accuracy is not given: a level a plain ReLU MLP reaches within a
# few epochs on each dataset.
DEFAULT_TARGET_ACCURACY = {
    "digits": 0.95,
    "fashion_mnist": 0.85,
    "mnist": 0.97,
}

"""
## Training one variant with one seed

`fit` runs a pass over the test set after every epoch; its accuracy gives
the epochs-to-target figure and the learning curves. The test set only
watches: there is no early stopping and no model selection, and the
accuracy reported is the one after the last epoch. The seconds per epoch
count training only, not that test pass; compare them only between runs on
an otherwise idle machine.
"""


class EpochRecorder(training_timer.TrainingTimer):
    """Keeps each epoch's figures and prints the test accuracy on one line;
    its training seconds are `seconds`."""

    def __init__(self, label):
        super().__init__()
        self.label = label
        self.test_accuracy = []
        self.train_loss = []
        self.train_cross_entropy = []

    def on_train_begin(self, logs=None):
        print(f"{self.label}: test accuracy by epoch", end="", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.test_accuracy.append(float(logs["val_accuracy"]))
        self.train_loss.append(float(logs["loss"]))
        self.train_cross_entropy.append(float(logs["cross_entropy"]))
        print(f" {self.test_accuracy[-1]:.3f}", end="", flush=True)

    def on_train_end(self, logs=None):
        print(f" ({np.median(self.seconds):.2f} s/epoch)", flush=True)


def epochs_to_target(test_accuracy, target):
    """The first epoch (from 1) whose test accuracy is >= target, or None."""
    for epoch, accuracy in enumerate(test_accuracy, start=1):
        if accuracy >= target:
            return epoch
    return None


def train_one(variant, seed, data, args):
    """Trains `variant` from `seed`; returns that run's numbers.

    The data (and, for digits, its train/test split) are the same for all
    runs; the seed fixes the initial weights and the order of the batches.
    """
    recorder = EpochRecorder(f"{variant:<19} seed {seed}")
    model, _ = hidden_softmax.train_variant(
        variant,
        data,
        args.epochs,
        args.batch_size,
        seed,
        [recorder],
        hidden_layer=hidden_layer,
    )
    x_test = data[1][0]
    activations = hidden_softmax.last_hidden_activations(model, x_test)
    correlation, num_constant = hidden_softmax.mean_absolute_correlation(
        activations
    )
    return {
        "seed": seed,
        "test_accuracy": recorder.test_accuracy[-1],
        "test_accuracy_per_epoch": recorder.test_accuracy,
        "train_loss_per_epoch": recorder.train_loss,
        "train_cross_entropy_per_epoch": recorder.train_cross_entropy,
        "epochs_to_target": epochs_to_target(
            recorder.test_accuracy, args.target_accuracy
        ),
        "seconds_per_epoch": recorder.seconds,
        "mean_abs_correlation": correlation,
        "constant_units": num_constant,
        "effective_rank": hidden_softmax.effective_rank(activations),
        "near_zero_fraction": hidden_softmax.near_zero_fraction(activations),
    }


"""
## From runs to a summary per variant

Means and standard deviations are over seeds; the standard deviation is the
sample one (`ddof=1`), and 0 for a single seed. A run that never reaches the
target accuracy counts as needing one epoch more than the budget when the
epochs to target are compared; the table shows the mean over the runs that
reached it, and how many did. The seconds per epoch are the median over all
epochs of all seeds, which leaves out the first epoch's one-off compilation
once there are a few epochs.
"""


def mean_and_std(values):
    values = np.asarray(values, dtype="float64")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


def summarize(runs, epochs):
    """The per-seed lists and the means the table and the claims use."""
    reached = [
        run["epochs_to_target"]
        for run in runs
        if run["epochs_to_target"] is not None
    ]
    per_seed = {
        "test_accuracy": [run["test_accuracy"] for run in runs],
        "final_train_cross_entropy": [
            run["train_cross_entropy_per_epoch"][-1] for run in runs
        ],
        "mean_train_cross_entropy": [
            float(np.mean(run["train_cross_entropy_per_epoch"])) for run in runs
        ],
        "epochs_to_target_or_budget_plus_one": [
            epochs + 1
            if run["epochs_to_target"] is None
            else run["epochs_to_target"]
            for run in runs
        ],
        "mean_abs_correlation": [run["mean_abs_correlation"] for run in runs],
        "effective_rank": [run["effective_rank"] for run in runs],
        "near_zero_fraction": [run["near_zero_fraction"] for run in runs],
    }
    summary = {"per_seed": per_seed}
    for name, values in per_seed.items():
        summary[name] = mean_and_std(values)
    summary["runs_reaching_target"] = len(reached)
    summary["mean_epochs_to_target_when_reached"] = (
        float(np.mean(reached)) if reached else None
    )
    summary["seconds_per_epoch"] = float(
        np.median([s for run in runs for s in run["seconds_per_epoch"]])
    )
    summary["train_cross_entropy_curve"] = np.mean(
        [run["train_cross_entropy_per_epoch"] for run in runs], axis=0
    ).tolist()
    summary["test_accuracy_curve"] = np.mean(
        [run["test_accuracy_per_epoch"] for run in runs], axis=0
    ).tolist()
    return summary


"""
## The claims, judged by stated rules

Each claim becomes a few conditions, each comparing one measured quantity
between two variants. A difference counts only when it exceeds the noise
margin `sqrt(std_a**2 + std_b**2)`, the spread of the difference between one
run of each variant; within it the condition is "within noise". With a
single seed the margin is 0 and every difference counts, so the verdicts
are then only indicative.

A claim is *supported* when every one of its conditions holds beyond the
margin, *contradicted* when at least one is reversed beyond the margin, and
*not shown* otherwise. The conditions, with ReLU as the usual hidden
activation to compare against:

1. Linear dependence hurts: softmax's mean absolute correlation is higher
   than ReLU's, and its test accuracy is lower.
2. Competition harms training: softmax needs more epochs than ReLU to reach
   the target accuracy, and its training cross-entropy averaged over the
   epochs (the area under its learning curve) is higher.
3. Less expressive power: softmax's effective rank is lower than ReLU's,
   and its final training cross-entropy (how well it fits the training set)
   is higher.
4. Batch normalization does better: ReLU with batch normalization has a
   higher test accuracy than every softmax-family variant that was run.

A claim whose variants were not all run is "not measured".

The rules test each claim as it is stated; they cannot tell its cause from
another with the same effect. One such cause is scale: at initialization a
softmax over 256 units outputs values near 1/256, so the next layer sees
inputs far smaller than a ReLU layer's and learns slowly whatever the
competition between units. Read the rows that change one thing at a time
beside the verdicts: `grouped_softmax` (competition within 16 units,
values near 1/16), `softmax_batchnorm` (the same softmax on normalized
pre-activations), and `sparsemax` and `entmax15` (the same constraint with
exact zeros).
"""


def verdict_from_states(
    states, words=("supported", "contradicted", "not shown")
):
    """One claim's verdict from the states of its comparisons (`compare`).

    `words[0]` when every comparison holds beyond the noise margin,
    `words[1]` when one is reversed beyond it, `words[2]` otherwise.
    """
    if all(state == "holds" for state in states):
        return words[0]
    if any(state == "reversed" for state in states):
        return words[1]
    return words[2]


def compare(summaries, quantity, variant, other, direction):
    """Whether `variant`'s `quantity` is `direction` than `other`'s.

    `direction` is "higher" or "lower". Returns `(state, sentence)`, the
    state "holds", "reversed", "within noise", or "undefined" where a
    measurement is NaN (a layer with fewer than two varying units).
    """
    mean, std = summaries[variant][quantity]
    other_mean, other_std = summaries[other][quantity]
    margin = math.sqrt(std**2 + other_std**2)
    difference = mean - other_mean
    sign = 1.0 if direction == "higher" else -1.0
    if math.isnan(difference) or math.isnan(margin):
        state = "undefined"
    elif sign * difference > margin:
        state = "holds"
    elif -sign * difference > margin:
        state = "reversed"
    else:
        state = "within noise"
    sentence = (
        f"{quantity} {variant} {mean:.4g} vs {other} {other_mean:.4g} "
        f"(expected {direction}; difference {difference:+.3g}, "
        f"margin {margin:.3g}: {state})"
    )
    return state, sentence


CLAIMS = (
    (
        "1. Softmax units are linearly dependent, hurting independence of "
        "features and generalization",
        (
            ("mean_abs_correlation", "softmax", "relu", "higher"),
            ("test_accuracy", "softmax", "relu", "lower"),
        ),
    ),
    (
        "2. Lowering some activations raises others, which harms training",
        (
            (
                "epochs_to_target_or_budget_plus_one",
                "softmax",
                "relu",
                "higher",
            ),
            ("mean_train_cross_entropy", "softmax", "relu", "higher"),
        ),
    ),
    (
        "3. The sum-to-one constraint reduces expressive power",
        (
            ("effective_rank", "softmax", "relu", "lower"),
            ("final_train_cross_entropy", "softmax", "relu", "higher"),
        ),
    ),
)


def claim_verdicts(summaries):
    """One `(claim, verdict, evidence)` triple per claim, from the numbers.

    `summaries` maps each variant that was run to its summary, in which
    every quantity named in the conditions is a `(mean, std)` pair.
    """
    claims = list(CLAIMS)
    softmax_family_run = [v for v in SOFTMAX_FAMILY if v in summaries]
    claims.append(
        (
            "4. Batch normalization does better",
            tuple(
                ("test_accuracy", "relu_batchnorm", variant, "higher")
                for variant in (softmax_family_run or ["softmax"])
            ),
        )
    )
    verdicts = []
    for claim, conditions in claims:
        needed = sorted({v for c in conditions for v in c[1:3]})
        missing = [variant for variant in needed if variant not in summaries]
        if missing:
            verdicts.append(
                (claim, "not measured", f"needs the variants {missing}")
            )
            continue
        states, sentences = zip(
            *(compare(summaries, *condition) for condition in conditions),
            strict=True,
        )
        verdicts.append(
            (claim, verdict_from_states(states), "; ".join(sentences))
        )
    return verdicts


"""
## Writing the results
"""


def format_mean_std(pair, digits=3):
    mean, std = pair
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def results_table(summaries, target_accuracy):
    header = (
        "| variant | test accuracy | final train cross-entropy | "
        f"epochs to {target_accuracy:.0%} | s/epoch | mean abs correlation "
        "| effective rank | near-zero fraction |"
    )
    lines = [header, "|" + "---|" * 8]
    for variant, summary in summaries.items():
        reached = summary["runs_reaching_target"]
        num_seeds = len(summary["per_seed"]["test_accuracy"])
        if reached:
            epochs = (
                f"{summary['mean_epochs_to_target_when_reached']:.1f} "
                f"({reached}/{num_seeds})"
            )
        else:
            epochs = "not reached"
        cells = [
            variant,
            format_mean_std(summary["test_accuracy"]),
            format_mean_std(summary["final_train_cross_entropy"]),
            epochs,
            f"{summary['seconds_per_epoch']:.3f}",
            format_mean_std(summary["mean_abs_correlation"]),
            format_mean_std(summary["effective_rank"], digits=1),
            format_mean_std(summary["near_zero_fraction"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(path, table, verdicts, config):
    lines = [
        "# Softmax as a hidden activation",
        "",
        f"Dataset `{config['dataset']}`, backend `{config['backend']}`, "
        f"{config['epochs']} epochs, batch size {config['batch_size']}, "
        f"Adam {LEARNING_RATE:g}, seeds {config['seeds']}. Means ± sample "
        "standard deviations over seeds; the hidden-layer measurements are "
        "on the test set, last hidden layer.",
        "",
        table,
        "",
        "## Variants",
        "",
        *(f"- `{v}`: {VARIANTS[v]}" for v in config["variants"]),
        "",
        "## Claims",
        "",
        "Verdicts follow the rules in `claim_verdicts` of "
        "`benchmarks/hidden_softmax_study.py`: supported when every condition "
        "holds beyond the noise margin sqrt(std_a² + std_b²), contradicted "
        "when one is reversed beyond it, not shown otherwise.",
        "",
        *(
            f"- **{claim}**: {verdict}. {evidence}."
            for claim, verdict, evidence in verdicts
        ),
    ]
    if len(config["seeds"]) < 2:
        lines += [
            "",
            "One seed only: the noise margins are 0, so these verdicts are "
            "indicative at best.",
        ]
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")


def without_nan(value):
    """`value` with every float NaN replaced by None, for strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(item) for item in value]
    return value


def plot_learning_curves(path, summaries, dataset):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib import ticker

    figure, (loss_axis, accuracy_axis) = pyplot.subplots(
        1, 2, figsize=(12, 4.5)
    )
    colors = pyplot.get_cmap("tab10").colors
    # Solid lines for the usual activations, dashed for the softmax family;
    # the colours are counted within each family so that none repeats.
    counts = {True: 0, False: 0}
    for variant, summary in summaries.items():
        in_family = variant in SOFTMAX_FAMILY
        color = colors[counts[in_family] % len(colors)]
        counts[in_family] += 1
        epochs = np.arange(1, len(summary["test_accuracy_curve"]) + 1)
        style = {
            "color": color,
            "linestyle": "--" if in_family else "-",
            "marker": "o" if len(epochs) == 1 else None,
            "label": variant,
        }
        loss_axis.plot(epochs, summary["train_cross_entropy_curve"], **style)
        accuracy_axis.plot(epochs, summary["test_accuracy_curve"], **style)
    loss_axis.set_yscale("log")
    loss_axis.set_title("Training cross-entropy (mean over seeds)")
    accuracy_axis.set_title("Test accuracy (mean over seeds)")
    for axis in (loss_axis, accuracy_axis):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    accuracy_axis.legend(
        fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5)
    )
    figure.suptitle(f"Hidden activations on {dataset} (dashed: softmax family)")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)


"""
## Command line
"""


def study_parser(variants, output_dir, description=__doc__):
    """The arguments every study of the hidden-softmax task takes."""
    parser = argparse.ArgumentParser(description=description.split("\n")[0])
    parser.add_argument(
        "--dataset", default="digits", choices=image_datasets.DATASET_NAMES
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(variants),
        choices=list(variants),
        metavar="VARIANT",
        help=f"a subset of {', '.join(variants)} (default: all)",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--seeds", type=int, default=3, help="runs per variant, seeds 0..N-1"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output-dir", default=output_dir)
    return parser


def check_study_arguments(parser, args, variants):
    """Checks the counts; keeps the order of `variants` and drops repeats."""
    for name in ("epochs", "seeds", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.variants = [v for v in variants if v in args.variants]
    return args


def parse_arguments(argv):
    parser = study_parser(VARIANTS, "outputs/hidden_softmax_study")
    parser.add_argument(
        "--target-accuracy",
        type=float,
        default=None,
        help="test accuracy for the epochs-to-target column (default: "
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_TARGET_ACCURACY.items())
        + ")",
    )
    args = check_study_arguments(parser, parser.parse_args(argv), VARIANTS)
    if args.target_accuracy is None:
        args.target_accuracy = DEFAULT_TARGET_ACCURACY[args.dataset]
    if not 0.0 < args.target_accuracy <= 1.0:
        parser.error("--target-accuracy must lie in (0, 1]")
    return args


def main(argv=None):
    args = parse_arguments(argv)
    try:
        data = image_datasets.load_images(args.dataset, binarize=False)
    except image_datasets.DatasetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    (x_train, _), (x_test, _) = data
    seeds = list(range(args.seeds))
    print(
        f"Hidden-activation study on {args.dataset} ({len(x_train)} training "
        f"and {len(x_test)} test images), {len(args.variants)} variants x "
        f"{len(seeds)} seeds x {args.epochs} epochs, backend "
        f"{keras.backend.backend()}"
    )

    start = time.perf_counter()
    runs = {
        variant: [train_one(variant, seed, data, args) for seed in seeds]
        for variant in args.variants
    }
    total_seconds = time.perf_counter() - start
    summaries = {
        variant: summarize(variant_runs, args.epochs)
        for variant, variant_runs in runs.items()
    }
    verdicts = claim_verdicts(summaries)

    config = {
        "dataset": args.dataset,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "keras_latent_version": keras_latent.__version__,
        "variants": args.variants,
        "seeds": seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": LEARNING_RATE,
        "hidden_units": hidden_softmax.HIDDEN_UNITS,
        "hidden_layers": NUM_HIDDEN_LAYERS,
        "target_accuracy": args.target_accuracy,
        "near_zero_threshold": NEAR_ZERO_THRESHOLD,
        "total_seconds": total_seconds,
    }
    table = results_table(summaries, args.target_accuracy)
    write_markdown(
        os.path.join(args.output_dir, "results.md"), table, verdicts, config
    )
    results = {
        "config": config,
        "variants": {
            variant: {
                "description": VARIANTS[variant],
                "summary": summaries[variant],
                "runs": runs[variant],
            }
            for variant in args.variants
        },
        "claims": [
            {"claim": claim, "verdict": verdict, "evidence": evidence}
            for claim, verdict, evidence in verdicts
        ],
    }
    with open(os.path.join(args.output_dir, "results.json"), "w") as file:
        json.dump(without_nan(results), file, indent=2)
    plot_learning_curves(
        os.path.join(args.output_dir, "learning_curves.png"),
        summaries,
        args.dataset,
    )

    print()
    print(table)
    print()
    for claim, verdict, _ in verdicts:
        print(f"{claim}: {verdict}")
    print(
        f"\n{len(args.variants) * len(seeds)} runs in {total_seconds:.0f} s. "
        f"Wrote {args.output_dir}/"
        "{results.md, results.json, learning_curves.png}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
