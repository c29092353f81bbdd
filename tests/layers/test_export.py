"""Models with keras-latent layers export for serving: SavedModel, ONNX."""

import keras
import numpy as np
import pytest

import keras_latent

saved_model_backends = pytest.mark.skipif(
    keras.backend.backend() not in ("tensorflow", "jax"),
    reason="Keras exports TF SavedModels from the TensorFlow and JAX backends",
)


def build_model(eval_mode):
    inputs = keras.Input((12,))
    logits = keras.layers.Dense(12)(inputs)
    codes = keras_latent.layers.CategoricalLatent(
        3, 4, eval_mode=eval_mode, seed=1
    )(logits)
    hidden = keras_latent.layers.HiddenSoftmax(
        8, groups=2, normalizer="entmax15"
    )(keras.layers.Flatten()(codes))
    return keras.Model(inputs, [codes, hidden])


@saved_model_backends
def test_exported_model_serves_the_same_mode_predictions(tmp_path, rng):
    import tensorflow as tf

    model = build_model("mode")
    model.export(str(tmp_path / "served"), format="tf_saved_model")
    served = tf.saved_model.load(str(tmp_path / "served"))
    x = rng.normal(size=(5, 12)).astype("float32")
    expected_codes, expected_hidden = model.predict(x, verbose=0)
    codes, hidden = (output.numpy() for output in served.serve(x))
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_allclose(hidden, expected_hidden, rtol=1e-5, atol=1e-6)


@saved_model_backends
def test_exported_sampling_model_serves_one_hot_samples(tmp_path, rng):
    import tensorflow as tf

    model = build_model("sample")
    model.export(str(tmp_path / "served"), format="tf_saved_model")
    served = tf.saved_model.load(str(tmp_path / "served"))
    x = rng.normal(size=(200, 12)).astype("float32")
    codes, hidden = (output.numpy() for output in served.serve(x))
    assert set(np.unique(codes)) == {0.0, 1.0}
    np.testing.assert_array_equal(codes.sum(axis=-1), 1.0)
    np.testing.assert_allclose(hidden.sum(axis=-1), 2.0, rtol=1e-5)


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="ONNX export is tested from the PyTorch backend",
)
def test_onnx_export_serves_the_same_mode_predictions(tmp_path, rng):
    """Keras's ONNX export (TorchScript tracing) serves the same modes."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    model = build_model("mode")
    x = rng.normal(size=(5, 12)).astype("float32")
    expected_codes, expected_hidden = model.predict(x, verbose=0)
    path = str(tmp_path / "model.onnx")
    model.export(path, format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(path)
    codes, hidden = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_allclose(hidden, expected_hidden, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="torch.onnx.export needs the PyTorch backend",
)
def test_torch_onnx_export_of_a_latent_model_serves_the_same_modes(
    tmp_path, rng
):
    """`torch.onnx.export` (dynamo) failed when inference assigned the
    layer's `last_kl` variable."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    import torch

    model = build_model("mode")
    x = rng.normal(size=(5, 12)).astype("float32")
    expected_codes, expected_hidden = model.predict(x, verbose=0)
    path = str(tmp_path / "model.onnx")
    torch.onnx.export(model, (torch.tensor(x),), path, dynamo=True)
    session = onnxruntime.InferenceSession(path)
    codes, hidden = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_allclose(hidden, expected_hidden, rtol=1e-5, atol=1e-6)
