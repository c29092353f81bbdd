"""How time and memory grow with batch, variables and categories.

Runs the forward plus backward pass of `keras_latent.ops.gumbel_softmax`
and of the latent layers on logits of shape `(batch, variables,
categories)`, in training mode, and sweeps one size at a time:

- categories from 10 to 100,000 (a vocabulary-sized latent) at a small
  fixed batch and number of variables (`--category-base`);
- the batch, then the number of variables, at fixed categories
  (`--base`).

The cases: the op `gumbel_softmax`; `CategoricalLatent` with the analytic
KL and with `kl="relaxed"`; the `GumbelSoftmax` layer; `GroupedSoftmax`
with `sparsemax` and with `entmax15` (one group per variable). The
backward pass is the gradient, with respect to the logits, of
`sum(output * weights)` (fixed random weights) plus the layer's losses.

Each backend runs in its own process, from this one invocation, on one
thread, its clock the process's CPU time (the settings and the timing
loop of `gumbel_throughput.py`). The memory figure differs by backend,
and the table says which:

- JAX: `temp + output` bytes of the compiled step's `memory_analysis()`,
  which XLA's buffer assignment gives exactly, without running it;
- torch: the bytes autograd keeps for the backward pass (the distinct
  storages packed by `torch.autograd.graph.saved_tensors_hooks`) plus the
  output's: exact, and a lower bound of the peak;
- TensorFlow: the growth of the process's peak resident memory
  (`resource.getrusage`) at the first call of each size, sizes in
  increasing order: a coarse figure (allocators keep freed memory), 0
  where the step fits in memory the process already holds.

For each case and sweep, the slope of a least-squares line through
`log(time)` (and `log(memory)`) against `log(size)` over the sweep's three
largest sizes, where a fixed cost per call weighs least: 1 means linear
growth, 2 quadratic.

    python benchmarks/latent_scaling.py
    python benchmarks/latent_scaling.py --backends jax --repeats 5

Writes `results.md`, `results.json` and `scaling.png` to `--output-dir`.
"""

import argparse
import inspect
import json
import pathlib
import resource
import statistics
import sys
import tempfile
import time

import backend_workers
import gumbel_throughput
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = gumbel_throughput.BACKENDS
CASES = (
    "ops.gumbel_softmax",
    "CategoricalLatent(kl=analytic)",
    "CategoricalLatent(kl=relaxed)",
    "GumbelSoftmax",
    "GroupedSoftmax(sparsemax)",
    "GroupedSoftmax(entmax15)",
)
SWEEPS = ("categories", "batch", "variables")
TEMPERATURE = 0.5
MEMORY_KIND = {
    "jax": "compiled temp+output bytes",
    "torch": "saved-for-backward + output bytes",
    "tensorflow": "peak-RSS growth (coarse)",
}
# The slope is fitted where a fixed per-call cost weighs least.
SLOPE_POINTS = 3


def parse_sizes(text, count):
    """`count` positive integers joined by x, such as 16x4x100."""
    try:
        sizes = tuple(int(part) for part in text.split("x"))
    except ValueError:
        sizes = ()
    if len(sizes) != count or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected {count} positive integers joined by x; received {text!r}"
        )
    return sizes


def sweep_shapes(args):
    """`[(sweep, size, (batch, variables, categories))]`, each sweep in
    increasing size."""
    batch, num_variables, num_categories = args.base
    category_batch, category_variables = args.category_base
    shapes = []
    for size in sorted(args.num_categories):
        shapes.append(
            ("categories", size, (category_batch, category_variables, size))
        )
    for size in sorted(args.batch_sizes):
        shapes.append(("batch", size, (size, num_variables, num_categories)))
    for size in sorted(args.num_variables):
        shapes.append(("variables", size, (batch, size, num_categories)))
    return shapes


"""
## The cases, on any backend
"""


def build_case(case, num_variables, num_categories):
    """`(layer, flat)`: a built Keras layer computing the case in training
    mode, and whether it takes flat `(batch, variables * categories)`
    logits rather than `(batch, variables, categories)`."""
    import keras

    import keras_latent

    layers = keras_latent.layers
    if case == "ops.gumbel_softmax":

        class GumbelSoftmaxOp(keras.layers.Layer):
            """The op alone, its noise from a seed generator."""

            def __init__(self):
                super().__init__()
                self.seed_generator = keras.random.SeedGenerator(0)

            def call(self, logits, training=None):
                return keras_latent.ops.gumbel_softmax(
                    logits, TEMPERATURE, seed=self.seed_generator
                )

        layer, flat = GumbelSoftmaxOp(), False
    elif case.startswith("CategoricalLatent"):
        kl = case[len("CategoricalLatent(kl=") : -1]
        layer = layers.CategoricalLatent(
            num_variables, num_categories, TEMPERATURE, kl=kl, seed=0
        )
        flat = False
    elif case == "GumbelSoftmax":
        layer, flat = layers.GumbelSoftmax(TEMPERATURE, seed=0), False
    else:
        normalizer = case[len("GroupedSoftmax(") : -1]
        layer = layers.GroupedSoftmax(num_variables, normalizer)
        flat = True
    input_shape = (
        (None, num_variables * num_categories)
        if flat
        else (None, num_variables, num_categories)
    )
    layer.build(input_shape)
    return layer, flat


