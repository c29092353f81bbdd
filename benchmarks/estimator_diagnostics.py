"""Bias, variance and mean squared error of every gradient estimator.

For a few categorical variables the gradient of `E_q[f(z)]` with respect to
the logits can be enumerated exactly (`keras_latent.diagnostics`). This
script draws many independent single-step estimates of that gradient from
each estimator of `keras_latent.ops` and compares them with it:

- `gumbel_softmax`: the relaxed sample, `f` evaluated at it;
- `straight_through_gumbel`, `straight_through` (Bengio et al. 2013),
  `reinmax` (Liu et al. 2023);
- `gumbel_rao_10`, `gumbel_rao_100`: Gumbel-Rao with 10 and 100 conditional
  Gumbel draws (Paulus et al. 2021), one evaluation of `f` each;
- `reinforce_loo_2`, `reinforce_loo_10`: the score-function estimator with
  a leave-one-out baseline (Kool et al. 2019) on S = 2 and 10 exact samples,
  which costs S evaluations of `f` (the others cost one).

Two objectives, each over `N` variables of `K` categories, with `N` the
largest number up to 4 whose `K ** N` configurations stay at most 4096
(K = 2: N = 4; K = 10: N = 3; K = 64: N = 2), and logits drawn once from
N(0, 1):

- `quadratic`, the toy problem of REBAR (Tucker et al. 2017, section 6.1),
  `f(b) = (b - 0.45)^2` for a Bernoulli `b`, which RELAX (Grathwohl et al.
  2018; `loss_func` in its code, `((b - t) ** 2).mean(1)`) and later papers
  use over several variables. Its generalization to K categories here is
  ours: category k has the value `v_k = k / (K - 1)` in [0, 1], and
  `f(z) = (1 / N) sum_n (<z_n, v> - 0.45)^2`. For K = 2, `<z_n, v>` is the
  Bernoulli `b_n`, and `f` is the toy problem exactly. A relaxed `z` gives
  the value between categories that the relaxation interpolates. (Paulus
  et al. 2021 also use a quadratic toy problem; its exact form could not be
  checked from the sources available when this was written, so none is
  claimed here.)
- `decoder`: the decoder of `examples/categorical_vae.py` (256 and 512 ReLU
  units, one logit per pixel) with Keras's default initialization (Glorot
  uniform kernels, zero biases) drawn by NumPy at a fixed seed, untrained,
  on the first binarized image of the embedded digits (64 pixels); `f(z)`
  is the binary cross-entropy summed over the pixels.

For each estimator, temperature and objective, with `g_i` the estimate of
draw i and `e` the exact gradient (all `N * K` logits as one vector):

- bias: `||mean_i g_i - e||`, with its Monte Carlo standard error
  `sqrt(variance / draws)` (the noise of the mean; a bias below about twice
  it is not resolved);
- variance: `mean_i ||g_i - mean_j g_j||^2`, the total over coordinates;
- mean squared error: `mean_i ||g_i - e||^2`, which equals
  `bias^2 + variance` exactly (checked on every row).

Bias and the root of the variance and MSE are reported relative to `||e||`,
the MSE and variance relative to `||e||^2`: a relative MSE of 1 is the error
of always returning zero. Every estimator sees the same uniform noise (common
random numbers): the first slice gives the same exact sample to every
one-hot estimator, the following slices the Gumbel-Rao conditional draws and
the extra REINFORCE samples.

Run it with the backend of your choice:

    KERAS_BACKEND=jax python benchmarks/estimator_diagnostics.py

    python benchmarks/estimator_diagnostics.py --quick  # a smoke test

It writes `results.md` (the tables), `results.json` (every number and the
settings) and `mse_vs_temperature.png` to `--output-dir` (default
`outputs/estimator_diagnostics`), and prints the tables.
"""

import argparse
import json
import math
import os
import sys
import time

import keras
import numpy as np
from keras import ops

