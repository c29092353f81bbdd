"""The semi-supervised example over seeds, and the cost of its class sum.

`examples/semi_supervised.py` trains M2 with a Gumbel-softmax class once.
This harness trains it from seeds 0, 1, ... (the same options, the same
code), reports the test accuracy and the test -ELBO as mean and standard
deviation over the seeds, saves the first seed's model and per-class
samples, and times, in the same run, a training step that samples the
class against one that sums the ELBO over every class (Kingma et al.'s
M2), at 10 classes and with a 100-class version of the model. Jang et al.
(2017, Table 2) report sampling 2x faster at 10 classes and 9.9x at 100.

    KERAS_BACKEND=jax python benchmarks/semi_supervised_seeds.py \\
        --dataset fashion_mnist --epochs 20 --seeds 3

It writes `metrics.json`, `class_samples.png` and `model.keras` (seed 0)
to the output directory.
"""

import json
import os
import sys
import time

import keras
import numpy as np

import keras_latent

# The example and the data loader live in examples/, beside this folder.
EXAMPLES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"
)
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

import image_datasets  # noqa: E402
import semi_supervised  # noqa: E402

DESCRIPTION = (
    "Train the semi-supervised example over seeds, and time sampling the "
    "class against summing over it."
)


def median_step_milliseconds(x_train, num_classes, args):
    """Median training-step times of fresh sampled and marginalized models.

    One batch of unlabelled images, where marginalizing costs most: the
    sampled model runs the encoder and decoder on `batch_size` rows, the
    marginalized one on `batch_size * num_classes`. After two compiling
    steps each, the two models take turns, one step at a time, so that both
    see the same machine load.
    """
    batch = semi_supervised.unlabelled(x_train[: args.batch_size], num_classes)
    targets = {"class_logits": batch["labels"]}
    models = {}
    for marginalize in (False, True):
        parts = semi_supervised.build_parts(
            x_train.shape[-1], num_classes, args.hidden_units, args.latent_dim
        )
        models[marginalize] = semi_supervised.build_model(
            parts, 1.0, 1.0, args.hard, 0, marginalize
        )
        for _ in range(2):
            models[marginalize].train_on_batch(batch, targets)
    seconds = {False: [], True: []}
    for step in range(args.speed_steps):
        for marginalize in (step % 2 == 0, step % 2 == 1):
            start = time.perf_counter()
            models[marginalize].train_on_batch(batch, targets)
            seconds[marginalize].append(time.perf_counter() - start)
    sampled, summed = (float(np.median(seconds[m])) for m in (False, True))
    return {
        "num_classes": num_classes,
        "sampled_ms": 1000 * sampled,
        "marginalized_ms": 1000 * summed,
        "speedup": summed / sampled,
    }


def mean_and_std(values):
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "values": values,
    }


def parse_arguments(argv):
    parser = semi_supervised.argument_parser(DESCRIPTION)
    add = parser.add_argument
    add("--seeds", type=int, default=3, help="runs, with seeds 0, 1, ...")
    add(
        "--speed-classes",
        type=int,
        nargs="*",
        default=[10, 100],
        help="class counts of the timing (none: no timing)",
    )
    add("--speed-steps", type=int, default=20, help="timed steps per model")
    add(
        "--output-dir",
        default="outputs/semi_supervised_seeds",
        help="where to write",
    )
    args = semi_supervised.parse_arguments(parser, argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if any(count < 2 for count in args.speed_classes):
        parser.error("--speed-classes needs counts of at least 2")
    return args


def main(argv=None):
    args = parse_arguments(argv)
    try:
        data = image_datasets.load_images(args.dataset)
    except image_datasets.DatasetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.makedirs(args.output_dir, exist_ok=True)
    print(
        f"M2 with a Gumbel-softmax class on {args.dataset}, "
        f"{args.labels_per_class} labels per class, {args.seeds} seed(s), "
        f"backend {keras.backend.backend()}"
    )
    runs = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        model, result = semi_supervised.train_and_evaluate(args, data, seed)
        result["seconds"] = time.perf_counter() - start
        runs.append(result)
        print(
            f"seed {seed}: test accuracy {result['test_accuracy']:.3f}, "
            f"test -ELBO {result['test_neg_elbo']:.2f} nats/image"
        )
        if seed == 0:
            difference = semi_supervised.save_and_check(
                model, data[1][0], args.output_dir, seed
            )
    if difference > 1e-5:
        print(f"error: the reloaded model differs by {difference:.3g}")
        return 1
    speed = [
        median_step_milliseconds(data[0][0], count, args)
        for count in args.speed_classes
    ]
    for row in speed:
        print(
            f"{row['num_classes']} classes: sampled {row['sampled_ms']:.1f} "
            f"ms/step, marginalized {row['marginalized_ms']:.1f} ms/step, "
            f"{row['speedup']:.1f}x"
        )
    metrics = {
        "dataset": args.dataset,
        "backend": keras.backend.backend(),
        "keras_latent_version": keras_latent.__version__,
        "settings": vars(args),
        "test_accuracy": mean_and_std([r["test_accuracy"] for r in runs]),
        "test_neg_elbo": mean_and_std([r["test_neg_elbo"] for r in runs]),
        "runs": runs,
        "step_time": speed,
        "reload_max_abs_difference": difference,
    }
    with open(os.path.join(args.output_dir, "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    accuracy, elbo = metrics["test_accuracy"], metrics["test_neg_elbo"]
    print(
        f"Test accuracy {accuracy['mean']:.3f} ± {accuracy['std']:.3f}, "
        f"test -ELBO {elbo['mean']:.2f} ± {elbo['std']:.2f} nats/image over "
        f"{args.seeds} seed(s). Wrote {args.output_dir}/{{metrics.json, "
        "class_samples.png, model.keras}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