def inputs_for(shape, flat, seed=0):
    batch, num_variables, num_categories = shape
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape).astype("float32")
    weights = rng.normal(size=shape).astype("float32")
    if flat:
        flat_shape = (batch, num_variables * num_categories)
        return logits.reshape(flat_shape), weights.reshape(flat_shape)
    return logits, weights


"""
## One training step (forward plus backward) per backend

Each returns `(run, memory_bytes)`: `run()` computes the gradient and
returns once it exists; `memory_bytes()` the backend's memory figure.
"""


def peak_rss_bytes():
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def training_arguments(layer):
    """`{"training": True}` for a layer whose `call` takes `training`
    (`stateless_call` passes its keywords to `call` as they are)."""
    parameters = inspect.signature(layer.call).parameters
    return {"training": True} if "training" in parameters else {}


def jax_step(layer, logits, weights):
    import jax
    import jax.numpy as jnp

    trainable = [variable.value for variable in layer.trainable_variables]
    state = {
        "non_trainable": [
            variable.value for variable in layer.non_trainable_variables
        ]
    }
    logits = jnp.asarray(logits)
    weights = jnp.asarray(weights)

    def loss(x, non_trainable):
        y, non_trainable, losses = layer.stateless_call(
            trainable,
            non_trainable,
            x,
            return_losses=True,
            **training_arguments(layer),
        )
        total = jnp.sum(y * weights) + sum(losses, jnp.float32(0.0))
        return total, non_trainable

    step = jax.jit(jax.grad(loss, has_aux=True))
    compiled = step.lower(logits, state["non_trainable"]).compile()

    def run():
        gradient, state["non_trainable"] = compiled(
            logits, state["non_trainable"]
        )
        return gradient.block_until_ready()

    def memory_bytes():
        analysis = compiled.memory_analysis()
        return analysis.temp_size_in_bytes + analysis.output_size_in_bytes

    return run, memory_bytes


def tensorflow_step(layer, logits, weights):
    import tensorflow as tf

    logits = tf.constant(logits)
    weights = tf.constant(weights)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            total = tf.reduce_sum(y * weights) + tf.add_n(
                [tf.constant(0.0), *layer.losses]
            )
        return tape.gradient(total, x)

    step.get_concrete_function(logits)
    before = peak_rss_bytes()
    step(logits).numpy()
    growth = peak_rss_bytes() - before

    def run():
        return step(logits).numpy()

    return run, lambda: growth


def torch_step(layer, logits, weights):
    import torch

    torch.set_num_threads(1)
    logits = torch.tensor(logits, requires_grad=True)
    weights = torch.tensor(weights)

    def forward():
        y = layer(logits, training=True)
        return y, (y * weights).sum() + sum(layer.losses, torch.tensor(0.0))

    def run():
        _, total = forward()
        total.backward()
        gradient, logits.grad = logits.grad, None
        return gradient

    def memory_bytes():
        storages = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y, total = forward()
        total.backward()
        logits.grad = None
        return sum(storages.values()) + y.numel() * y.element_size()

    return run, memory_bytes


STEP_BUILDERS = {
    "tensorflow": tensorflow_step,
    "jax": jax_step,
    "torch": torch_step,
}


def measure_backend(backend, args):
    """One row per case and shape of the sweeps, for the running backend."""
    clock = gumbel_throughput.clock_function("cpu")
    rows = []
    measured = {}
    # Increasing sizes within each sweep: the peak-RSS growth of the
    # TensorFlow figure needs them.
    for case in args.cases:
        for sweep, size, shape in sweep_shapes(args):
            if (case, shape) not in measured:
                layer, flat = build_case(case, *shape[1:])
                logits, weights = inputs_for(shape, flat)
                run, memory_bytes = STEP_BUILDERS[backend](
                    layer, logits, weights
                )
                seconds = gumbel_throughput.time_candidates(
                    [(case, run)], args.repeats, clock, args.block_seconds
                )[case]
                measured[case, shape] = {
                    "milliseconds": 1e3 * statistics.median(seconds),
                    "memory_bytes": int(memory_bytes()),
                    "input_bytes": int(logits.nbytes),
                }
                print(
                    f"{backend} {case} {gumbel_throughput.format_shape(shape)}"
                    f": {measured[case, shape]['milliseconds']:.3f} ms",
                    flush=True,
                )
            rows.append(
                {
                    "backend": backend,
                    "case": case,
                    "sweep": sweep,
                    "size": size,
                    "shape": list(shape),
                    **measured[case, shape],
                }
            )
    return rows


