"""Where the categorical VAE's training step time goes, on each backend.

Times, in one process per Keras backend (one thread per framework, one
backend after the other from this one invocation), the training step of
the categorical VAE of `examples/categorical_vae.py` on the digits (batches
of 100) as a ladder of candidates, each rung leaving out one layer of cost:

1. `fit`: `model.fit` of the example's keras-latent model on NumPy arrays,
   the user's path, with the example's `steps_per_execution` for the
   backend (all the epoch's steps in one call on TensorFlow and JAX, one
   on torch); on TensorFlow and JAX also `fit_one_step_per_call`, the same
   with `steps_per_execution=1`;
2. `fit_plain_keras`: `model.fit` of the same model in plain Keras
   (`benchmarks/keras_categorical_vae.py`: a hand-written sampling layer and
   `add_loss`), with the same `steps_per_execution` as 1;
3. `train_on_batch`: the keras-latent model's `train_on_batch` on a batch
   already converted to a backend tensor: no data adapter, epoch loop or
   callbacks;
4. `custom_step`: the keras-latent model trained by a hand-written step
   without Keras's trainer (no metrics, loss tracker or KL logging): the
   forward pass in training mode, the compiled loss plus `model.losses`,
   the backend's gradient (`tf.GradientTape` in a `tf.function` compiled as
   `fit` compiles its step; torch autograd, eager as Keras runs it;
   `jax.value_and_grad` of `stateless_call` under `jax.jit`), and
   `optimizer.apply`; `custom_gradients`, the same without
   `optimizer.apply`;
5. `categorical_latent` and `gumbel_softmax_sampling`: the latent layer
   alone, forward and backward (the gradient of a weighted sum of the
   sample, plus its KL loss, with respect to fixed logits of shape
   (100, 300)), keras-latent's `CategoricalLatent` against the plain-Keras
   hand-written layer, compiled as in 4;
6. on the torch backend only, `plain_pytorch_epoch`, `plain_pytorch_step`
   and `plain_pytorch_gradients`: `benchmarks/torch_categorical_vae.py`'s
   epoch loop (shuffled batches, a host read of each loss), its bare step
   on a ready batch, and that step without `optimizer.step()`, in the same
   process as the Keras candidates.

    python benchmarks/vae_step_profile.py
    python benchmarks/vae_step_profile.py --backends torch --rounds 15

The candidates alternate in rounds, in an order rotated each round; a
candidate's figure of a round is the process's CPU time
(`time.process_time`) of `--steps` consecutive steps (one epoch of
`--steps` batches for `fit`, timed by the example's epoch timer, which
leaves out `fit`'s set-up of each call) divided by their number. Every
candidate runs twice before the first round, so that compilation is left
out. The table gives, per backend, the median over rounds and the range
of each candidate's milliseconds per step, of the differences that name
the costs (each difference taken within a round), and of the ratios to
plain Keras and to plain PyTorch. `--output-json` also writes every
round's figures.
"""

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
for folder in (ROOT / "benchmarks", ROOT / "examples"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import backend_workers  # noqa: E402
import turns  # noqa: E402

BACKENDS = ("tensorflow", "torch", "jax")
BATCH_SIZE = 100
NUM_VARIABLES = 30
NUM_CATEGORIES = 10
# The example's default run on the digits: 100 epochs of 15 steps; the
# schedule only sets the temperature each step reads.
SCHEDULE_STEPS = 1500
SEED = 0

CANDIDATES = {
    "fit": "1. fit, keras-latent (example's steps_per_execution)",
    "fit_one_step_per_call": "1'. fit, keras-latent, steps_per_execution 1",
    "fit_plain_keras": "2. fit, plain Keras (same steps_per_execution)",
    "train_on_batch": "3. train_on_batch on a tensor batch",
    "custom_step": "4. hand-written step, no Keras trainer",
    "custom_gradients": "4'. the same without the optimizer update",
    "categorical_latent": "5. CategoricalLatent alone, fwd+bwd",
    "gumbel_softmax_sampling": "5'. hand-written sampling layer, fwd+bwd",
    "plain_pytorch_epoch": "6. plain PyTorch, its epoch loop",
    "plain_pytorch_step": "6'. plain PyTorch, its step on a tensor batch",
    "plain_pytorch_gradients": "6''. the same without optimizer.step()",
}
# name: (description, minuend, subtrahend); a difference is reported where
# both candidates ran.
DIFFERENCES = {
    "multi_step_saving": (
        "steps_per_execution > 1 in fit (1 - 1')",
        "fit",
        "fit_one_step_per_call",
    ),
    "data_path_and_fit_loop": (
        "data path + fit loop, one step per call (1' - 3, or 1 - 3)",
        "fit_one_step_per_call",
        "train_on_batch",
    ),
    "trainer_overhead": (
        "Keras trainer overhead (3 - 4)",
        "train_on_batch",
        "custom_step",
    ),
    "model_compute": (
        "model compute, forward+backward+Adam (4)",
        "custom_step",
        None,
    ),
    "optimizer_update": (
        "Keras's Adam update (4 - 4')",
        "custom_step",
        "custom_gradients",
    ),
    "latent_layer_extra": (
        "our layer's extra over the hand-written one (5 - 5')",
        "categorical_latent",
        "gumbel_softmax_sampling",
    ),
    "over_plain_keras": (
        "keras-latent over plain Keras in fit (1 - 2)",
        "fit",
        "fit_plain_keras",
    ),
    "fit_over_plain_pytorch": (
        "fit over plain PyTorch's epoch (1 - 6)",
        "fit",
        "plain_pytorch_epoch",
    ),
    "compute_over_plain_pytorch": (
        "hand-written step over plain PyTorch's step (4 - 6')",
        "custom_step",
        "plain_pytorch_step",
    ),
    "plain_pytorch_optimizer_update": (
        "torch.optim.Adam's update (6' - 6'')",
        "plain_pytorch_step",
        "plain_pytorch_gradients",
    ),
    "gradients_over_plain_pytorch": (
        "forward+backward over plain PyTorch's (4' - 6'')",
        "custom_gradients",
        "plain_pytorch_gradients",
    ),
}
RATIOS = {
    "keras_latent_to_plain_keras": (
        "keras-latent / plain Keras (1 / 2)",
        "fit",
        "fit_plain_keras",
    ),
    "fit_to_plain_pytorch": (
        "fit / plain PyTorch epoch (1 / 6)",
        "fit",
        "plain_pytorch_epoch",
    ),
    "custom_step_to_plain_pytorch": (
        "hand-written step / plain PyTorch step (4 / 6')",
        "custom_step",
        "plain_pytorch_step",
    ),
}


"""
## One backend (the worker)
"""


def training_data(steps):
    """`steps` batches of the binarized digits, cycled past the 15 of the
    training set."""
    import image_datasets
    import numpy as np

    (x_train, _), _ = image_datasets.load_images("digits")
    return np.resize(x_train, (steps * BATCH_SIZE, x_train.shape[1]))


def schedule():
    import categorical_vae

    return categorical_vae.temperature_schedule(SCHEDULE_STEPS, 1.0, 0.5)


def keras_latent_model(num_pixels, steps_per_execution):
    import categorical_vae
    import keras

    import keras_latent

    model = categorical_vae.build_model(
        num_pixels,
        NUM_VARIABLES,
        NUM_CATEGORIES,
        schedule(),
        "gumbel_softmax",
        None,
        SEED,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras_latent.losses.SummedBinaryCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return model


def plain_keras_model(num_pixels, steps_per_execution):
    import keras
    import keras_categorical_vae

    model = keras_categorical_vae.build_model(num_pixels, schedule(), SEED)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras_categorical_vae.summed_binary_crossentropy,
        steps_per_execution=steps_per_execution,
    )
    return model


def fit_candidate(model, images):
    """One epoch of `fit` over `images`, timed by the example's epoch
    timer: the epoch's CPU seconds, without `fit`'s set-up of each call,
    which a run of many epochs pays once."""
    import training_timer

    timer = training_timer.TrainingTimer()

    def run():
        model.fit(
            images,
            images,
            batch_size=BATCH_SIZE,
            epochs=1,
            verbose=0,
            callbacks=[timer],
        )
        return timer.cpu_seconds[-1]

    return run


def train_on_batch_candidate(model, batches):
    def run():
        for batch in batches:
            model.train_on_batch(batch, batch)

    return run


def custom_step_candidate(backend, model, batches, update=True):
    """The model's training steps without Keras's trainer; without the
    optimizer's update unless `update`."""
    import keras

    model.optimizer.build(model.trainable_variables)
    if backend == "jax":
        return jax_custom_step(model, batches, update)

    def loss_and_gradients(batch):
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                pixel_logits = model(batch, training=True)
                loss = model.loss(batch, pixel_logits) + sum(model.losses)
            return tape.gradient(loss, model.trainable_variables)
        model.zero_grad()
        pixel_logits = model(batch, training=True)
        loss = model.loss(batch, pixel_logits) + sum(model.losses)
        loss.backward()
        return [variable.value.grad for variable in model.trainable_variables]

    def step(batch):
        gradients = loss_and_gradients(batch)
        if not update:
            return gradients
        if backend == "torch":
            import torch

            with torch.no_grad():
                model.optimizer.apply(gradients, model.trainable_variables)
        else:
            model.optimizer.apply(gradients, model.trainable_variables)
        return gradients

    if backend == "tensorflow":
        import tensorflow as tf

        # Compiled as Keras compiles fit's step (no XLA on a CPU).
        step = tf.function(step, jit_compile=model.jit_compile)

    def run():
        for batch in batches:
            result = step(batch)
        keras.ops.convert_to_numpy(result[-1])

    return run


def jax_custom_step(model, batches, update):
    import functools

    import jax

    optimizer = model.optimizer

    def loss_function(trainable, non_trainable, batch):
        pixel_logits, non_trainable, losses = model.stateless_call(
            trainable, non_trainable, batch, training=True, return_losses=True
        )
        return model.loss(batch, pixel_logits) + sum(losses), non_trainable

    gradient = jax.value_and_grad(loss_function, has_aux=True)

    # The state's buffers are donated, as Keras's JAX trainer does.
    @functools.partial(jax.jit, donate_argnums=0)
    def step(state, batch):
        trainable, non_trainable, optimizer_state = state
        (_, non_trainable), gradients = gradient(
            trainable, non_trainable, batch
        )
        if not update:
            return trainable, non_trainable, optimizer_state, gradients
        trainable, optimizer_state = optimizer.stateless_apply(
            optimizer_state, gradients, trainable
        )
        return trainable, non_trainable, optimizer_state, gradients

    state = [
        [variable.value for variable in model.trainable_variables],
        [variable.value for variable in model.non_trainable_variables],
        [variable.value for variable in optimizer.variables],
    ]

    def run():
        for batch in batches:
            *new_state, gradients = step(state, batch)
            state[:] = new_state
        jax.block_until_ready(gradients)

    return run


def layer_candidate(backend, layer, logits, weights, steps):
    """`steps` forward and backward passes of `layer` alone on `logits`."""
    import keras
    from keras import ops

    layer(logits, training=True)

    def loss(sample, losses):
        return ops.sum(sample * weights) + sum(losses)

    if backend == "jax":
        import jax

        trainable = [variable.value for variable in layer.trainable_variables]

        def loss_function(x, non_trainable):
            sample, non_trainable, losses = layer.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True
            )
            return loss(sample, losses), non_trainable

        gradient = jax.jit(jax.grad(loss_function, has_aux=True))
        state = [[variable.value for variable in layer.non_trainable_variables]]

        def run():
            for _ in range(steps):
                result, state[0] = gradient(logits, state[0])
            jax.block_until_ready(result)

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=False)
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = loss(layer(x, training=True), layer.losses)
            return tape.gradient(value, x)

    else:
        import torch

        def step(x):
            x = x.detach().requires_grad_(True)
            value = loss(layer(x, training=True), layer.losses)
            (result,) = torch.autograd.grad(value, x)
            return result

    def run():
        for _ in range(steps):
            result = step(logits)
        keras.ops.convert_to_numpy(result)

    return run


