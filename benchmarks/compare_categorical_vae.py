"""Categorical VAE: keras-latent on each Keras backend against plain PyTorch.

Runs, in this one invocation and one after the other on the same machine,
`examples/categorical_vae.py` under each Keras backend and
`benchmarks/torch_categorical_vae.py` (a plain PyTorch implementation of the
same model and hyperparameters), then prints one table: the test negative
ELBO with discrete latent samples (nats per image, lower is better) and the
training seconds per epoch, each with its ratio to PyTorch.

    python benchmarks/compare_categorical_vae.py --dataset fashion_mnist \
        --epochs 10

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


def keras_run(backend, args, output_dir):
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
            str(args.seed),
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


def torch_run(args, output_json):
    run(
        [
            sys.executable,
            "benchmarks/torch_categorical_vae.py",
            "--dataset",
            args.dataset,
            "--epochs",
            str(args.epochs),
            "--seed",
            str(args.seed),
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--output-json", help="also write the rows here")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        baseline = torch_run(args, scratch / "torch.json")
        rows.append(("PyTorch (plain)", baseline))
        for backend in args.backends:
            metrics = keras_run(backend, args, scratch / backend)
            rows.append((f"keras-latent, {backend}", metrics))

    baseline_elbo = baseline["test_neg_elbo"]
    baseline_seconds = steady_seconds(baseline["seconds_per_epoch"])
    print()
    print(
        f"Categorical VAE, {args.dataset}, {args.epochs} epochs, "
        f"seed {args.seed}"
    )
    print(
        "| implementation | test -ELBO (nats) | ratio to PyTorch | "
        "s/epoch | ratio to PyTorch |"
    )
    print("|---|---|---|---|---|")
    table = []
    for name, metrics in rows:
        elbo = metrics["test_neg_elbo"]
        seconds = steady_seconds(metrics["seconds_per_epoch"])
        table.append(
            {"implementation": name, "test_neg_elbo": elbo, "seconds": seconds}
        )
        print(
            f"| {name} | {elbo:.2f} | {elbo / baseline_elbo:.3f} | "
            f"{seconds:.2f} | {seconds / baseline_seconds:.2f} |"
        )
    if args.output_json:
        with open(args.output_json, "w") as file:
            json.dump(table, file, indent=2)


if __name__ == "__main__":
    main()