import keras_latent
from keras_latent import diagnostics

# The data loader lives in examples/, beside this folder.
EXAMPLES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"
)
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

import image_datasets  # noqa: E402

OBJECTIVES = ("quadratic", "decoder")
QUADRATIC_TARGET = 0.45
MAX_VARIABLES = 4
MAX_CONFIGURATIONS = 4096
DEFAULT_TEMPERATURES = (0.1, 0.3, 0.5, 1.0)
DEFAULT_NUM_CATEGORIES = (2, 10, 64)
DEFAULT_GUMBEL_RAO_SAMPLES = (10, 100)
DEFAULT_LOO_SAMPLES = (2, 10)
# The smoke test's settings.
QUICK = {
    "draws": 200,
    "temperatures": (0.3, 1.0),
    "num_categories": (2, 10),
}
# Uniform draws below this are clipped, as `keras_latent.ops` does, so
# that the Gumbel noise -log(-log(u)) stays finite.
TINY = float(np.finfo(np.float32).tiny)
ONE_MINUS_EPSILON = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def num_variables_for(num_categories):
    """The largest N <= MAX_VARIABLES with K ** N <= MAX_CONFIGURATIONS."""
    num_variables = 1
    while (
        num_variables < MAX_VARIABLES
        and num_categories ** (num_variables + 1) <= MAX_CONFIGURATIONS
    ):
        num_variables += 1
    return num_variables


"""
## The objectives

Each maps one-hot or relaxed samples of shape `(batch, N, K)` to one value
per sample, written with `keras.ops` so that every backend differentiates
it.
"""


def quadratic_objective(num_categories):
    """f(z) = (1 / N) sum_n (<z_n, v> - 0.45)^2, v_k = k / (K - 1)."""
    values = ops.convert_to_tensor(
        np.linspace(0.0, 1.0, num_categories, dtype="float32")
    )

    def objective(samples):
        scalars = ops.sum(samples * values, axis=-1)
        return ops.mean((scalars - QUADRATIC_TARGET) ** 2, axis=-1)

    return objective


def decoder_objective(num_variables, num_categories, seed):
    """The summed binary cross-entropy of an untrained VAE decoder on one
    binarized digit image."""
    (images, _), _ = image_datasets.load_images("digits", binarize=True)
    image = ops.convert_to_tensor(images[0].astype("float32"))
    decoder = keras.Sequential(
        [
            keras.Input((num_variables, num_categories)),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(image.shape[0]),
        ],
        name="decoder",
    )
    # Keras's default Glorot-uniform kernels and zero biases, drawn by NumPy
    # so that every backend measures the same decoder.
    rng = np.random.default_rng(seed)
    for layer in decoder.layers[1:]:
        fan_in, fan_out = layer.kernel.shape
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        layer.kernel.assign(
            rng.uniform(-limit, limit, (fan_in, fan_out)).astype("float32")
        )

    def objective(samples):
        # The decoder takes one batch axis; REINFORCE brings a sample axis.
        batch_shape = ops.shape(samples)[:-2]
        flat = ops.reshape(samples, (-1, num_variables, num_categories))
        pixel_logits = ops.reshape(decoder(flat), (*batch_shape, -1))
        # -log Bernoulli(x; sigmoid(l)) = softplus(l) - x l, finite for any l.
        return ops.sum(ops.softplus(pixel_logits) - image * pixel_logits, -1)

    return objective


def make_objective(name, num_variables, num_categories, seed):
    if name == "quadratic":
        return quadratic_objective(num_categories)
    return decoder_objective(num_variables, num_categories, seed)


"""
## Per-draw gradients

Keras 3 has no backend-agnostic `grad`; this is the one place that asks
the backend. Each row of the logits is an independent draw, so the gradient
of the summed losses with respect to the logits holds, in each row, that
draw's estimate. A loss takes the logits, the temperature and the uniform
noise as arguments, so that JAX compiles it once per estimator and shape
rather than once per temperature and batch (its op-by-op mode would
compile every primitive anyway, more slowly).
"""


