"""Tests for the Fenchel-Young losses of keras_latent.losses and ops.

References: the `entmax` package's losses (PyTorch, by the methods'
authors; test-only, run in float64 on the CPU whatever the backend), and
`Omega*(z) - <z, y> + Omega(y)` written here in float64 NumPy from Blondel
et al. (2020), with `Omega(p) = (sum p ** alpha - 1) / (alpha (alpha - 1))`
and the prediction from `tests.references` (sort-based sparsemax, entmax by
root finding).
"""

import keras
import numpy as np
import pytest

from keras_latent import losses
from keras_latent import ops as latent_ops
from tests import references
from tests.arrays import to_numpy
from tests.ops.gradients import central_differences
from tests.ops.gradients import gradient

# One shape for the random inputs: eager JAX compiles each primitive once
# per shape, and that, not the math, dominates the run time.
BATCH, CLASSES = 12, 6
ALPHAS = [1.0, 1.25, 1.5, 2.0, 3.0]


def prediction(logits, alpha):
    if alpha == 2.0:
        return references.sparsemax(logits)
    return references.entmax(logits, alpha)


def negentropy(p, alpha):
    """Omega(p), float64, from the definition (0 log 0 = 0 at alpha = 1)."""
    p = np.asarray(p, np.float64)
    if alpha == 1.0:
        return np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), -1)
    return (np.sum(p**alpha, -1) - 1.0) / (alpha * (alpha - 1.0))


