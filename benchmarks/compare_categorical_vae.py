"""Categorical VAE: keras-latent on each Keras backend against plain PyTorch.

Runs, in this one invocation and one after the other on the same machine,
`benchmarks/torch_categorical_vae.py` (a plain PyTorch implementation of the
same model and hyperparameters), and under each Keras backend
`benchmarks/keras_categorical_vae.py` (the same model in plain Keras, with a
hand-written sampling layer and `add_loss`) and `examples/categorical_vae.py`,
for seeds 0, 1, ... in turn (every implementation with one seed before the
next seed), then prints one table: the test negative ELBO with discrete
latent samples (nats per image, lower is better) as mean and standard
deviation over the seeds, and the training seconds per epoch with their
ratio to PyTorch's and keras-latent's to plain Keras's in the same round,
as medians over the seeds with their range.

    python benchmarks/compare_categorical_vae.py --seeds 3
    python benchmarks/compare_categorical_vae.py --dataset fashion_mnist \
        --epochs 10 --seeds 3

`--dtype-policy mixed_float16` (or `mixed_bfloat16`) trains keras-latent's
runs under that Keras dtype policy; the baselines stay in float32.

Seconds per epoch are the median over epochs 2 and later (the first epoch
includes compilation), training only: the test pass after each epoch is not
counted, on either side.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")


def run(command, environment):
    print("$", " ".join(command), flush=True)
    subprocess.run(command, env=environment, check=True, cwd=ROOT)


def keras_run(backend, args, seed, output_dir):
    environment = {**os.environ, "KERAS_BACKEND": backend}
    run(
        [
            sys.executable,
            "examples/categorical_vae.py",
            "--dataset",
            args.dataset,
            "--epochs",
            str(args.epochs),
            "--seed",
            str(seed),
            "--output-dir",
            str(output_dir),
            "--verbose",
            "2",
            # The comparison is of the -ELBO and the speed of training,
            # which the PyTorch baseline measures; skip the costly bound.
            "--eval-samples",
            "1",
            "--dtype-policy",
            args.dtype_policy,
        ],
        environment,
    )
    return load_run(output_dir / "metrics.json", args.clock)


def plain_keras_run(backend, args, seed, output_json):
    return baseline_run(
        "benchmarks/keras_categorical_vae.py",
        args,
        seed,
        output_json,
        {**os.environ, "KERAS_BACKEND": backend},
    )


def torch_run(args, seed, output_json):
    return baseline_run(
        "benchmarks/torch_categorical_vae.py",
        args,
        seed,
        output_json,
        dict(os.environ),
    )


def baseline_run(script, args, seed, output_json, environment):
    run(
        [
            sys.executable,
            script,
            "--dataset",
            args.dataset,
            "--epochs",
            str(args.epochs),
            "--seed",
            str(seed),
            "--output-json",
            str(output_json),
        ],
        environment,
    )
    return load_run(output_json, args.clock)


def load_run(path, clock):
    """A run's summary, its `seconds_per_epoch` those of `clock`: elapsed
    seconds (`wall`), or the process's CPU seconds (`cpu`), which other
    work on the machine does not inflate."""
    with open(path) as file:
        summary = json.load(file)
    if clock == "cpu":
        summary["seconds_per_epoch"] = summary["cpu_seconds_per_epoch"]
    return summary


def steady_seconds(seconds_per_epoch):
    """Median seconds per epoch, leaving out the first (compiling) epoch."""
    steady = seconds_per_epoch[1:] or seconds_per_epoch
    return statistics.median(steady)


def summarize(rounds):
    """One row per implementation from `rounds`, one dict per seed mapping
    each implementation's name to its metrics; the first is the baseline.

    The -ELBO is the mean and sample standard deviation over the seeds; the
    seconds per epoch and their ratio to the baseline's of the same round
    are medians over the seeds, with their minimum and maximum. A row
    `keras-latent, BACKEND` also gets its ratio to `plain Keras, BACKEND`
    of the same round, where that ran (None otherwise).
    """
    names = list(rounds[0])
    rows = []
    for name in names:
        elbos = [seed_round[name]["test_neg_elbo"] for seed_round in rounds]
        seconds = [
            steady_seconds(seed_round[name]["seconds_per_epoch"])
            for seed_round in rounds
        ]
        ratios = same_round_ratios(seconds, rounds, names[0])
        plain_keras = name.replace("keras-latent, ", "plain Keras, ", 1)
        keras_ratios = (
            same_round_ratios(seconds, rounds, plain_keras)
            if name.startswith("keras-latent, ") and plain_keras in names
            else None
        )
        rows.append(
            {
                "implementation": name,
                "test_neg_elbo_mean": statistics.mean(elbos),
                "test_neg_elbo_std": (
                    statistics.stdev(elbos) if len(elbos) > 1 else 0.0
                ),
                "seconds_median": statistics.median(seconds),
                "seconds_range": [min(seconds), max(seconds)],
                "ratio_median": statistics.median(ratios),
                "ratio_range": [min(ratios), max(ratios)],
                "plain_keras_ratio_median": (
                    statistics.median(keras_ratios) if keras_ratios else None
                ),
                "plain_keras_ratio_range": (
                    [min(keras_ratios), max(keras_ratios)]
                    if keras_ratios
                    else None
                ),
                "test_neg_elbo": elbos,
                "seconds": seconds,
            }
        )
    return rows


def same_round_ratios(seconds, rounds, baseline):
    """Each round's `seconds` over the steady seconds of `baseline`."""
    return [
        own / steady_seconds(seed_round[baseline]["seconds_per_epoch"])
        for own, seed_round in zip(seconds, rounds, strict=True)
    ]