def gradient_function(loss):
    """`(logits, temperature, noise) -> d sum(loss) / d logits`, a float64
    NumPy array of the shape of `logits`."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        compiled = jax.jit(jax.grad(lambda *args: ops.sum(loss(*args))))

        def gradient(logits, temperature, noise):
            return compiled(logits, np.float32(temperature), noise)

    elif backend == "tensorflow":
        import tensorflow as tf

        def gradient(logits, temperature, noise):
            logits = tf.convert_to_tensor(logits)
            with tf.GradientTape() as tape:
                tape.watch(logits)
                total = ops.sum(loss(logits, temperature, noise))
            return tape.gradient(total, logits)

    elif backend == "torch":
        import torch

        def gradient(logits, temperature, noise):
            logits = torch.tensor(logits, requires_grad=True)
            total = ops.sum(loss(logits, temperature, noise))
            return torch.autograd.grad(total, logits)[0]

    else:
        raise ValueError(f"No gradient for the backend {backend!r}.")

    def gradient_as_numpy(logits, temperature, noise):
        result = gradient(logits, temperature, noise)
        return ops.convert_to_numpy(result).astype("float64")

    return gradient_as_numpy


def estimator_loss(estimator, objective):
    """The loss of one estimator, `(logits, temperature, noise) -> f` per
    draw, with `noise` the estimator's slices `(slices, draws, N, K)` of
    the uniform draws that every estimator shares."""
    name, _, count = estimator.rpartition("_")
    if name == "reinforce_loo":
        num_samples = int(count)

        def loss(logits, temperature, noise):
            tiled = ops.broadcast_to(logits, (num_samples, *logits.shape))
            # Exact samples by Gumbel-max on the shared noise, held fixed:
            # the score term alone carries the gradient to the logits.
            samples = ops.stop_gradient(
                keras_latent.ops.straight_through_sample(tiled, noise=noise)
            )
            log_probs = ops.sum(
                keras_latent.ops.one_hot_categorical_log_prob(samples, tiled),
                axis=-1,
            )
            return keras_latent.ops.reinforce_loo_surrogate(
                log_probs, objective(samples)
            )

        return loss
    if name == "gumbel_rao":
        num_samples = int(count)

        def loss(logits, temperature, noise):
            sample = keras_latent.ops.gumbel_rao(
                logits, temperature, num_samples, noise=noise
            )
            return objective(sample)

        return loss

    def loss(logits, temperature, noise):
        sample, _ = keras_latent.ops.categorical_estimator(
            logits, estimator, temperature, noise=noise[0]
        )
        return objective(sample)

    return loss


def estimator_names(gumbel_rao_samples, loo_samples):
    return [
        "gumbel_softmax",
        "straight_through_gumbel",
        "straight_through",
        *(f"gumbel_rao_{k}" for k in gumbel_rao_samples),
        "reinmax",
        *(f"reinforce_loo_{s}" for s in loo_samples),
    ]


def is_temperature_free(estimator):
    """Whether the estimator's gradient ignores the temperature."""
    return estimator == "straight_through" or estimator.startswith(
        "reinforce_loo_"
    )


def noise_slices(estimator):
    """How many slices of uniform noise `estimator` reads."""
    name, _, count = estimator.rpartition("_")
    if name == "gumbel_rao":
        return int(count) + 1
    if name == "reinforce_loo":
        return int(count)
    return 1


"""
## Statistics against the exact gradient
"""