"""
## Slopes, table and figure
"""


def log_log_slope(sizes, values):
    """The least-squares slope of log(values) against log(sizes), over the
    `SLOPE_POINTS` largest sizes; None where fewer than 2 points or a
    value is not positive."""
    points = sorted(zip(sizes, values, strict=True))[-SLOPE_POINTS:]
    if len(points) < 2 or min(value for _, value in points) <= 0:
        return None
    x = np.log([size for size, _ in points])
    y = np.log([value for _, value in points])
    return float(np.polyfit(x, y, 1)[0])


def slopes(rows):
    """`{(backend, case, sweep): {"time": slope, "memory": slope}}`."""
    groups = {}
    for row in rows:
        key = (row["backend"], row["case"], row["sweep"])
        groups.setdefault(key, []).append(row)
    result = {}
    for key, group in groups.items():
        sizes = [row["size"] for row in group]
        result[key] = {
            "time": log_log_slope(
                sizes, [row["milliseconds"] for row in group]
            ),
            "memory": log_log_slope(
                sizes, [row["memory_bytes"] for row in group]
            ),
        }
    return result


def format_slope(value):
    return "n/a" if value is None else f"{value:.2f}"


def memory_multiple_at_largest(rows, backend, case):
    """The memory figure over the input's bytes at the largest input of a
    case (where fixed buffers, and the first call's allocations in a
    TensorFlow process, weigh least); None without rows."""
    candidates = [
        row for row in rows if row["backend"] == backend and row["case"] == case
    ]
    if not candidates:
        return None
    largest = max(candidates, key=lambda row: row["input_bytes"])
    return largest["memory_bytes"] / largest["input_bytes"]


def slope_table(rows):
    fitted = slopes(rows)
    header = "| backend | case | memory figure |"
    rule = "|---|---|---|"
    for sweep in SWEEPS:
        header += f" time / {sweep} | memory / {sweep} |"
        rule += "---:|---:|"
    header += " memory / input, largest |"
    rule += "---:|"
    lines = [header, rule]
    for backend, case in dict.fromkeys(
        (row["backend"], row["case"]) for row in rows
    ):
        line = f"| {backend} | {case} | {MEMORY_KIND[backend]} |"
        for sweep in SWEEPS:
            fit = fitted.get((backend, case, sweep), {})
            line += (
                f" {format_slope(fit.get('time'))} |"
                f" {format_slope(fit.get('memory'))} |"
            )
        multiple = memory_multiple_at_largest(rows, backend, case)
        line += f" {multiple:.1f} |"
        lines.append(line)
    return "\n".join(lines)


