"""Categorical VAE: keras-latent on each Keras backend against plain PyTorch.

Runs, in this one invocation and one after the other on the same machine,
`benchmarks/torch_categorical_vae.py` (a plain PyTorch implementation of the
same model and hyperparameters) and `examples/categorical_vae.py` under each
Keras backend, for seeds 0, 1, ... in turn (every implementation with one
seed before the next seed), then prints one table: the test negative ELBO
with discrete latent samples (nats per image, lower is better) as mean and
standard deviation over the seeds, and the training seconds per epoch with
their ratio to PyTorch's in the same round, as medians over the seeds with
their range.

    python benchmarks/compare_categorical_vae.py --seeds 3
    python benchmarks/compare_categorical_vae.py --dataset fashion_mnist \
        --epochs 10 --seeds 3

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
        ],
        environment,
    )
    with open(output_dir / "metrics.json") as file:
        return json.load(file)


def torch_run(args, seed, output_json):
    run(
        [
            sys.executable,
            "benchmarks/torch_categorical_vae.py",
            "--dataset",
            args.dataset,
            "--epochs",
            str(args.epochs),
            "--seed",
            str(seed),
            "--output-json",
            str(output_json),
        ],
        dict(os.environ),
    )
    with open(output_json) as file:
        return json.load(file)


def steady_seconds(seconds_per_epoch):
    """Median seconds per epoch, leaving out the first (compiling) epoch."""
    steady = seconds_per_epoch[1:] or seconds_per_epoch
    return statistics.median(steady)


def summarize(rounds):
    """One row per implementation from `rounds`, one dict per seed mapping
    each implementation's name to its metrics; the first is the baseline.

    The -ELBO is the mean and sample standard deviation over the seeds; the
    seconds per epoch and their ratio to the baseline's of the same round
    are medians over the seeds, with their minimum and maximum.
    """
    names = list(rounds[0])
    rows = []
    for name in names:
        elbos = [seed_round[name]["test_neg_elbo"] for seed_round in rounds]
        seconds = [
            steady_seconds(seed_round[name]["seconds_per_epoch"])
            for seed_round in rounds
        ]
        ratios = [
            own / steady_seconds(seed_round[names[0]]["seconds_per_epoch"])
            for own, seed_round in zip(seconds, rounds, strict=True)
        ]
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
                "test_neg_elbo": elbos,
                "seconds": seconds,
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--seeds", type=int, default=3, help="rounds, with seeds 0, 1, ..."
    )
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--output-json", help="also write the rows here")
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
                seed_round[f"keras-latent, {backend}"] = keras_run(
                    backend, args, seed, scratch / f"{backend}{seed}"
                )
            rounds.append(seed_round)
    rows = summarize(rounds)
    print()
    print(
        f"Categorical VAE, {args.dataset}, {args.epochs} epochs, "
        f"seeds 0-{args.seeds - 1}"
    )
    print(
        "| implementation | test -ELBO (nats), mean ± sd | "
        "s/epoch, median (range) | ratio to PyTorch, median (range) |"
    )
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['implementation']} | {row['test_neg_elbo_mean']:.2f} ± "
            f"{row['test_neg_elbo_std']:.2f} | {row['seconds_median']:.3f} "
            f"({row['seconds_range'][0]:.3f}-{row['seconds_range'][1]:.3f}) "
            f"| {row['ratio_median']:.2f} ({row['ratio_range'][0]:.2f}-"
            f"{row['ratio_range'][1]:.2f}) |"
        )
    if args.output_json:
        with open(args.output_json, "w") as file:
            json.dump(rows, file, indent=2)


if __name__ == "__main__":
    main()
