"""`.keras` save and reload, in a fresh Python process with safe_mode=True.

One model holds the three layers, with temperature and KL-weight schedules.
Before saving, their step counters are advanced (as training advances them)
and the learned prior is set to random values. A subprocess with the same
`KERAS_BACKEND` imports only `keras` and `keras_latent`, loads the file,
and writes its predictions and state to a `.npz` file that the tests
compare with the original model.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

import keras_latent
from keras_latent import schedules
from keras_latent.layers import BernoulliLatent
from keras_latent.layers import CategoricalLatent
from keras_latent.layers import GumbelSoftmax

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(keras_latent.__file__))
TEMPERATURES = {
    "gumbel": schedules.ExponentialDecay(1.0, 0.3, rate=0.1),
    "categorical": schedules.CosineDecay(20, initial=2.0, minimum=0.4),
    "bernoulli": 1.5,
}
KL_WEIGHTS = {
    "categorical": schedules.LinearWarmup(16, end=1.0),
    "bernoulli": schedules.PiecewiseConstant([3, 9], [0.0, 0.5, 0.25]),
}
STEPS = {"gumbel": 11, "categorical": 5, "bernoulli": 7}


def in_force(value, step):
    """A float, or a schedule's value at `step`, as NumPy."""
    if isinstance(value, float):
        return np.float32(value)
    return ops.convert_to_numpy(value(step))


LOAD_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import keras
    import keras_latent  # noqa: F401 (registers the layers)
    import numpy as np

    model_path, inputs_path, result_path = sys.argv[1:]
    model = keras.saving.load_model(model_path, safe_mode=True)
    x = np.load(inputs_path)
    result = {"predictions": model.predict(x, verbose=0)}
    model(x, training=False)
    result["kl_loss"] = sum(
        keras.ops.convert_to_numpy(loss) for loss in model.losses
    )
    for name in ["gumbel", "categorical", "bernoulli"]:
        layer = model.get_layer(name)
        result[name + "/type"] = type(layer).__name__
        result[name + "/iterations"] = keras.ops.convert_to_numpy(
            layer.iterations
        )
        result[name + "/temperature"] = keras.ops.convert_to_numpy(
            layer.current_temperature()
        )
        result[name + "/config"] = json.dumps(layer.get_config())
        if name != "gumbel":
            result[name + "/kl_weight"] = keras.ops.convert_to_numpy(
                layer.current_kl_weight()
            )
    result["categorical/prior_logits"] = keras.ops.convert_to_numpy(
        model.get_layer("categorical").prior_logits
    )
    np.savez(result_path, **result)
    """
)


def to_numpy(x):
    return ops.convert_to_numpy(x)


def three_latent_model():
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(12)(inputs)
    gumbel = GumbelSoftmax(
        temperature=TEMPERATURES["gumbel"],
        eval_mode="mode",
        seed=1,
        name="gumbel",
    )
    categorical = CategoricalLatent(
        3,
        4,
        temperature=TEMPERATURES["categorical"],
        prior="learned",
        kl_weight=KL_WEIGHTS["categorical"],
        eval_mode="mode",
        seed=2,
        name="categorical",
    )
    bernoulli = BernoulliLatent(
        temperature=TEMPERATURES["bernoulli"],
        prior_probability=0.3,
        kl_weight=KL_WEIGHTS["bernoulli"],
        eval_mode="mode",
        seed=3,
        name="bernoulli",
    )
    features = keras.layers.Concatenate()(
        [
            gumbel(hidden),
            keras.layers.Flatten()(categorical(hidden)),
            bernoulli(hidden),
        ]
    )
    return keras.Model(inputs, keras.layers.Dense(3)(features))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The original model, its inputs, and what the fresh process read."""
    keras.utils.set_random_seed(7)
    directory = tmp_path_factory.mktemp("saving")
    rng = np.random.default_rng(7)
    model = three_latent_model()
    for name, steps in STEPS.items():
        model.get_layer(name).iterations.assign(steps)
    prior_logits = rng.normal(size=(3, 4)).astype("float32")
    model.get_layer("categorical").prior_logits.assign(prior_logits)
    x = rng.normal(size=(10, 5)).astype("float32")

    model_path = directory / "model.keras"
    inputs_path = directory / "inputs.npy"
    result_path = directory / "result.npz"
    script_path = directory / "load.py"
    model.save(model_path)
    np.save(inputs_path, x)
    script_path.write_text(LOAD_SCRIPT)
    # The fresh process imports the keras_latent under test, not another
    # installed copy.
    search_path = os.pathsep.join(
        [REPOSITORY_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    environment = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "PYTHONPATH": search_path,
    }
    process = subprocess.run(
        [sys.executable, script_path, model_path, inputs_path, result_path],
        env=environment,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if process.returncode != 0:
        pytest.fail(f"The loading process failed:\n{process.stderr[-4000:]}")
    with np.load(result_path) as result:
        reloaded = dict(result)
    return {"model": model, "x": x, "reloaded": reloaded}


def test_reloaded_model_gives_identical_mode_predictions(saved):
    model, x = saved["model"], saved["x"]
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(saved["reloaded"]["predictions"], expected)


def test_reloaded_layers_have_their_types(saved):
    reloaded = saved["reloaded"]
    assert str(reloaded["gumbel/type"]) == "GumbelSoftmax"
    assert str(reloaded["categorical/type"]) == "CategoricalLatent"
    assert str(reloaded["bernoulli/type"]) == "BernoulliLatent"


@pytest.mark.parametrize("name", sorted(TEMPERATURES))
def test_reloaded_layer_resumes_its_temperature_schedule(name, saved):
    reloaded = saved["reloaded"]
    assert reloaded[f"{name}/iterations"] == STEPS[name]
    np.testing.assert_array_equal(
        reloaded[f"{name}/temperature"],
        in_force(TEMPERATURES[name], STEPS[name]),
    )
    config = json.loads(str(reloaded[f"{name}/config"]))
    assert config["temperature"] == schedules.serialize(TEMPERATURES[name])


@pytest.mark.parametrize("name", sorted(KL_WEIGHTS))
def test_reloaded_layer_resumes_its_kl_weight_schedule(name, saved):
    reloaded = saved["reloaded"]
    np.testing.assert_array_equal(
        reloaded[f"{name}/kl_weight"], in_force(KL_WEIGHTS[name], STEPS[name])
    )
    config = json.loads(str(reloaded[f"{name}/config"]))
    assert config["kl_weight"] == schedules.serialize(KL_WEIGHTS[name])


def test_reloaded_model_keeps_the_learned_prior_and_its_kl(saved):
    model, x, reloaded = saved["model"], saved["x"], saved["reloaded"]
    np.testing.assert_array_equal(
        reloaded["categorical/prior_logits"],
        to_numpy(model.get_layer("categorical").prior_logits),
    )
    model(x, training=False)
    expected = sum(to_numpy(loss) for loss in model.losses)
    np.testing.assert_allclose(reloaded["kl_loss"], expected, rtol=1e-6)
