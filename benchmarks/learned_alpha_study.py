"""The learned-alpha study: which entmax alpha each group of units learns.

`HiddenSoftmax(normalizer="entmax", alpha="learned")` gives each group of
hidden units its own alpha, `1 + sigmoid(a)` of a trainable logit `a`
initialized at 0 (alpha 1.5): each group learns how sparse to be, between
the softmax (alpha 1) and sparsemax (alpha 2), as the heads of the
adaptively sparse Transformer do (Correia et al. 2019). This script trains
the MLP of the hidden-softmax tutorial (`examples/hidden_softmax.py`: two
hidden layers of 256 units, here in 16 groups of 16) with a learned alpha,
next to the same layers at a fixed softmax, 1.5-entmax and sparsemax, over
a few seeds, and reports:

- the learned alphas of each hidden layer: mean, min and max over its
  groups and the seeds;
- the test accuracy after the last epoch, mean and standard deviation over
  the seeds;
- the mean support size: the number of units of a group that are not
  exactly 0, averaged over the groups of the last hidden layer and the
  test images (16 for a softmax, unless an output underflows).

    python benchmarks/learned_alpha_study.py  # digits, 3 seeds, 20 epochs

    python benchmarks/learned_alpha_study.py --epochs 1 --seeds 1 \
        --variants softmax entmax_learned  # a smoke test

It writes `results.json` (every number, per seed) and `results.md` (the
table) to the output directory, and prints the table.
"""

import json
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
import hidden_softmax_study  # noqa: E402
import image_datasets  # noqa: E402

GROUPS = hidden_softmax.GROUPS
HIDDEN_UNITS = hidden_softmax.HIDDEN_UNITS
HIDDEN_LAYERS = [
    f"hidden_{index}"
    for index in range(1, hidden_softmax.NUM_HIDDEN_LAYERS + 1)
]

# Every variant normalizes the same 16 groups of 16 units.
VARIANTS = {
    "softmax": {"normalizer": "softmax"},
    "entmax15": {"normalizer": "entmax15"},
    "sparsemax": {"normalizer": "sparsemax"},
    "entmax_learned": {"normalizer": "entmax", "alpha": "learned"},
}


def hidden_layer(variant, inputs, index):
    """One `HiddenSoftmax` layer of `variant`, in `GROUPS` groups."""
    return keras_latent.layers.HiddenSoftmax(
        HIDDEN_UNITS, groups=GROUPS, name=f"hidden_{index}", **VARIANTS[variant]
    )(inputs)


def mean_support_size(activations, groups=GROUPS):
    """The mean number of entries of a group that are not exactly 0."""
    grouped = activations.reshape(len(activations), groups, -1)
    return float(np.mean(np.count_nonzero(grouped, axis=-1)))


def train_one(variant, seed, data, args):
    """Trains `variant` from `seed`; returns that run's numbers."""
    start = time.perf_counter()
    model, history = hidden_softmax.train_variant(
        variant,
        data,
        args.epochs,
        args.batch_size,
        seed,
        hidden_layer=hidden_layer,
    )
    activations = hidden_softmax.last_hidden_activations(model, data[1][0])
    run = {
        "seed": seed,
        "test_accuracy": float(history["val_accuracy"][-1]),
        "mean_support_size": mean_support_size(activations),
        "seconds": time.perf_counter() - start,
        "alphas": {},
    }
    for name in HIDDEN_LAYERS:
        alphas = model.get_layer(name).alphas
        if alphas is not None:
            run["alphas"][name] = keras.ops.convert_to_numpy(alphas).tolist()
    print(
        f"{variant:<15} seed {seed}: test accuracy {run['test_accuracy']:.3f}"
        f", support {run['mean_support_size']:.1f} of {HIDDEN_UNITS // GROUPS}"
        f" ({run['seconds']:.0f} s)",
        flush=True,
    )
    return run