def latent_layers(logits_shape):
    """keras-latent's layer and the plain-Keras one, as the models use
    them."""
    import keras_categorical_vae

    import keras_latent

    ours = keras_latent.layers.CategoricalLatent(
        NUM_VARIABLES,
        NUM_CATEGORIES,
        temperature=schedule(),
        estimator="gumbel_softmax",
        eval_mode="sample",
        seed=SEED,
    )
    theirs = keras_categorical_vae.GumbelSoftmaxSampling(schedule(), SEED)
    for layer in (ours, theirs):
        layer.build(logits_shape)
    return ours, theirs


def plain_pytorch_candidates(images, steps):
    import torch
    import torch_categorical_vae as plain

    generator = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    images = torch.from_numpy(images)
    model = plain.CategoricalVAE(images.shape[1], NUM_VARIABLES, NUM_CATEGORIES)
    optimizer = torch.optim.Adam(model.parameters(), lr=plain.LEARNING_RATE)
    state = {"step": 0, "temperature": 1.0, "schedule": schedule()}
    batches = [
        images[start : start + BATCH_SIZE]
        for start in range(0, len(images), BATCH_SIZE)
    ]

    def epoch():
        plain.train_epoch(model, optimizer, images, state, False, generator)

    def step():
        model.train()
        for batch in batches:
            plain.train_step(
                model, optimizer, batch, state["temperature"], False, generator
            )

    def gradients():
        """`plain.train_step` without `optimizer.step()`."""
        model.train()
        for batch in batches:
            logits = model.encode(batch)
            latent = plain.gumbel_softmax(
                logits, state["temperature"], False, generator
            )
            loss = model.negative_elbo(batch, latent, logits).mean()
            optimizer.zero_grad()
            loss.backward()

    return {
        "plain_pytorch_epoch": epoch,
        "plain_pytorch_step": step,
        "plain_pytorch_gradients": gradients,
    }