def reference_loss(target, logits, alpha):
    """Omega*(z) - <z, y> + Omega(y), with Omega*(z) = <p, z> - Omega(p)."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(target, np.float64)
    p = prediction(z, alpha)
    conjugate = np.sum(p * z, -1) - negentropy(p, alpha)
    return conjugate - np.sum(y * z, -1) + negentropy(y, alpha)


def loss_function(alpha):
    """The keras_latent op for `alpha` (sort-based at 1.5 and 2)."""
    if alpha == 2.0:
        return latent_ops.sparsemax_loss
    if alpha == 1.5:
        return latent_ops.entmax15_loss
    return lambda y, z: latent_ops.entmax_bisect_loss(y, z, alpha=alpha)


def loss_class(alpha, **kwargs):
    if alpha == 2.0:
        return losses.SparsemaxLoss(**kwargs)
    if alpha == 1.5:
        return losses.Entmax15Loss(**kwargs)
    return losses.EntmaxBisectLoss(alpha=alpha, **kwargs)


@pytest.fixture
def batch(rng):
    """Logits, integer labels and soft labels on the simplex."""
    logits = (2.0 * rng.normal(size=(BATCH, CLASSES))).astype("float32")
    labels = rng.integers(0, CLASSES, size=BATCH)
    soft = rng.dirichlet(np.full(CLASSES, 0.5), size=BATCH).astype("float32")
    return logits, labels, soft


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
def test_values_and_gradients_match_the_entmax_package(batch, alpha):
    entmax = pytest.importorskip("entmax")
    torch = pytest.importorskip("torch")
    logits, labels, _ = batch
    if alpha == 2.0:
        reference = entmax.SparsemaxLoss(reduction="none")
    elif alpha == 1.5:
        reference = entmax.Entmax15Loss(k=None, reduction="none")
    else:
        reference = entmax.EntmaxBisectLoss(
            alpha=alpha, n_iter=200, reduction="none"
        )
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    expected = reference(z, torch.tensor(labels))
    expected.sum().backward()
    loss = loss_class(alpha, reduction=None)
    np.testing.assert_allclose(
        to_numpy(loss(labels, logits)),
        expected.detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    got = gradient(lambda x: loss(labels, x), logits)
    np.testing.assert_allclose(got, z.grad.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_values_match_the_conjugate_formula_for_soft_labels(batch, alpha):
    logits, _, soft = batch
    got = loss_class(alpha, sparse_y_true=False, reduction=None)(soft, logits)
    np.testing.assert_allclose(
        to_numpy(got), reference_loss(soft, logits, alpha), rtol=0, atol=2e-6
    )


@pytest.mark.parametrize("alpha", ALPHAS)
def test_gradient_is_prediction_minus_target(batch, alpha):
    logits, _, soft = batch
    got = gradient(lambda x: loss_function(alpha)(soft, x), logits)
    expected = prediction(logits, alpha) - soft
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # The formula itself, against float64 central differences of the loss.
    rows = slice(0, 3)
    differences = central_differences(
        lambda z: np.sum(reference_loss(soft[rows], z, alpha)), logits[rows]
    )
    np.testing.assert_allclose(expected[rows], differences, atol=1e-6)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
def test_loss_is_zero_exactly_when_the_prediction_is_the_label(alpha):
    # The label's logit leads by more than 1 / (alpha - 1): the prediction
    # is one-hot and the loss exactly 0. A smaller lead leaves mass
    # elsewhere.
    lead = 1.0 / (alpha - 1.0)
    logits = np.zeros((BATCH, CLASSES), "float32")
    logits[:, 2] = np.resize([1.01 * lead, lead + 1.0, 0.9 * lead, 0.0], BATCH)
    labels = np.full(BATCH, 2)
    got = to_numpy(loss_class(alpha, reduction=None)(labels, logits))
    np.testing.assert_array_equal(got.reshape(-1, 4)[:, :2], 0.0)
    assert np.all(got.reshape(-1, 4)[:, 2:] > 0.0)
    np.testing.assert_allclose(
        got, reference_loss(np.eye(CLASSES)[labels], logits, alpha), atol=1e-6
    )


@pytest.mark.parametrize("alpha", ALPHAS)
def test_loss_is_non_negative(rng, alpha):
    logits = (rng.normal(size=(BATCH, CLASSES)) * 10.0).astype("float32")
    labels = np.argmax(logits, axis=-1)
    got = to_numpy(loss_class(alpha, reduction=None)(labels, logits))
    assert np.all(got >= 0.0)


def test_integer_and_one_hot_labels_give_the_same_loss(batch):
    logits, labels, _ = batch
    for alpha in (1.5, 2.0):
        sparse = loss_class(alpha, reduction=None)(labels, logits)
        dense = loss_class(alpha, sparse_y_true=False, reduction=None)(
            np.eye(CLASSES, dtype="float32")[labels], logits
        )
        column = loss_class(alpha, reduction=None)(labels[:, None], logits)
        np.testing.assert_array_equal(to_numpy(sparse), to_numpy(dense))
        np.testing.assert_array_equal(to_numpy(sparse), to_numpy(column))


def test_alpha_1_is_keras_sparse_categorical_crossentropy(batch):
    logits, labels, _ = batch
    weights = np.linspace(0.0, 2.0, BATCH).astype("float32")
    for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight"):
        got = losses.EntmaxBisectLoss(alpha=1.0, reduction=reduction)
        expected = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=reduction
        )
        np.testing.assert_allclose(
            to_numpy(got(labels, logits, sample_weight=weights)),
            to_numpy(expected(labels, logits, sample_weight=weights)),
            rtol=1e-5,
        )


@pytest.mark.parametrize(
    "reduction, reduce",
    [
        ("sum_over_batch_size", lambda v, w: np.sum(v * w) / v.size),
        ("mean", lambda v, w: np.sum(v * w) / v.size),
        ("sum", lambda v, w: np.sum(v * w)),
        ("mean_with_sample_weight", lambda v, w: np.sum(v * w) / np.sum(w)),
    ],
)
def test_reductions_and_sample_weights_follow_keras(batch, reduction, reduce):
    logits, labels, _ = batch
    weights = np.linspace(0.0, 2.0, BATCH).astype("float32")
    per_example = reference_loss(np.eye(CLASSES)[labels], logits, 2.0)
    loss = losses.SparsemaxLoss(reduction=reduction)
    np.testing.assert_allclose(
        float(to_numpy(loss(labels, logits, sample_weight=weights))),
        reduce(per_example, weights),
        rtol=1e-5,
    )


def test_sequences_take_one_label_and_weight_per_step(rng):
    logits = rng.normal(size=(3, 4, CLASSES)).astype("float32")
    labels = rng.integers(0, CLASSES, size=(3, 4))
    weights = rng.random((3, 4)).astype("float32")
    per_step = reference_loss(np.eye(CLASSES)[labels], logits, 1.5)
    got = losses.Entmax15Loss(reduction="sum")(
        labels, logits, sample_weight=weights
    )
    np.testing.assert_allclose(
        float(to_numpy(got)), np.sum(weights * per_step), rtol=1e-5
    )


def test_logits_are_shifted_first(batch):
    # Scores near 1e4, exact in float32: without the shift the inner product
    # with p - y, which sums to 0 only up to rounding, would err by 1e-3.
    logits, labels, _ = batch
    logits = (logits + 1e4).astype("float32")
    expected = reference_loss(np.eye(CLASSES)[labels], logits, 2.0)
    np.testing.assert_allclose(
        to_numpy(losses.sparsemax_loss(labels, logits)), expected, atol=1e-5
    )


def test_masked_classes_are_left_out_and_a_masked_label_costs_infinity(batch):
    logits, labels, _ = batch
    logits = logits.copy()
    logits[:, 1] = -np.inf
    logits[-1] = -np.inf
    labels = np.where(labels == 1, 0, labels)
    labels[-2] = 1
    got = to_numpy(losses.entmax15_loss(labels, logits))
    unmasked = np.delete(logits[:-2], 1, axis=-1)
    targets = np.delete(np.eye(CLASSES)[labels[:-2]], 1, axis=-1)
    np.testing.assert_allclose(
        got[:-2], reference_loss(targets, unmasked, 1.5), atol=2e-6
    )
    np.testing.assert_array_equal(got[-2:], np.inf)
    grads = gradient(lambda x: losses.entmax15_loss(labels, x), logits)
    np.testing.assert_array_equal(grads[:, 1], 0.0)
    np.testing.assert_allclose(
        np.delete(grads[:-2], 1, axis=-1),
        prediction(unmasked, 1.5) - targets,
        atol=1e-6,
    )


def test_nan_in_and_labels_naming_no_class_give_nan(batch):
    logits, labels, soft = batch
    logits, labels = logits.copy(), labels.astype("float32")
    logits[0, 1], logits[1, 1] = np.nan, np.inf
    labels[2:5] = [CLASSES, -1, 0.5]
    for alpha in ALPHAS:
        got = to_numpy(loss_class(alpha, reduction=None)(labels, logits))
        assert np.all(np.isnan(got[:5])) and np.all(np.isfinite(got[5:]))
    soft = soft.copy()
    soft[0, 0] = np.nan
    soft[1, :3] = [-0.5, 1.0, 0.5]
    got = to_numpy(losses.entmax15_loss(soft, logits, sparse_y_true=False))
    assert np.all(np.isnan(got[:2])) and np.all(np.isfinite(got[2:]))


def test_an_empty_batch_gives_an_empty_output_and_a_zero_loss():
    # Keras reduces the losses of an empty batch to an empty tensor, whose
    # sum, the loss a trainer adds up, is 0.
    logits = np.zeros((0, CLASSES), "float32")
    labels = np.zeros((0,), "int32")
    assert to_numpy(losses.sparsemax_loss(labels, logits)).shape == (0,)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = to_numpy(keras_loss(labels, logits))
    for alpha in (1.25, 1.5, 2.0):
        got = to_numpy(loss_class(alpha)(labels, logits))
        assert got.shape == expected.shape and np.sum(got) == 0.0


def test_half_precision_logits_are_computed_in_float32():
    # float16 logits 7000 apart: the shifted scores and the loss are exact.
    logits = np.array([[7000.0, 0.0, -7000.0]], "float16")
    got = latent_ops.sparsemax_loss(np.array([[0.0, 1.0, 0.0]]), logits)
    assert keras.backend.standardize_dtype(got.dtype) == "float16"
    np.testing.assert_allclose(to_numpy(got), [7000.0])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: losses.EntmaxBisectLoss(alpha=0.5), "argument `alpha`"),
        (lambda: losses.EntmaxBisectLoss(alpha="2"), "argument `alpha`"),
        (lambda: losses.EntmaxBisectLoss(n_iter=0), "argument `n_iter`"),
        (
            lambda: losses.SparsemaxLoss(sparse_y_true="yes"),
            "argument `sparse_y_true`",
        ),
        (
            lambda: losses.entmax15_loss([0], [[0.0]], sparse_y_true=1),
            "argument `sparse_y_true`",
        ),
        (
            lambda: latent_ops.sparsemax_loss(np.ones((2, 3)), np.ones((2, 4))),
            "argument `target`",
        ),
    ],
)
def test_invalid_arguments_are_rejected(make, message):
    with pytest.raises(
        ValueError, match=f"Invalid value received for {message}"
    ):
        make()


@pytest.mark.parametrize(
    "loss",
    [
        losses.SparsemaxLoss(reduction="sum", name="sparse_outputs"),
        losses.Entmax15Loss(sparse_y_true=False),
        losses.EntmaxBisectLoss(alpha=1.25, n_iter=30, reduction=None),
    ],
    ids=["sparsemax", "entmax15", "entmax_bisect"],
)
def test_config_round_trip(loss, batch):
    logits, labels, soft = batch
    targets = labels if loss.sparse_y_true else soft
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_array_equal(
        to_numpy(restored(targets, logits)), to_numpy(loss(targets, logits))
    )
    serialized = keras.saving.serialize_keras_object(loss)
    assert serialized["registered_name"].startswith("keras_latent>")


@pytest.mark.parametrize(
    "loss",
    [losses.EntmaxBisectLoss(alpha=1.25), losses.sparsemax_loss],
    ids=["class", "function"],
)
def test_a_compiled_model_reloads_with_its_loss(tmp_path, rng, loss):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(CLASSES)(inputs))
    model.compile(optimizer="sgd", loss=loss)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.integers(0, CLASSES, size=8)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        reloaded.evaluate(x, y, verbose=0),
        model.evaluate(x, y, verbose=0),
        rtol=1e-6,
    )
    if isinstance(loss, keras.losses.Loss):
        assert reloaded.loss.get_config() == loss.get_config()


def test_a_model_trains_under_mixed_precision(rng):
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(CLASSES)(inputs))
    model.compile(optimizer="adam", loss=losses.Entmax15Loss())
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.integers(0, CLASSES, size=16)
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
