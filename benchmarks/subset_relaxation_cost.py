"""The cost of the k-subset samplers against one Gumbel-softmax sample.

Times, on each Keras backend in one invocation (one subprocess per
backend, one after the other), the forward pass and the forward plus
backward pass of `keras_latent.ops.gumbel_top_k`, `relaxed_top_k` and
`straight_through_top_k` against `keras_latent.ops.gumbel_softmax`, the
k = 1 case of the relaxation (one softmax of the noisy logits), at a few
`(batch, categories)` shapes and subset sizes `k`.

    python benchmarks/subset_relaxation_cost.py
    python benchmarks/subset_relaxation_cost.py --cases 256x784:8 \\
        --repeats 5 --backends jax

Each function runs as a Keras training step would run it: under `jax.jit`
on JAX, under `tf.function(jit_compile=True)` (XLA) on TensorFlow, eagerly
on PyTorch (Keras's defaults for `jit_compile="auto"`). The noise is drawn
inside every timed function, from an integer seed. The backward pass is
the gradient of `sum(sample * weights)`, fixed random weights, with
respect to the logits; `gumbel_top_k` has no gradient, so it has no
backward figure. Every backend runs on one thread, and the time is the
process's CPU time (`time.process_time`), so that other jobs on the
machine inflate it less than wall time. The functions alternate within
each round, each called as many times as take about `--min-ms` of CPU
time (20 ms); a figure is the median over rounds of the milliseconds per
call, and a ratio the median over rounds of the per-round ratio to
`gumbel_softmax` at the same shape.

It writes `results.json` and `results.md` to `--output-dir`, and refuses
to replace them unless `--overwrite`.
"""

import argparse
import json
import math
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The examples' rule for output files lives beside them, in examples/.
if str(ROOT / "examples") not in sys.path:
    sys.path.insert(0, str(ROOT / "examples"))

import backend_workers  # noqa: E402
import output_files  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
OPS = (
    "gumbel_softmax",
    "gumbel_top_k",
    "relaxed_top_k",
    "straight_through_top_k",
)
MODES = ("forward", "forward_backward")
TEMPERATURE = 0.5
OUTPUT_FILES = ("results.json", "results.md")


def parse_case(text):
    """`BATCHxCATEGORIES:K` as `(batch, categories, k)`."""
    try:
        shape, k = text.split(":")
        batch, categories = (int(part) for part in shape.split("x"))
        k = int(k)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a case is BATCHxCATEGORIES:K, such as 256x784:8; received "
            f"{text!r}"
        ) from None
    if min(batch, categories, k) < 1 or k > categories:
        raise argparse.ArgumentTypeError(
            f"a case needs sizes >= 1 and k <= categories; received {text!r}"
        )
    return batch, categories, k


"""
## One backend (the worker)
"""


def sampler(op, k):
    """`logits -> sample` of `op`, its noise from an integer seed."""
    import keras_latent

    if op == "gumbel_softmax":
        return lambda x: keras_latent.ops.gumbel_softmax(x, TEMPERATURE, seed=1)
    if op == "gumbel_top_k":
        return lambda x: keras_latent.ops.gumbel_top_k(x, k, seed=1)
    function = getattr(keras_latent.ops, op)
    return lambda x: function(x, k, TEMPERATURE, seed=1)


def compiled(backend, function):
    """`function` as a Keras training step on `backend` runs it; each call
    returns once its result is computed."""
    if backend == "jax":
        import jax

        jitted = jax.jit(function)
        return lambda x: jitted(x).block_until_ready()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    return function


