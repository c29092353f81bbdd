"""The opt-in KL logs of keras_latent.models, against a NumPy KL.

Every model here is frozen (learning rate 0) and its latent layer infers
with `eval_mode="probs"`, so the KL of each batch, the loss of `evaluate`
and the outputs are known in NumPy from the encoder's weights. The two
training batches have very different KLs, so a metric that is not updated
(0 or NaN), updated from an earlier batch, or weighted, fails.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import keras_latent
from keras_latent.layers import CategoricalLatent
from keras_latent.models import LatentModel
from keras_latent.models import LatentSequential
from keras_latent.models import kl_divergences
from keras_latent.models import update_kl_metrics
from tests.arrays import to_numpy

NUM_VARIABLES = 2
NUM_CATEGORIES = 3
UNITS = NUM_VARIABLES * NUM_CATEGORIES
KL_WEIGHT = 0.5


def log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def numpy_kl(logits):
    """KL(softmax(logits) || uniform) of each example, summed over variables."""
    log_q = log_softmax(logits.reshape(*logits.shape[:-1], -1, NUM_CATEGORIES))
    kl = np.sum(np.exp(log_q) * (log_q + np.log(NUM_CATEGORIES)), axis=-1)
    return np.sum(kl, axis=-1)


def latent_layer():
    return CategoricalLatent(
        NUM_VARIABLES,
        NUM_CATEGORIES,
        kl_weight=KL_WEIGHT,
        eval_mode="probs",
        name="latent",
        seed=1,
    )


class Autoencoder(LatentModel):
    """Subclassed: an encoder and the latent layer, flattened."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = keras.layers.Dense(UNITS, name="encoder")
        self.latent = latent_layer()
        self.flatten = keras.layers.Flatten()

    def call(self, inputs, training=None):
        codes = self.latent(self.encoder(inputs), training=training)
        return self.flatten(codes)


class OwnLossAutoencoder(Autoencoder):
    """Overrides `compute_loss` without `super()`, as Keras's docs show."""

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        loss = ops.mean((y - y_pred) ** 2) + sum(self.losses, 0.0)
        update_kl_metrics(self)
        return loss


class ForgetfulAutoencoder(Autoencoder):
    """Overrides `compute_loss` and forgets to update the KL metrics."""

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        return ops.mean((y - y_pred) ** 2) + sum(self.losses, 0.0)


class OwnStepAutoencoder(Autoencoder):
    """A custom `train_step` (no update: the model is frozen)."""

    if keras.backend.backend() == "jax":

        def train_step(self, state, data):
            trainable, non_trainable, optimizer_state, metrics_state = state
            x, y = data
            y_pred, non_trainable, losses = self.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True
            )
            mapping = list(
                zip(self.metrics_variables, metrics_state, strict=True)
            )
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss = ops.mean((y - y_pred) ** 2) + sum(losses, 0.0)
                self.loss_tracker.update_state(loss)
                update_kl_metrics(self, losses)
                logs = {m.name: m.result() for m in self.metrics}
            metrics_state = [
                scope.get_current_value(v) for v in self.metrics_variables
            ]
            return logs, (
                trainable,
                non_trainable,
                optimizer_state,
                metrics_state,
            )

    else:

        def train_step(self, data):
            x, y = data
            y_pred = self(x, training=True)
            loss = ops.mean((y - y_pred) ** 2) + sum(self.losses, 0.0)
            self.loss_tracker.update_state(loss)
            update_kl_metrics(self)
            return {m.name: m.result() for m in self.metrics}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")