def error_statistics(gradients, exact):
    """Bias, variance and MSE of the rows of `gradients` (draws, D) against
    `exact` (D,), absolute and relative to ||exact||."""
    draws = gradients.shape[0]
    mean = gradients.mean(axis=0)
    bias = float(np.linalg.norm(mean - exact))
    variance = float(np.mean(np.sum((gradients - mean) ** 2, axis=1)))
    squared_errors = np.sum((gradients - exact) ** 2, axis=1)
    mse = float(np.mean(squared_errors))
    if not math.isclose(mse, bias**2 + variance, rel_tol=1e-9, abs_tol=1e-15):
        raise RuntimeError(
            f"MSE {mse} differs from bias^2 + variance {bias**2 + variance}."
        )
    scale = float(np.linalg.norm(exact))
    return {
        "bias": bias,
        "bias_standard_error": math.sqrt(variance / draws),
        "variance": variance,
        "mse": mse,
        "mse_standard_error": float(np.std(squared_errors) / math.sqrt(draws)),
        "exact_norm": scale,
        "relative_bias": bias / scale,
        "relative_bias_standard_error": math.sqrt(variance / draws) / scale,
        "relative_std": math.sqrt(variance) / scale,
        "relative_mse": mse / scale**2,
    }


def measure(objective_name, num_categories, estimators, args):
    """The rows of one (objective, K) panel."""
    num_variables = num_variables_for(num_categories)
    rng = np.random.default_rng([args.seed, num_categories])
    logits = rng.normal(size=(num_variables, num_categories)).astype("float32")
    objective = make_objective(
        objective_name, num_variables, num_categories, args.seed
    )
    exact = ops.convert_to_numpy(
        diagnostics.exact_gradient(objective, logits, MAX_CONFIGURATIONS)
    ).astype("float64")
    settings = [
        (estimator, None if is_temperature_free(estimator) else temperature)
        for estimator in estimators
        for temperature in (
            [None] if is_temperature_free(estimator) else args.temperatures
        )
    ]
    gradients = {setting: [] for setting in settings}
    functions = {
        estimator: gradient_function(estimator_loss(estimator, objective))
        for estimator in estimators
    }
    slices = max(noise_slices(estimator) for estimator in estimators)
    for start in range(0, args.draws, args.batch_size):
        batch = min(args.batch_size, args.draws - start)
        noise = rng.uniform(
            size=(slices, batch, num_variables, num_categories)
        ).astype("float32")
        noise = np.clip(noise, TINY, ONE_MINUS_EPSILON)
        batch_logits = np.ascontiguousarray(
            np.broadcast_to(logits, noise.shape[1:])
        )
        for estimator, temperature in settings:
            # The temperature-free estimators read none; any will do.
            gradient = functions[estimator](
                batch_logits,
                1.0 if temperature is None else temperature,
                noise[: noise_slices(estimator)],
            )
            gradients[estimator, temperature].append(
                gradient.reshape(batch, -1)
            )
    rows = []
    for (estimator, temperature), parts in gradients.items():
        statistics = error_statistics(np.concatenate(parts), exact.reshape(-1))
        rows.append(
            {
                "objective": objective_name,
                "num_categories": num_categories,
                "num_variables": num_variables,
                "estimator": estimator,
                "temperature": temperature,
                **statistics,
            }
        )
    return rows


"""
## Tables and plot
"""


def format_temperature(temperature):
    return "any" if temperature is None else f"{temperature:g}"


def full_table(rows):
    lines = [
        "| objective | K | N | estimator | temperature | bias / norm "
        "| std / norm | MSE / norm² |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['objective']} | {row['num_categories']} "
            f"| {row['num_variables']} | {row['estimator']} "
            f"| {format_temperature(row['temperature'])} "
            f"| {row['relative_bias']:.3g} ± "
            f"{row['relative_bias_standard_error']:.2g} "
            f"| {row['relative_std']:.3g} | {row['relative_mse']:.3g} |"
        )
    return "\n".join(lines)