def gradient(backend, loss):
    """`logits -> d loss / d logits` on `backend`."""
    if backend == "jax":
        import jax

        return jax.grad(loss)
    if backend == "tensorflow":
        import tensorflow as tf

        def tensorflow_gradient(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = loss(x)
            return tape.gradient(value, x)

        return tensorflow_gradient
    import torch

    def torch_gradient(x):
        x = x.detach().requires_grad_(True)
        (result,) = torch.autograd.grad(loss(x), x)
        return result

    return torch_gradient


def weighted_sum(sample, weights):
    """`logits -> sum(sample(logits) * weights)`: a loss whose gradient
    passes every entry of the sample (the sample alone sums to k)."""
    import keras

    return lambda x: keras.ops.sum(sample(x) * weights)


def timed_functions(backend, cases):
    """`{(case, op, mode): (function, logits)}`, compiled and warmed up."""
    import keras
    import numpy as np

    functions = {}
    rng = np.random.default_rng(0)
    for case in cases:
        batch, categories, k = case
        logits = keras.ops.convert_to_tensor(
            rng.standard_normal((batch, categories)).astype("float32")
        )
        weights = keras.ops.convert_to_tensor(
            rng.standard_normal((batch, categories)).astype("float32")
        )
        for op in OPS:
            sample = sampler(op, k)
            functions[case, op, "forward"] = compiled(backend, sample)
            if op != "gumbel_top_k":
                functions[case, op, "forward_backward"] = compiled(
                    backend, gradient(backend, weighted_sum(sample, weights))
                )
        for key in [key for key in functions if key[0] == case]:
            functions[key](logits)
            functions[key] = (functions[key], logits)
    return functions


def calls_per_round(function, logits, min_ms):
    """Enough calls of `function` to take about `min_ms` of CPU time, so
    that the clock's resolution and one-off stalls weigh little."""
    start = time.process_time()
    function(logits)
    once_ms = 1000 * (time.process_time() - start)
    return max(1, math.ceil(min_ms / max(once_ms, 1e-3)))


def run_worker(backend, cases, repeats, min_ms):
    """Milliseconds per call of each function, one list entry per round."""
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
    import keras

    functions = timed_functions(backend, cases)
    calls = {
        key: calls_per_round(function, logits, min_ms)
        for key, (function, logits) in functions.items()
    }
    times = {key: [] for key in functions}
    for _ in range(repeats):
        for key, (function, logits) in functions.items():
            start = time.process_time()
            for _ in range(calls[key]):
                function(logits)
            elapsed = time.process_time() - start
            times[key].append(1000 * elapsed / calls[key])
    return {
        "backend": backend,
        "keras_version": keras.__version__,
        "rows": [
            {
                "case": list(case),
                "op": op,
                "mode": mode,
                "calls_per_round": calls[case, op, mode],
                "ms": values,
            }
            for (case, op, mode), values in times.items()
        ],
    }


"""
## All backends (the driver)
"""


def summarize(worker_result):
    """Median milliseconds and median per-round ratio to gumbel_softmax."""
    rows = worker_result["rows"]
    baseline = {
        (tuple(row["case"]), row["mode"]): row["ms"]
        for row in rows
        if row["op"] == "gumbel_softmax"
    }
    for row in rows:
        reference = baseline[tuple(row["case"]), row["mode"]]
        row["median_ms"] = statistics.median(row["ms"])
        row["ratio"] = statistics.median(
            value / base
            for value, base in zip(row["ms"], reference, strict=True)
        )
    return worker_result


def markdown_table(results):
    lines = [
        "| backend | shape | k | op | forward ms | ratio | forward+backward "
        "ms | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, result in results["backends"].items():
        cells = {}
        for row in result["rows"]:
            key = (tuple(row["case"]), row["op"])
            cells.setdefault(key, {})[row["mode"]] = row
        for (case, op), by_mode in cells.items():
            figures = []
            for mode in MODES:
                row = by_mode.get(mode)
                figures += (
                    [f"{row['median_ms']:.3g}", f"{row['ratio']:.2f}"]
                    if row
                    else ["n/a", "n/a"]
                )
            lines.append(
                f"| {backend} | {case[0]}x{case[1]} | {case[2]} | {op} | "
                + " | ".join(figures)
                + " |"
            )
    return "\n".join(lines) + "\n"


def run_backend(backend, args, output_json):
    """Runs this script as a worker under `backend`, one thread."""
    command = [sys.executable, __file__, "--worker", backend]
    command += ["--worker-output", str(output_json)]
    command += ["--repeats", str(args.repeats), "--min-ms", str(args.min_ms)]
    command += ["--cases", *(f"{b}x{c}:{k}" for b, c, k in args.cases)]
    return summarize(backend_workers.run_worker(backend, command, output_json))


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Time the k-subset samplers against gumbel_softmax.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--cases",
        type=parse_case,
        nargs="+",
        default=["256x784:8", "256x784:64", "1024x1000:8"],
        help="BATCHxCATEGORIES:K",
    )
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS
    )
    parser.add_argument("--repeats", type=int, default=7, help="rounds")
    parser.add_argument(
        "--min-ms",
        type=float,
        default=20.0,
        help="CPU milliseconds of each function per round (at least 1 call)",
    )
    parser.add_argument(
        "--output-dir", default="outputs/subset_relaxation_cost"
    )
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cases = [
        parse_case(case) if isinstance(case, str) else case
        for case in args.cases
    ]
    if args.repeats < 1 or args.min_ms < 0:
        parser.error("--repeats must be at least 1 and --min-ms at least 0")
    return parser, args


def main(argv=None):
    parser, args = parse_arguments(argv)
    if args.worker:
        result = run_worker(args.worker, args.cases, args.repeats, args.min_ms)
        with open(args.worker_output, "w") as file:
            json.dump(result, file)
        return 0
    output_files.refuse_to_overwrite(
        parser, args.output_dir, OUTPUT_FILES, args.overwrite
    )
    results = {
        "config": {
            "cases": args.cases,
            "repeats": args.repeats,
            "min_ms": args.min_ms,
            "temperature": TEMPERATURE,
            "date": time.strftime("%Y-%m-%d"),
        },
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as worker_dir:
        for backend in args.backends:
            output_json = pathlib.Path(worker_dir) / f"{backend}.json"
            results["backends"][backend] = run_backend(
                backend, args, output_json
            )
    table = markdown_table(results)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    with open(os.path.join(args.output_dir, "results.md"), "w") as file:
        file.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