def summarize(runs):
    """Means and spreads over the seeds (sample std, 0 for one seed); the
    alphas of each layer pooled over its groups and the seeds."""
    accuracy = np.array([run["test_accuracy"] for run in runs])
    summary = {
        "test_accuracy_mean": float(np.mean(accuracy)),
        "test_accuracy_std": (
            float(np.std(accuracy, ddof=1)) if len(runs) > 1 else 0.0
        ),
        "mean_support_size": float(
            np.mean([run["mean_support_size"] for run in runs])
        ),
        "alphas": {},
    }
    for name in runs[0]["alphas"]:
        pooled = np.concatenate([run["alphas"][name] for run in runs])
        summary["alphas"][name] = {
            "mean": float(np.mean(pooled)),
            "min": float(np.min(pooled)),
            "max": float(np.max(pooled)),
        }
    return summary


def results_table(summaries):
    """A Markdown table: one row per variant."""
    alpha_columns = " | ".join(
        f"alpha {name}: mean [min, max]" for name in HIDDEN_LAYERS
    )
    lines = [
        f"| variant | test accuracy | mean support (of "
        f"{HIDDEN_UNITS // GROUPS}) | {alpha_columns} |",
        "|---|---|---|" + "---|" * len(HIDDEN_LAYERS),
    ]
    fixed_alphas = {"softmax": 1.0, "entmax15": 1.5, "sparsemax": 2.0}
    for variant, summary in summaries.items():
        cells = []
        for name in HIDDEN_LAYERS:
            if name in summary["alphas"]:
                alphas = summary["alphas"][name]
                cells.append(
                    f"{alphas['mean']:.3f} [{alphas['min']:.3f}, "
                    f"{alphas['max']:.3f}]"
                )
            else:
                cells.append(f"{fixed_alphas[variant]:g} (fixed)")
        lines.append(
            f"| {variant} | {summary['test_accuracy_mean']:.3f} ± "
            f"{summary['test_accuracy_std']:.3f} | "
            f"{summary['mean_support_size']:.2f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def parse_arguments(argv):
    parser = hidden_softmax_study.study_parser(
        VARIANTS, "outputs/learned_alpha_study", __doc__
    )
    args = parser.parse_args(argv)
    return hidden_softmax_study.check_study_arguments(parser, args, VARIANTS)


def main(argv=None):
    args = parse_arguments(argv)
    try:
        data = image_datasets.load_images(args.dataset, binarize=False)
    except image_datasets.DatasetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    seeds = list(range(args.seeds))
    print(
        f"Learned-alpha study on {args.dataset}, {len(args.variants)} "
        f"variants x {len(seeds)} seeds x {args.epochs} epochs, backend "
        f"{keras.backend.backend()}"
    )
    start = time.perf_counter()
    runs = {
        variant: [train_one(variant, seed, data, args) for seed in seeds]
        for variant in args.variants
    }
    summaries = {variant: summarize(runs[variant]) for variant in runs}
    config = {
        "dataset": args.dataset,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "keras_latent_version": keras_latent.__version__,
        "variants": args.variants,
        "seeds": seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "groups": GROUPS,
        "hidden_units": HIDDEN_UNITS,
        "total_seconds": time.perf_counter() - start,
    }
    table = results_table(summaries)
    with open(os.path.join(args.output_dir, "results.md"), "w") as file:
        file.write(
            f"# Learned alpha on {args.dataset}\n\n{table}\n\n"
            f"Configuration: `{json.dumps(config)}`\n"
        )
    results = {
        "config": config,
        "variants": {
            variant: {
                "layer": VARIANTS[variant],
                "summary": summaries[variant],
                "runs": runs[variant],
            }
            for variant in runs
        },
    }
    with open(os.path.join(args.output_dir, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    print()
    print(table)
    print(
        f"\n{len(args.variants) * len(seeds)} runs in "
        f"{config['total_seconds']:.0f} s. Wrote {args.output_dir}/"
        "{results.md, results.json}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