def figures_table(rows):
    lines = [
        "| backend | case | sweep | shape | ms | memory (MB) "
        "| memory / input |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['backend']} | {row['case']} | {row['sweep']} "
            f"| {gumbel_throughput.format_shape(row['shape'])} "
            f"| {row['milliseconds']:.3f} "
            f"| {row['memory_bytes'] / 1e6:.2f} "
            f"| {row['memory_bytes'] / row['input_bytes']:.1f} |"
        )
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    backends = list(dict.fromkeys(row["backend"] for row in rows))
    figure, axes = pyplot.subplots(
        2,
        len(SWEEPS),
        figsize=(5 * len(SWEEPS), 8),
        squeeze=False,
    )
    styles = ("-", "--", ":")
    for column, sweep in enumerate(SWEEPS):
        for backend, style in zip(backends, styles, strict=False):
            cases = dict.fromkeys(row["case"] for row in rows)
            # One color per case, one line style per backend.
            for color, case in enumerate(cases):
                points = [
                    row
                    for row in rows
                    if row["backend"] == backend
                    and row["case"] == case
                    and row["sweep"] == sweep
                ]
                if not points:
                    continue
                sizes = [row["size"] for row in points]
                label = f"{backend} {case}"
                axes[0, column].plot(
                    sizes,
                    [row["milliseconds"] for row in points],
                    style,
                    color=f"C{color}",
                    marker="o",
                    label=label,
                )
                memory = [row["memory_bytes"] / 1e6 for row in points]
                if min(memory) > 0:
                    axes[1, column].plot(
                        sizes,
                        memory,
                        style,
                        color=f"C{color}",
                        marker="o",
                        label=label,
                    )
        for row_index, quantity in enumerate(("CPU ms", "memory (MB)")):
            axis = axes[row_index, column]
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel(sweep)
            axis.set_ylabel(quantity)
            axis.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=6)
    figure.suptitle(
        "Forward + backward: time and memory (the memory figure differs "
        "by backend; see results.md)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def write_results(output_dir, rows, config):
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = slope_table(rows)
    fitted = {
        "/".join(key): value for key, value in sorted(slopes(rows).items())
    }
    with open(output_dir / "results.json", "w") as file:
        json.dump(
            {"config": config, "rows": rows, "slopes": fitted}, file, indent=2
        )
    with open(output_dir / "results.md", "w") as file:
        file.write(
            "# Scaling with batch, variables and categories\n\n"
            f"Command: `{config['command']}`  \n"
            f"Date: {config['date']}; clock: CPU time, one thread; "
            f"{config['repeats']} rounds; machine: {config['machine']}\n\n"
            "Log-log slopes over each sweep's three largest sizes "
            "(1: linear, 2: quadratic; below 1 where a fixed cost per call "
            "still counts), and the memory figure over the input's bytes "
            "at the largest input.\n\n"
            f"{summary}\n\n## Figures\n\n{figures_table(rows)}\n"
        )
    plot(rows, output_dir / "scaling.png")
    return summary


"""
## Command line
"""


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Time and memory of keras-latent's op and layers as "
        "batch, variables and categories grow.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS
    )
    parser.add_argument(
        "--cases", nargs="+", default=list(CASES), choices=CASES
    )
    parser.add_argument(
        "--num-categories",
        nargs="+",
        type=int,
        default=[10, 100, 1000, 10_000, 100_000],
        help="the categories sweep, at --category-base",
    )
    parser.add_argument(
        "--category-base",
        type=lambda text: parse_sizes(text, 2),
        default=(4, 4),
        help="BATCHxVARIABLES of the categories sweep",
    )
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int,
        default=[64, 256, 1024],
        help="the batch sweep, at --base's variables and categories",
    )
    parser.add_argument(
        "--num-variables",
        nargs="+",
        type=int,
        default=[16, 64, 256],
        help="the variables sweep, at --base's batch and categories",
    )
    parser.add_argument(
        "--base",
        type=lambda text: parse_sizes(text, 3),
        default=(16, 4, 100),
        help="BATCHxVARIABLESxCATEGORIES of the batch and variables sweeps",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds")
    parser.add_argument(
        "--block-seconds",
        type=float,
        default=0.02,
        help="the CPU time of one block of calls in a round",
    )
    parser.add_argument("--output-dir", default="outputs/latent_scaling")
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--child-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = args.num_categories + args.batch_sizes + args.num_variables
    if min(sizes) < 1 or min(args.num_categories) < 2:
        parser.error("sizes must be >= 1, and categories >= 2")
    if args.repeats < 1 or args.block_seconds <= 0:
        parser.error("--repeats must be >= 1 and --block-seconds > 0")
    return args


def child_command(backend, args, json_path):
    def listed(values):
        return [str(value) for value in values]

    return [
        sys.executable,
        str(pathlib.Path(__file__).resolve()),
        "--child",
        backend,
        "--child-json",
        str(json_path),
        "--cases",
        *args.cases,
        "--num-categories",
        *listed(args.num_categories),
        "--category-base",
        gumbel_throughput.format_shape(args.category_base),
        "--batch-sizes",
        *listed(args.batch_sizes),
        "--num-variables",
        *listed(args.num_variables),
        "--base",
        gumbel_throughput.format_shape(args.base),
        "--repeats",
        str(args.repeats),
        "--block-seconds",
        str(args.block_seconds),
    ]


def run_backend(backend, args):
    """Runs one backend in its own process, on one thread; its rows."""
    with tempfile.TemporaryDirectory() as directory:
        json_path = pathlib.Path(directory) / "rows.json"
        return backend_workers.run_worker(
            backend, child_command(backend, args, json_path), json_path
        )


def main(argv=None):
    args = parse_arguments(argv)
    if args.child:
        rows = measure_backend(args.child, args)
        with open(args.child_json, "w") as file:
            json.dump(rows, file)
        return 0
    rows = []
    for backend in args.backends:
        rows.extend(run_backend(backend, args))
    config = {
        "command": "python benchmarks/latent_scaling.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "repeats": args.repeats,
        "machine": gumbel_throughput.machine_description(),
    }
    summary = write_results(args.output_dir, rows, config)
    print(summary)
    print(f"Wrote {args.output_dir}/results.md, results.json, scaling.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