def format_ratio(median, interval):
    if median is None:
        return "-"
    return f"{median:.2f} ({interval[0]:.2f}-{interval[1]:.2f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--seeds", type=int, default=3, help="rounds, with seeds 0, 1, ..."
    )
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--output-json", help="also write the rows here")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="elapsed seconds per epoch, or CPU seconds (for a busy machine)",
    )
    parser.add_argument(
        "--dtype-policy",
        default="float32",
        choices=("float32", "mixed_float16", "mixed_bfloat16"),
        help="the Keras dtype policy of keras-latent's runs",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    rounds = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        for seed in range(args.seeds):
            seed_round = {
                "PyTorch (plain)": torch_run(
                    args, seed, scratch / f"torch{seed}.json"
                )
            }
            for backend in args.backends:
                seed_round[f"plain Keras, {backend}"] = plain_keras_run(
                    backend, args, seed, scratch / f"plain_{backend}{seed}.json"
                )
                seed_round[f"keras-latent, {backend}"] = keras_run(
                    backend, args, seed, scratch / f"{backend}{seed}"
                )
            rounds.append(seed_round)
    rows = summarize(rounds)
    print()
    print(
        f"Categorical VAE, {args.dataset}, {args.epochs} epochs, "
        f"seeds 0-{args.seeds - 1}, keras-latent under {args.dtype_policy}, "
        f"{args.clock} seconds"
    )
    print(
        "| implementation | test -ELBO (nats), mean ± sd | "
        "s/epoch, median (range) | ratio to PyTorch, median (range) | "
        "ratio to plain Keras, median (range) |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        keras_range = row["plain_keras_ratio_range"]
        print(
            f"| {row['implementation']} | {row['test_neg_elbo_mean']:.2f} ± "
            f"{row['test_neg_elbo_std']:.2f} | {row['seconds_median']:.3f} "
            f"({row['seconds_range'][0]:.3f}-{row['seconds_range'][1]:.3f}) "
            f"| {format_ratio(row['ratio_median'], row['ratio_range'])} "
            f"| {format_ratio(row['plain_keras_ratio_median'], keras_range)} |"
        )
    if args.output_json:
        with open(args.output_json, "w") as file:
            json.dump(rows, file, indent=2)


if __name__ == "__main__":
    main()