def build(kind):
    """A frozen model of `kind` and a function giving its encoder logits."""
    if kind in ("subclassed", "own_loss", "own_train_step", "forgetful"):
        model = {
            "subclassed": Autoencoder,
            "own_loss": OwnLossAutoencoder,
            "own_train_step": OwnStepAutoencoder,
            "forgetful": ForgetfulAutoencoder,
        }[kind]()
        model(np.zeros((1, 4), "float32"))
        encoder = model.encoder
    elif kind == "sequential":
        model = LatentSequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(UNITS, name="encoder"),
                latent_layer(),
                keras.layers.Flatten(),
            ]
        )
        encoder = model.get_layer("encoder")
    else:
        inputs = keras.Input((4,))
        encoder = keras.layers.Dense(UNITS, name="encoder")
        outputs = keras.layers.Flatten()(latent_layer()(encoder(inputs)))
        if kind == "nested":
            # The latent layer sits in a plain model inside a LatentModel.
            inner = keras.Model(inputs, outputs, name="inner")
            outer_inputs = keras.Input((4,))
            model = LatentModel(outer_inputs, inner(outer_inputs))
        elif kind == "plain":
            model = keras.Model(inputs, outputs)
        else:
            model = LatentModel(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    return (
        model,
        lambda x: (
            to_numpy(x) @ to_numpy(encoder.kernel) + to_numpy(encoder.bias)
        ),
    )


class BatchLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append({key: float(logs[key]) for key in logs})


def data(rng):
    x = rng.normal(size=(16, 4)).astype("float32")
    x[8:] *= 4.0
    y = rng.random((16, UNITS)).astype("float32")
    return x, y


def fit_one_epoch(model, x, y):
    recorder = BatchLogs()
    history = model.fit(
        x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[recorder]
    )
    return recorder.batches, history.history


@pytest.mark.parametrize(
    "kind",
    [
        "sequential",
        "functional",
        "subclassed",
        "nested",
        "own_loss",
        "own_train_step",
    ],
)
def test_fit_and_evaluate_log_the_kl_of_each_batch(kind, rng):
    keras.utils.set_random_seed(1)
    model, logits = build(kind)
    x, y = data(rng)
    kl = numpy_kl(logits(x))
    first, second = kl[:8].mean(), kl[8:].mean()
    assert first > 0.05 and second > 2 * first, (first, second)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        batches, history = fit_one_epoch(model, x, y)
    np.testing.assert_allclose(
        [logs["latent_kl"] for logs in batches],
        [first, (first + second) / 2],
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        history["latent_kl"], [(first + second) / 2], rtol=1e-4
    )
    if kind == "own_train_step":
        return
    results = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        results["latent_kl"], (first + second) / 2, rtol=1e-4
    )
    probabilities = np.exp(
        log_softmax(logits(x).reshape(16, NUM_VARIABLES, NUM_CATEGORIES))
    ).reshape(16, UNITS)
    mse = np.mean((probabilities - y) ** 2)
    np.testing.assert_allclose(
        results["loss"], mse + KL_WEIGHT * (first + second) / 2, rtol=1e-4
    )


def test_a_plain_model_trains_on_the_kl_but_does_not_log_it(rng):
    keras.utils.set_random_seed(2)
    model, logits = build("plain")
    x, y = data(rng)
    _, history = fit_one_epoch(model, x, y)
    assert sorted(history) == ["loss"]
    results = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert sorted(results) == ["loss"]
    probabilities = np.exp(
        log_softmax(logits(x).reshape(16, NUM_VARIABLES, NUM_CATEGORIES))
    ).reshape(16, UNITS)
    expected = np.mean((probabilities - y) ** 2) + KL_WEIGHT * np.mean(
        numpy_kl(logits(x))
    )
    np.testing.assert_allclose(results["loss"], expected, rtol=1e-4)


def test_a_kl_metric_no_step_updated_shows_nan_and_says_why(rng):
    keras.utils.set_random_seed(3)
    model, _ = build("forgetful")
    x, y = data(rng)
    with pytest.warns(UserWarning, match="update_kl_metrics"):
        _, history = fit_one_epoch(model, x, y)
    assert np.isnan(history["latent_kl"][0])
    assert np.isfinite(history["loss"][0])


def test_update_kl_metrics_refuses_a_model_without_kl_metrics():
    model, _ = build("plain")
    with pytest.raises(ValueError, match="LatentModel"):
        update_kl_metrics(model)


