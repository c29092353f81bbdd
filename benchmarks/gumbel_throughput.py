"""Gumbel-softmax throughput: keras-latent's op against each backend's peers.

Times `keras_latent.ops.gumbel_softmax`, forward and forward plus backward,
soft and hard (straight-through), against what a user of each backend
would write or call instead:

- TensorFlow: a hand-written `tf.function` (uniform noise, two logs, a
  softmax) and TensorFlow Probability's `RelaxedOneHotCategorical` (soft
  only: it has no straight-through sample), and both ours and the
  hand-written one again compiled with XLA (`jit_compile=True`), as Keras
  compiles a TensorFlow training step on a GPU or TPU by default;
- JAX: the one-liner `jax.nn.softmax((x + jax.random.gumbel(key, ...)) / t)`
  under `jax.jit`;
- PyTorch: `torch.nn.functional.gumbel_softmax`.

Each backend runs in its own process, all from this one invocation. Within
a process the candidates run alternately, in a rotated order, for
`--repeats` rounds; each round times a block of calls per candidate. On a
CPU the clock is the process's CPU time with one thread per framework, so
that other work on the machine does not count; on a GPU it is the wall
clock after the device has finished (`--clock wall`). The ratio of a round
is ours over the peer's in that round; the table gives the median over
rounds, against the goal (at or under 1.0 at the large shape and 1.1 at the
small one, against the fastest peer).

    python benchmarks/gumbel_throughput.py
    python benchmarks/gumbel_throughput.py --backends jax torch --repeats 15

Writes `results.md` and `results.json` to `--output-dir`.
"""

import argparse
import functools
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import backend_workers
import numpy as np
import turns

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_SHAPES = ((100, 30, 10), (1024, 64, 128))
TEMPERATURE = 0.5
PASSES = ("forward", "forward+backward")
VARIANTS = ("soft", "hard")


def parse_shape(text):
    try:
        shape = tuple(int(part) for part in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a shape is dimensions joined by x, such as 1024x64x128; "
            f"received {text!r}"
        ) from None
    if len(shape) < 1 or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"a shape needs positive dimensions; received {text!r}"
        )
    return shape


def format_shape(shape):
    return "x".join(str(dimension) for dimension in shape)


def goal_for(shape, shapes):
    """1.0 at the largest shape of the run, 1.1 at the others."""
    largest = max(shapes, key=lambda candidate: int(np.prod(candidate)))
    return 1.0 if tuple(shape) == tuple(largest) else 1.1


"""
## The candidates of each backend

Each builder returns `(name, run)` pairs; `run()` computes one draw (and its
gradient with `backward`) and returns only when the result exists. The
gradient is that of `sum(y * w)` for a fixed random `w`.
"""