def summary_table(rows, temperatures):
    """Relative MSE (relative bias) per estimator and temperature, one row
    per (objective, K, estimator)."""
    header = " | ".join(f"t = {t:g}" for t in temperatures)
    lines = [
        f"| objective | K (N) | estimator | {header} |",
        "|---|---|---|" + "---|" * len(temperatures),
    ]
    for row in rows:
        if row["temperature"] not in (None, temperatures[0]):
            continue
        cells = []
        for temperature in temperatures:
            match = next(
                other
                for other in rows
                if other["objective"] == row["objective"]
                and other["num_categories"] == row["num_categories"]
                and other["estimator"] == row["estimator"]
                and other["temperature"] in (None, temperature)
            )
            cells.append(
                f"{match['relative_mse']:.3g} ({match['relative_bias']:.2g})"
            )
        lines.append(
            f"| {row['objective']} | {row['num_categories']} "
            f"({row['num_variables']}) | {row['estimator']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def write_markdown(path, summary, full, config):
    lines = [
        "# Gradient estimators against the exact gradient",
        "",
        f"Backend `{config['backend']}`, {config['draws']} draws per row, "
        f"seed {config['seed']}, {config['total_seconds']:.0f} s. Each cell: "
        "the mean squared error of one draw's gradient relative to "
        "||exact||², and in parentheses the bias relative to ||exact|| "
        "(see the docstring of `benchmarks/estimator_diagnostics.py`). "
        "straight_through and reinforce_loo do not depend on the temperature.",
        "",
        summary,
        "",
        "## Every row",
        "",
        "Bias ± its Monte Carlo standard error; std is the square root of the "
        "total variance.",
        "",
        full,
        "",
    ]
    with open(path, "w") as file:
        file.write("\n".join(lines))


def plot_mse(path, rows, objectives, categories, estimators):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib import ticker

    figure, axes = pyplot.subplots(
        len(objectives),
        len(categories),
        figsize=(4.5 * len(categories), 3.8 * len(objectives)),
        squeeze=False,
        layout="constrained",
    )
    colors = pyplot.get_cmap("tab10").colors
    for row_index, objective in enumerate(objectives):
        for column_index, num_categories in enumerate(categories):
            axis = axes[row_index][column_index]
            panel = [
                row
                for row in rows
                if row["objective"] == objective
                and row["num_categories"] == num_categories
            ]
            temperatures = sorted(
                {r["temperature"] for r in panel if r["temperature"]}
            )
            for index, estimator in enumerate(estimators):
                points = [r for r in panel if r["estimator"] == estimator]
                style = {"color": colors[index % len(colors)]}
                if is_temperature_free(estimator):
                    # A flat line: the same estimate at every temperature.
                    values = [points[0]["relative_mse"]] * len(temperatures)
                    style["linestyle"] = "--"
                else:
                    points.sort(key=lambda r: r["temperature"])
                    values = [r["relative_mse"] for r in points]
                    style["marker"] = "o"
                axis.plot(temperatures, values, label=estimator, **style)
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xticks(temperatures, [f"{t:g}" for t in temperatures])
            axis.xaxis.set_minor_formatter(ticker.NullFormatter())
            axis.yaxis.set_minor_formatter(ticker.NullFormatter())
            axis.set_title(
                f"{objective}, K = {num_categories}, "
                f"N = {panel[0]['num_variables']}"
            )
            axis.set_xlabel("temperature")
            axis.set_ylabel("MSE / ||exact gradient||²")
            axis.grid(alpha=0.3, which="both")
    axes[0][-1].legend(
        fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5)
    )
    figure.suptitle("Single-draw gradient error against the exact gradient")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)


