"""Training with `fit` on every backend: KL logs, noise, seeds, precision.

These tests run compiled train steps (`tf.function`, `jax.jit`, or the
PyTorch trainer) and check what the user sees: the `<layer name>_kl`
values that a `keras_latent.models.LatentModel` logs in `fit` and
`evaluate` against a NumPy KL of the encoder's
logits, fresh noise at every step, reproducible seeds, finite
mixed-precision steps, and a loss that falls. Models and data are tiny so
that the file runs in seconds.
"""

import keras
import numpy as np
import pytest

from keras_latent.layers import BernoulliLatent
from keras_latent.layers import CategoricalLatent
from keras_latent.layers import GumbelSoftmax
from keras_latent.layers import SubsetSampler
from keras_latent.models import LatentModel
from tests import references
from tests.arrays import to_numpy

NUM_VARIABLES = 3
NUM_CATEGORIES = 4


def categorical_kl_per_example(logits):
    """KL(softmax(logits) || uniform), summed over the variables."""
    return np.sum(references.categorical_kl(logits), axis=-1)


def bernoulli_kl_per_example(logits):
    """KL(Bernoulli(sigmoid(logits)) || Bernoulli(1/2)), summed over units."""
    return np.sum(references.bernoulli_kl(logits), axis=-1)


def dense_output(layer, x):
    """A Dense layer's output recomputed in NumPy from its weights."""
    kernel, bias = layer.get_weights()
    return x.astype(np.float64) @ kernel + bias


class BatchLogs(keras.callbacks.Callback):
    """Records the logs of every training batch, as floats."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append({key: float(logs[key]) for key in logs})


def per_step_values(running_means):
    """Per-step values from the running means that `fit` logs per batch
    (equal batch sizes): v_k = k * m_k - (k - 1) * m_{k-1}."""
    running_means = np.asarray(running_means, np.float64)
    totals = running_means * np.arange(1, len(running_means) + 1)
    return np.diff(totals, prepend=0.0)


def two_latent_model():
    """An encoder with a categorical and a binary latent layer, frozen."""
    inputs = keras.Input((6,))
    categorical = CategoricalLatent(
        NUM_VARIABLES, NUM_CATEGORIES, kl_weight=0.5, name="categorical"
    )
    bernoulli = BernoulliLatent(kl_weight=0.5, name="bernoulli")
    z_categorical = categorical(
        keras.layers.Dense(12, name="categorical_encoder")(inputs)
    )
    z_bernoulli = bernoulli(
        keras.layers.Dense(5, name="bernoulli_encoder")(inputs)
    )
    features = keras.layers.Concatenate()(
        [keras.layers.Flatten()(z_categorical), z_bernoulli]
    )
    model = LatentModel(inputs, keras.layers.Dense(6)(features))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    return model


def numpy_kls(model, x):
    """The per-example KL of each latent layer, from the encoders' weights."""
    categorical_logits = dense_output(
        model.get_layer("categorical_encoder"), x
    ).reshape(-1, NUM_VARIABLES, NUM_CATEGORIES)
    bernoulli_logits = dense_output(model.get_layer("bernoulli_encoder"), x)
    return {
        "categorical_kl": categorical_kl_per_example(categorical_logits),
        "bernoulli_kl": bernoulli_kl_per_example(bernoulli_logits),
    }


def test_fit_and_evaluate_log_the_real_kl_of_each_latent_layer(rng):
    """With a frozen model (learning rate 0) each batch's logged KL is the
    NumPy KL of that batch. The two training batches have very different
    KLs, so a metric never updated (0), updated from the previous batch
    (stale), or weighted by kl_weight fails."""
    keras.utils.set_random_seed(1)
    model = two_latent_model()
    weights_before = [to_numpy(w) for w in model.trainable_weights]
    x_train = rng.normal(size=(16, 6)).astype("float32")
    x_train[8:] *= 4.0
    recorder = BatchLogs()
    history = model.fit(
        x_train,
        x_train,
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[recorder],
    )
    for before, after in zip(
        weights_before, model.trainable_weights, strict=True
    ):
        np.testing.assert_array_equal(to_numpy(after), before)

    for name, kl in numpy_kls(model, x_train).items():
        first, second = np.mean(kl[:8]), np.mean(kl[8:])
        assert first > 0.05 and second > 2 * first, (name, first, second)
        logged = [logs[name] for logs in recorder.batches]
        np.testing.assert_allclose(
            logged, [first, (first + second) / 2], rtol=1e-4, err_msg=name
        )
        np.testing.assert_allclose(
            history.history[name], [(first + second) / 2], rtol=1e-4
        )

    x_test = (2.0 * rng.normal(size=(24, 6))).astype("float32")
    results = model.evaluate(
        x_test, x_test, batch_size=8, verbose=0, return_dict=True
    )
    for name, kl in numpy_kls(model, x_test).items():
        expected = np.mean(kl.reshape(3, 8).mean(axis=1))
        np.testing.assert_allclose(results[name], expected, rtol=1e-4)