def tensorflow_candidates(logits, weights, hard, backward, jit_compile=False):
    import keras
    import tensorflow as tf

    import keras_latent

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    logits = tf.constant(logits)
    weights = tf.constant(weights)
    seed_generator = keras.random.SeedGenerator(0)
    tiny = float(np.finfo(np.float32).tiny)

    def ours(x):
        return keras_latent.ops.gumbel_softmax(
            x, TEMPERATURE, hard=hard, seed=seed_generator
        )

    def hand_written(x):
        uniform = tf.random.uniform(tf.shape(x), minval=tiny, maxval=1.0)
        y = tf.nn.softmax(
            (x - tf.math.log(-tf.math.log(uniform))) / TEMPERATURE
        )
        if hard:
            one_hot = tf.one_hot(tf.argmax(y, -1), tf.shape(y)[-1])
            y = one_hot + (y - tf.stop_gradient(y))
        return y

    def tfp_relaxed(x):
        import tensorflow_probability as tfp

        distribution = tfp.distributions.RelaxedOneHotCategorical(
            TEMPERATURE, logits=x
        )
        return distribution.sample()

    def compiled(sample):
        if not backward:
            return tf.function(sample, jit_compile=jit_compile)

        @tf.function(jit_compile=jit_compile)
        def gradient(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(sample(x) * weights)
            return tape.gradient(loss, x)

        return gradient

    samplers = [("keras_latent", ours), ("tf.function", hand_written)]
    if not hard and not jit_compile:
        samplers.append(("tfp", tfp_relaxed))
    candidates = []
    for name, sample in samplers:
        function = compiled(sample)
        candidates.append((name, lambda function=function: function(logits)))
    return candidates


def jax_candidates(logits, weights, hard, backward):
    import jax
    import jax.numpy as jnp
    import keras

    import keras_latent

    logits = jnp.asarray(logits)
    weights = jnp.asarray(weights)
    seed_generator = keras.random.SeedGenerator(0)

    def ours(x, state):
        mapping = [(seed_generator.state, state)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            y = keras_latent.ops.gumbel_softmax(
                x, TEMPERATURE, hard=hard, seed=seed_generator
            )
            state = scope.get_current_value(seed_generator.state)
        return y, state

    def one_liner(x, key):
        key, subkey = jax.random.split(key)
        y = jax.nn.softmax(
            (x + jax.random.gumbel(subkey, x.shape)) / TEMPERATURE
        )
        if hard:
            one_hot = jax.nn.one_hot(jnp.argmax(y, -1), y.shape[-1])
            y = one_hot + (y - jax.lax.stop_gradient(y))
        return y, key

    def compiled(sample):
        if not backward:
            return jax.jit(sample)

        def loss(x, state):
            y, state = sample(x, state)
            return jnp.sum(y * weights), state

        return jax.jit(jax.grad(loss, has_aux=True))

    candidates = []
    for name, sample, state in (
        ("keras_latent", ours, seed_generator.state.value),
        ("jax.jit", one_liner, jax.random.key(0)),
    ):
        function = compiled(sample)
        carry = {"state": state}

        def run(function=function, carry=carry):
            result, carry["state"] = function(logits, carry["state"])
            return result.block_until_ready()

        candidates.append((name, run))
    return candidates


def torch_candidates(logits, weights, hard, backward):
    import keras
    import torch
    import torch.nn.functional as F

    import keras_latent

    torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    logits = torch.tensor(logits, device=device, requires_grad=backward)
    weights = torch.tensor(weights, device=device)
    seed_generator = keras.random.SeedGenerator(0)

    def ours(x):
        return keras_latent.ops.gumbel_softmax(
            x, TEMPERATURE, hard=hard, seed=seed_generator
        )

    def functional(x):
        return F.gumbel_softmax(x, tau=TEMPERATURE, hard=hard)

    def timed(sample):
        def run():
            if backward:
                (sample(logits) * weights).sum().backward()
                logits.grad = None
            else:
                with torch.no_grad():
                    sample(logits)
            if device == "cuda":
                torch.cuda.synchronize()

        return run

    return [
        ("keras_latent", timed(ours)),
        ("F.gumbel_softmax", timed(functional)),
    ]


# Each backend's ways of compiling, a row label and a builder each. Keras
# compiles a TensorFlow training step with XLA on a GPU or TPU (its
# default `jit_compile="auto"`; not on a CPU), and with `jit_compile=True`,
# so TensorFlow is timed both ways.
CANDIDATE_BUILDERS = {
    "tensorflow": (
        ("tensorflow", tensorflow_candidates),
        (
            "tensorflow, XLA",
            functools.partial(tensorflow_candidates, jit_compile=True),
        ),
    ),
    "jax": (("jax", jax_candidates),),
    "torch": (("torch", torch_candidates),),
}


"""
## Timing
"""


def clock_function(clock):
    return time.process_time if clock == "cpu" else time.perf_counter


def calls_per_block(run, clock, block_seconds):
    """How many calls of `run` fill about `block_seconds` of `clock`."""
    start = clock()
    run()
    elapsed = max(clock() - start, 1e-6)
    return max(1, int(block_seconds / elapsed))


def time_candidates(candidates, repeats, clock, block_seconds):
    """Seconds per call of each candidate in each round, rotated rounds."""
    for _, run in candidates:
        run()  # compiles, and warms the allocator
    calls = {
        name: calls_per_block(run, clock, block_seconds)
        for name, run in candidates
    }
    runs = dict(candidates)
    seconds = {name: [] for name in runs}
    for name in turns.in_turns(runs, repeats):
        start = clock()
        for _ in range(calls[name]):
            runs[name]()
        seconds[name].append((clock() - start) / calls[name])
    return seconds


def measure_backend(backend, shapes, repeats, clock_name, block_seconds):
    """Rows of per-call times and ratios for the running backend."""
    clock = clock_function(clock_name)
    rng = np.random.default_rng(0)
    rows = []
    for shape in shapes:
        logits = rng.normal(size=shape).astype("float32")
        weights = rng.normal(size=shape).astype("float32")
        for label, build in CANDIDATE_BUILDERS[backend]:
            for pass_name in PASSES:
                for variant in VARIANTS:
                    candidates = build(
                        logits,
                        weights,
                        hard=variant == "hard",
                        backward=pass_name == "forward+backward",
                    )
                    seconds = time_candidates(
                        candidates, repeats, clock, block_seconds
                    )
                    rows.append(
                        summarize_case(
                            label, shape, pass_name, variant, seconds
                        )
                    )
    return rows


def summarize_case(backend, shape, pass_name, variant, seconds):
    """Median times, and the median per-round ratio to each peer."""
    ours = seconds["keras_latent"]
    peers = {}
    for name, times in seconds.items():
        if name == "keras_latent":
            continue
        ratios = [
            mine / theirs for mine, theirs in zip(ours, times, strict=True)
        ]
        peers[name] = {
            "milliseconds": 1e3 * statistics.median(times),
            "ratio": statistics.median(ratios),
            "ratio_range": [min(ratios), max(ratios)],
        }
    return {
        "backend": backend,
        "shape": list(shape),
        "pass": pass_name,
        "variant": variant,
        "milliseconds": 1e3 * statistics.median(ours),
        "rounds": len(ours),
        "peers": peers,
    }


"""
## The table
"""


def fastest_peer(row):
    return min(row["peers"].items(), key=lambda item: item[1]["milliseconds"])


def results_table(rows, shapes):
    lines = [
        "| backend | shape | pass | variant | ours (ms) | peer | peer (ms) "
        "| ratio (range) | goal | met |",
        "|---|---|---|---|---:|---|---:|---|---:|---|",
    ]
    for row in rows:
        goal = goal_for(row["shape"], shapes)
        best_name, _ = fastest_peer(row)
        for name, peer in row["peers"].items():
            low, high = peer["ratio_range"]
            met = "yes" if peer["ratio"] <= goal else "no"
            lines.append(
                f"| {row['backend']} | {format_shape(row['shape'])} "
                f"| {row['pass']} | {row['variant']} "
                f"| {row['milliseconds']:.3f} | {name} "
                f"| {peer['milliseconds']:.3f} "
                f"| {peer['ratio']:.2f} ({low:.2f}-{high:.2f}) "
                f"| {goal:.1f} | {met if name == best_name else '-'} |"
            )
    return "\n".join(lines)


def write_results(output_dir, rows, config):
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    table = results_table(rows, config["shapes"])
    with open(output_dir / "results.json", "w") as file:
        json.dump({"config": config, "rows": rows}, file, indent=2)
    with open(output_dir / "results.md", "w") as file:
        file.write(
            "# Gumbel-softmax throughput\n\n"
            f"Command: `{config['command']}`  \n"
            f"Date: {config['date']}; clock: {config['clock']}; "
            f"{config['repeats']} rounds; machine: {config['machine']}\n\n"
            "Ratio: ours over the peer's time, median over rounds; "
            "`met` is judged against the fastest peer of the row.\n\n"
            f"{table}\n"
        )
    return table


def machine_description():
    import platform

    description = f"{platform.machine()}, {os.cpu_count()} CPUs"
    try:
        import torch

        if torch.cuda.is_available():
            description += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return description


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Time keras-latent's gumbel_softmax against each "
        "backend's peers.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        type=parse_shape,
        default=list(DEFAULT_SHAPES),
        help="logits shapes; the largest has the goal 1.0, the others 1.1",
    )
    parser.add_argument("--repeats", type=int, default=9, help="rounds")
    parser.add_argument(
        "--block-seconds",
        type=float,
        default=0.2,
        help="the time of one candidate's block of calls in a round",
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: the process's CPU time, one thread; wall: elapsed time "
        "after the device finishes (use it on a GPU)",
    )
    parser.add_argument("--output-dir", default="outputs/gumbel_throughput")
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--child-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.block_seconds <= 0:
        parser.error("--repeats must be >= 1 and --block-seconds > 0")
    return args


def child_command(backend, args, json_path):
    return [
        sys.executable,
        str(pathlib.Path(__file__).resolve()),
        "--child",
        backend,
        "--child-json",
        str(json_path),
        "--shapes",
        *(format_shape(shape) for shape in args.shapes),
        "--repeats",
        str(args.repeats),
        "--block-seconds",
        str(args.block_seconds),
        "--clock",
        args.clock,
    ]


def run_backend(backend, args):
    """Runs one backend in its own process; returns its rows."""
    with tempfile.TemporaryDirectory() as directory:
        json_path = pathlib.Path(directory) / "rows.json"
        return backend_workers.run_worker(
            backend,
            child_command(backend, args, json_path),
            json_path,
            single_thread=args.clock == "cpu",
        )


def main(argv=None):
    args = parse_arguments(argv)
    if args.child:
        rows = measure_backend(
            args.child,
            args.shapes,
            args.repeats,
            args.clock,
            args.block_seconds,
        )
        with open(args.child_json, "w") as file:
            json.dump(rows, file)
        return 0
    rows = []
    for backend in args.backends:
        rows.extend(run_backend(backend, args))
    config = {
        "command": "python benchmarks/gumbel_throughput.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "clock": args.clock,
        "repeats": args.repeats,
        "shapes": [list(shape) for shape in args.shapes],
        "machine": machine_description(),
    }
    table = write_results(args.output_dir, rows, config)
    print(table)
    print(f"Wrote {args.output_dir}/results.md and results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