def test_a_layer_called_twice_reports_the_sum_of_its_kls(rng):
    """Each call adds a loss; the layer's KL is the sum of the two."""
    inputs = keras.Input((4,))
    encoder = keras.layers.Dense(UNITS)
    latent = latent_layer()
    first = latent(encoder(inputs))
    second = latent(encoder(2.0 * inputs))
    model = keras.Model(inputs, [first, second])
    x = rng.normal(size=(5, 4)).astype("float32")
    model(x, training=True)
    logits = to_numpy(x) @ to_numpy(encoder.kernel) + to_numpy(encoder.bias)
    logits_twice = 2.0 * to_numpy(x) @ to_numpy(encoder.kernel) + to_numpy(
        encoder.bias
    )
    expected = numpy_kl(logits).mean() + numpy_kl(logits_twice).mean()
    kls = kl_divergences(model)
    np.testing.assert_allclose(to_numpy(kls["latent"]), expected, rtol=1e-5)
    np.testing.assert_allclose(
        sum(to_numpy(loss) for loss in model.losses),
        KL_WEIGHT * expected,
        rtol=1e-5,
    )
    # A new forward pass replaces the records of the previous one.
    model(x[:2], training=True)
    expected = numpy_kl(logits[:2]).mean() + numpy_kl(logits_twice[:2]).mean()
    np.testing.assert_allclose(
        to_numpy(kl_divergences(model)["latent"]), expected, rtol=1e-5
    )


def test_inference_writes_no_state(rng):
    inputs = keras.Input((4,))
    outputs = CategoricalLatent(2, 3, eval_mode="mode")(
        keras.layers.Dense(UNITS)(inputs)
    )
    model = LatentModel(inputs, outputs)
    model.compile(loss="mse")
    before = [to_numpy(v) for v in model.variables]
    x = rng.normal(size=(8, 4)).astype("float32")
    model.predict(x, verbose=0)
    model.evaluate(x, np.zeros((8, 2, 3)), verbose=0)
    model(x, training=False)
    for variable, value in zip(model.variables, before, strict=True):
        np.testing.assert_array_equal(to_numpy(variable), value)
    names = {v.name for v in model.get_layer(index=2).non_trainable_variables}
    assert "last_kl" not in names


def test_set_eval_mode_takes_effect_after_a_compiled_predict(rng):
    inputs = keras.Input((4,))
    latent = latent_layer()
    model = LatentModel(inputs, latent(keras.layers.Dense(UNITS)(inputs)))
    model.compile(loss="mse")
    x = rng.normal(size=(6, 4)).astype("float32")
    probabilities = model.predict(x, verbose=0)
    assert np.all((probabilities > 0) & (probabilities < 1))
    with pytest.raises(ValueError, match="set_eval_mode"):
        latent.eval_mode = "mode"
    keras_latent.models.set_eval_mode(model, "mode")
    assert latent.eval_mode == "mode"
    modes = model.predict(x, verbose=0)
    expected = np.eye(NUM_CATEGORIES)[np.argmax(probabilities, axis=-1)]
    np.testing.assert_array_equal(modes, expected)
    y = np.zeros((6, NUM_VARIABLES, NUM_CATEGORIES), "float32")
    mode_loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    keras_latent.models.set_eval_mode(model, "probs")
    probs_loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(
        mode_loss - probs_loss,
        np.mean(modes**2) - np.mean(probabilities**2),
        rtol=1e-4,
    )


def test_set_eval_mode_refuses_a_layer_of_another_model():
    model, _ = build("functional")
    # The message names every kind of layer it takes, and what it received.
    with pytest.raises(
        ValueError, match=r"`layers`.*SubsetSampler.*Received: layers=\["
    ):
        keras_latent.models.set_eval_mode(
            model, "mode", layers=[latent_layer()]
        )
    with pytest.raises(ValueError, match="`eval_mode`"):
        keras_latent.models.set_eval_mode(model, "median")


LOAD_WITHOUT_IMPORT = textwrap.dedent(
    """
    import sys

    import keras

    try:
        keras.saving.load_model(sys.argv[1])
    except Exception as error:
        print(str(error))
    """
)


def test_a_saved_latent_model_reloads_with_its_kl_metric(rng, tmp_path):
    keras.utils.set_random_seed(4)
    model, _ = build("functional")
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, keras_latent.models.KLMetricsMixin)
    x, y = data(rng)
    expected = model.evaluate(x, y, verbose=0, return_dict=True)
    results = reloaded.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(results["latent_kl"], expected["latent_kl"])


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="Keras's deserialization error does not depend on the backend; "
    "one backend spares two slow subprocesses",
)
def test_loading_without_the_package_names_it_in_the_error(tmp_path):
    model, _ = build("functional")
    path = tmp_path / "model.keras"
    model.save(path)
    script = tmp_path / "load.py"
    script.write_text(LOAD_WITHOUT_IMPORT)
    completed = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
        cwd=tmp_path,
        timeout=120,
    )
    assert "keras_latent>LatentFunctional" in completed.stdout