LAYER_FACTORIES = {
    "gumbel_softmax": lambda seed=None: GumbelSoftmax(seed=seed),
    "categorical_latent": lambda seed=None: CategoricalLatent(2, 3, seed=seed),
    "bernoulli_latent": lambda seed=None: BernoulliLatent(seed=seed),
    "subset_sampler": lambda seed=None: SubsetSampler(2, seed=seed),
}


def test_successive_compiled_train_steps_draw_new_noise():
    """A model with one output per layer, learning rate 0: the weights never
    change, so each output's loss changes from step to step only if the
    layer draws new noise inside the compiled step, also across two `fit`
    calls."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6)(inputs)
    outputs = {
        name: factory()(hidden) for name, factory in LAYER_FACTORIES.items()
    }
    outputs = {
        f"{name}_output": keras.layers.Reshape((6,), name=f"{name}_output")(
            output
        )
        for name, output in outputs.items()
    }
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss={name: "mse" for name in outputs},
        metrics={name: ["mse"] for name in outputs},
    )
    x = np.ones((24, 4), "float32")
    y = {name: np.zeros((24, 6), "float32") for name in outputs}
    first_fit, second_fit = BatchLogs(), BatchLogs()
    model.fit(x, y, batch_size=8, verbose=0, callbacks=[first_fit])
    y_first = {name: target[:8] for name, target in y.items()}
    model.fit(x[:8], y_first, batch_size=8, verbose=0, callbacks=[second_fit])
    for name in outputs:
        steps = per_step_values(
            [logs[f"{name}_mse"] for logs in first_fit.batches]
        )
        steps = np.append(steps, second_fit.batches[0][f"{name}_mse"])
        gaps = np.abs(steps[:, None] - steps[None, :]) + np.eye(len(steps))
        assert np.all(gaps > 1e-6), (name, steps)


@pytest.mark.parametrize("layer_name", sorted(LAYER_FACTORIES))
def test_a_fixed_seed_reproduces_training_outputs(layer_name, rng):
    factory = LAYER_FACTORIES[layer_name]
    x = rng.normal(size=(5, 4)).astype("float32")

    def training_outputs(seed):
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(6), factory(seed=seed)]
        )
        return [to_numpy(model(x, training=True)) for _ in range(2)]

    first, second = training_outputs(21), training_outputs(21)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])
    other_seed = training_outputs(22)
    assert not np.array_equal(first[0], other_seed[0])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_model_fits_without_nan(policy, rng):
    keras.config.set_dtype_policy(policy)
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    keras.utils.set_random_seed(4)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(12)(inputs)
    latents = [
        GumbelSoftmax(hard=True, seed=1)(hidden),
        CategoricalLatent(3, 4, kl="relaxed", name="categorical", seed=2)(
            hidden
        ),
        BernoulliLatent(temperature=0.5, name="bernoulli", seed=3)(hidden),
    ]
    for latent in latents:
        assert keras.backend.standardize_dtype(latent.dtype) == compute_dtype
    features = keras.layers.Concatenate()(
        [keras.layers.Flatten()(latent) for latent in latents]
    )
    model = LatentModel(inputs, keras.layers.Dense(6)(features))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = rng.normal(size=(16, 6)).astype("float32")
    history = model.fit(x, x, batch_size=8, epochs=1, verbose=0)
    for key in ["loss", "categorical_kl", "bernoulli_kl"]:
        assert np.isfinite(history.history[key][-1]), key
        assert history.history[key][-1] > 0.0, key
    for weight in model.trainable_weights:
        assert np.all(np.isfinite(to_numpy(weight))), weight.path


def prototype_data(rng, samples=64, size=12):
    """Binary vectors: 4 prototypes, each bit flipped with probability 0.05."""
    prototypes = rng.random((4, size)) < 0.5
    labels = rng.integers(0, 4, size=samples)
    flips = rng.random((samples, size)) < 0.05
    return (prototypes[labels] ^ flips).astype("float32")


def autoencoder(latent, latent_input_size):
    inputs = keras.Input((12,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    code = latent(keras.layers.Dense(latent_input_size)(hidden))
    hidden = keras.layers.Dense(16, activation="relu")(
        keras.layers.Flatten()(code)
    )
    outputs = keras.layers.Dense(12, activation="sigmoid")(hidden)
    model = LatentModel(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.03),
        loss="binary_crossentropy",
    )
    return model


@pytest.mark.parametrize("latent_name", ["categorical", "bernoulli"])
def test_a_small_vae_trains_and_its_loss_falls(latent_name, rng):
    """Reconstruction + KL of a tiny VAE, 8 epochs on 64 examples."""
    keras.utils.set_random_seed(5)
    if latent_name == "categorical":
        latent = CategoricalLatent(3, 4, kl_weight=0.01, seed=6)
        model = autoencoder(latent, 12)
    else:
        latent = BernoulliLatent(kl_weight=0.01, seed=6)
        model = autoencoder(latent, 6)
    x = prototype_data(rng)
    history = model.fit(x, x, batch_size=16, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
    assert np.isfinite(history.history[f"{latent.name}_kl"][-1])