def candidates(backend, steps):
    """`({name: run}, steps_per_execution)`: each `run` takes `steps`
    training steps (or layer passes)."""
    import categorical_vae
    import data_parallel
    import keras
    import numpy as np

    # No `keras.utils.set_random_seed`: it imports TensorFlow into every
    # worker, and the times do not depend on the initial weights.
    images = training_data(steps)
    num_pixels = images.shape[1]
    multi_step = categorical_vae.steps_per_execution(
        steps, data_parallel.Engine("one device")
    )
    batches = [
        keras.ops.convert_to_tensor(images[start : start + BATCH_SIZE])
        for start in range(0, len(images), BATCH_SIZE)
    ]
    runs = {
        "fit": fit_candidate(keras_latent_model(num_pixels, multi_step), images)
    }
    if multi_step > 1:
        runs["fit_one_step_per_call"] = fit_candidate(
            keras_latent_model(num_pixels, 1), images
        )
    runs["fit_plain_keras"] = fit_candidate(
        plain_keras_model(num_pixels, multi_step), images
    )
    runs["train_on_batch"] = train_on_batch_candidate(
        keras_latent_model(num_pixels, 1), batches
    )
    for name, update in (("custom_step", True), ("custom_gradients", False)):
        model = keras_latent_model(num_pixels, 1)
        runs[name] = custom_step_candidate(backend, model, batches, update)
    rng = np.random.default_rng(SEED)
    logits_shape = (BATCH_SIZE, NUM_VARIABLES * NUM_CATEGORIES)
    logits = keras.ops.convert_to_tensor(
        rng.standard_normal(logits_shape).astype("float32")
    )
    weights = keras.ops.convert_to_tensor(
        rng.standard_normal((BATCH_SIZE, NUM_VARIABLES, NUM_CATEGORIES)).astype(
            "float32"
        )
    )
    ours, theirs = latent_layers(logits_shape)
    runs["categorical_latent"] = layer_candidate(
        backend, ours, logits, weights, steps
    )
    runs["gumbel_softmax_sampling"] = layer_candidate(
        backend, theirs, logits, weights, steps
    )
    if backend == "torch":
        runs.update(plain_pytorch_candidates(images, steps))
    return runs, multi_step