"""
## Running it
"""


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--objectives",
        nargs="+",
        choices=OBJECTIVES,
        default=list(OBJECTIVES),
        help="default: both",
    )
    parser.add_argument(
        "--temperatures",
        type=float,
        nargs="+",
        default=list(DEFAULT_TEMPERATURES),
        help="default: 0.1 0.3 0.5 1",
    )
    parser.add_argument(
        "--num-categories",
        type=int,
        nargs="+",
        default=list(DEFAULT_NUM_CATEGORIES),
        help="K, each with its own number of variables (default: 2 10 64)",
    )
    parser.add_argument(
        "--gumbel-rao-samples",
        type=int,
        nargs="+",
        default=list(DEFAULT_GUMBEL_RAO_SAMPLES),
        help="the K of each Gumbel-Rao row (default: 10 100)",
    )
    parser.add_argument(
        "--loo-samples",
        type=int,
        nargs="+",
        default=list(DEFAULT_LOO_SAMPLES),
        help="the S of each REINFORCE-LOO row (default: 2 10)",
    )
    parser.add_argument(
        "--draws", type=int, default=4000, help="draws per row (default 4000)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        help="draws per gradient call (default 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: "
        + ", ".join(f"{k} {v}" for k, v in QUICK.items()).replace("_", "-"),
    )
    parser.add_argument("--output-dir", default="outputs/estimator_diagnostics")
    args = parser.parse_args(argv)
    if args.quick:
        args.draws = QUICK["draws"]
        args.temperatures = list(QUICK["temperatures"])
        args.num_categories = list(QUICK["num_categories"])
    if args.draws < 2 or args.batch_size < 1:
        parser.error("--draws must be at least 2 and --batch-size at least 1")
    if min(args.temperatures) <= 0:
        parser.error("--temperatures must be positive")
    if min(args.num_categories) < 2:
        parser.error("--num-categories must be at least 2")
    if min(args.gumbel_rao_samples) < 1 or min(args.loo_samples) < 2:
        parser.error(
            "--gumbel-rao-samples must be at least 1, --loo-samples at least 2"
        )
    args.temperatures = sorted(set(args.temperatures))
    args.num_categories = sorted(set(args.num_categories))
    args.objectives = [o for o in OBJECTIVES if o in args.objectives]
    return args


def main(argv=None):
    args = parse_arguments(argv)
    estimators = estimator_names(
        sorted(set(args.gumbel_rao_samples)), sorted(set(args.loo_samples))
    )
    os.makedirs(args.output_dir, exist_ok=True)
    print(
        f"Estimator diagnostics, backend {keras.backend.backend()}: "
        f"{len(estimators)} estimators, temperatures {args.temperatures}, "
        f"K {args.num_categories}, {args.draws} draws per row"
    )
    start = time.perf_counter()
    rows = []
    for objective in args.objectives:
        for num_categories in args.num_categories:
            panel_start = time.perf_counter()
            rows += measure(objective, num_categories, estimators, args)
            print(
                f"  {objective}, K = {num_categories}, "
                f"N = {num_variables_for(num_categories)}: "
                f"{time.perf_counter() - panel_start:.1f} s"
            )
    total_seconds = time.perf_counter() - start

    config = {
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "keras_latent_version": keras_latent.__version__,
        "objectives": args.objectives,
        "temperatures": args.temperatures,
        "num_categories": args.num_categories,
        "num_variables": {k: num_variables_for(k) for k in args.num_categories},
        "estimators": estimators,
        "draws": args.draws,
        "seed": args.seed,
        "quadratic_target": QUADRATIC_TARGET,
        "total_seconds": total_seconds,
    }
    summary = summary_table(rows, args.temperatures)
    full = full_table(rows)
    write_markdown(
        os.path.join(args.output_dir, "results.md"), summary, full, config
    )
    with open(os.path.join(args.output_dir, "results.json"), "w") as file:
        json.dump({"config": config, "rows": rows}, file, indent=2)
    plot_mse(
        os.path.join(args.output_dir, "mse_vs_temperature.png"),
        rows,
        args.objectives,
        args.num_categories,
        estimators,
    )
    print()
    print(
        "Relative MSE of one draw's gradient (relative bias), "
        "against the exact gradient:"
    )
    print(summary)
    print(
        f"\n{len(rows)} rows in {total_seconds:.0f} s. Wrote "
        f"{args.output_dir}/"
        "{results.md, results.json, mse_vs_temperature.png}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