def profile(backend, rounds, steps):
    """Milliseconds per step of each candidate, one entry per round."""
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
    import keras

    runs, multi_step = candidates(backend, steps)
    # Twice: a second call may still trace again (JAX retraces once the
    # state it returned, of settled dtypes, comes back in).
    for _ in range(2):
        for run in runs.values():
            run()
    times = {name: [] for name in runs}
    for name in turns.in_turns(runs, rounds):
        start = time.process_time()
        seconds = runs[name]()
        if seconds is None:
            seconds = time.process_time() - start
        times[name].append(1000 * seconds / steps)
    return {
        "backend": backend,
        "keras_version": keras.__version__,
        "steps_per_execution": multi_step,
        "ms_per_step": times,
    }


"""
## All backends (the driver)
"""


def median_and_range(values):
    return {
        "median": statistics.median(values),
        "range": [min(values), max(values)],
        "per_round": values,
    }


def summarize(result):
    """Adds each candidate's, difference's and ratio's median and range
    over rounds; differences and ratios are taken within each round."""
    times = result["ms_per_step"]
    result["candidates"] = {
        name: median_and_range(values) for name, values in times.items()
    }
    differences = {}
    for name, (_, minuend, subtrahend) in DIFFERENCES.items():
        if name == "data_path_and_fit_loop" and minuend not in times:
            minuend = "fit"
        if minuend not in times or (subtrahend and subtrahend not in times):
            continue
        zero = [0.0] * len(times[minuend])
        differences[name] = median_and_range(
            [
                a - b
                for a, b in zip(
                    times[minuend], times.get(subtrahend, zero), strict=True
                )
            ]
        )
    ratios = {}
    for name, (_, numerator, denominator) in RATIOS.items():
        if numerator in times and denominator in times:
            ratios[name] = median_and_range(
                [
                    a / b
                    for a, b in zip(
                        times[numerator], times[denominator], strict=True
                    )
                ]
            )
    result["differences"] = differences
    result["ratios"] = ratios
    return result


def cell(summary, digits=3):
    low, high = summary["range"]
    return (
        f"{summary['median']:.{digits}f} ({low:.{digits}f} to "
        f"{high:.{digits}f})"
    )


def markdown_table(result):
    lines = [
        f"{result['backend']} (Keras {result['keras_version']}, fit with "
        f"steps_per_execution {result['steps_per_execution']}), CPU ms per "
        "step, median over rounds (range):",
        "",
        "| rung | ms per step |",
        "|---|---|",
    ]
    for name, summary in result["candidates"].items():
        lines.append(f"| {CANDIDATES[name]} | {cell(summary)} |")
    for name, summary in result["differences"].items():
        lines.append(f"| *{DIFFERENCES[name][0]}* | {cell(summary)} |")
    for name, summary in result["ratios"].items():
        lines.append(f"| **{RATIOS[name][0]}** | {cell(summary, 2)} |")
    return "\n".join(lines) + "\n"


def run_backend(backend, args, output_json):
    command = [sys.executable, __file__, "--worker", backend]
    command += ["--worker-output", str(output_json)]
    command += ["--rounds", str(args.rounds), "--steps", str(args.steps)]
    return summarize(backend_workers.run_worker(backend, command, output_json))


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--steps",
        type=int,
        default=15,
        help="training steps per candidate per round (15: one epoch of the "
        "digits)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: --rounds 1 --steps 2",
    )
    parser.add_argument("--output-json", help="also write the results here")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.steps = 1, 2
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    return args


def main(argv=None):
    args = parse_arguments(argv)
    if args.worker:
        result = profile(args.worker, args.rounds, args.steps)
        with open(args.worker_output, "w") as file:
            json.dump(result, file)
        return 0
    results = {
        "config": {
            "dataset": "digits",
            "batch_size": BATCH_SIZE,
            "rounds": args.rounds,
            "steps": args.steps,
            "date": time.strftime("%Y-%m-%d"),
        },
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as worker_dir:
        for backend in args.backends:
            output_json = pathlib.Path(worker_dir) / f"{backend}.json"
            result = run_backend(backend, args, output_json)
            results["backends"][backend] = result
            print(markdown_table(result), flush=True)
    if args.output_json:
        with open(args.output_json, "w") as file:
            json.dump(results, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
