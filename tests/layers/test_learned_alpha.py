"""Tests for `alpha="learned"`: one trainable entmax alpha per group or head.

HiddenSoftmax, GroupedSoftmax and SparseMultiHeadAttention hold the logits
`a` of their alphas, `alpha = 1 + sigmoid(a)`. Values are checked against
the float64 reference `tests.references.entmax` at each group's alpha, or
against the same layer with that alpha fixed; training, saving and the
argument checks as for every layer.
"""

import re

import keras
import numpy as np
import pytest
from scipy import special

from keras_latent.layers import GroupedSoftmax
from keras_latent.layers import HiddenSoftmax
from keras_latent.layers import SparseMultiHeadAttention
from tests import references
from tests.arrays import to_numpy

# Every eager call normalizes rows of the same shape, 16 rows of 4 (8
# examples in 2 groups, or 2 examples, 2 heads and 4 queries over 4 keys):
# eager JAX compiles each primitive once per shape, which sets the run time.
GROUPS = 2
GROUP_SIZE = 4
BATCH_SIZE = 8
ALPHA_LOGITS = np.array([-2.0, 1.5], "float32")


def grouped_entmax(x, alphas):
    """Each group of the last axis of `x` normalized at its own alpha."""
    groups = np.split(np.asarray(x, np.float64), len(alphas), axis=-1)
    return np.concatenate(
        [
            references.entmax(group, float(alpha))
            for group, alpha in zip(groups, alphas, strict=True)
        ],
        axis=-1,
    )


def test_grouped_softmax_normalizes_each_group_at_its_alpha(rng):
    layer = GroupedSoftmax(groups=GROUPS, normalizer="entmax", alpha="learned")
    x = 2.0 * rng.normal(size=(BATCH_SIZE, GROUPS * GROUP_SIZE))
    x = x.astype("float32")
    layer.build(x.shape)
    # Initialized at alpha 1.5 in every group.
    np.testing.assert_array_equal(to_numpy(layer.alphas), [1.5] * GROUPS)
    layer.alpha_logits.assign(ALPHA_LOGITS)
    alphas = 1.0 + special.expit(ALPHA_LOGITS.astype(np.float64))
    np.testing.assert_allclose(to_numpy(layer.alphas), alphas, rtol=1e-6)
    np.testing.assert_allclose(
        to_numpy(layer(x)), grouped_entmax(x, alphas), rtol=0, atol=1e-6
    )


def test_alphas_of_a_fixed_alpha_and_of_other_normalizers():
    fixed = HiddenSoftmax(6, groups=2, normalizer="entmax", alpha=1.25)
    np.testing.assert_array_equal(to_numpy(fixed.alphas), [1.25, 1.25])
    assert HiddenSoftmax(6, groups=2, normalizer="sparsemax").alphas is None
    # None is 1.5 with "entmax", and no weight is added for a fixed alpha.
    layer = GroupedSoftmax(groups=2, normalizer="entmax")
    layer.build((None, 6))
    assert layer.alpha == 1.5
    assert not layer.weights


def test_hidden_softmax_trains_its_alphas_in_fit(rng):
    # Targets at one sparse vertex per group pull the alphas; fit compiles
    # the step (jax.jit, tf.function), the alpha gradient included.
    hidden = HiddenSoftmax(
        GROUPS * GROUP_SIZE, groups=GROUPS, normalizer="entmax", alpha="learned"
    )
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, hidden(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    features = rng.normal(size=(32, 6)).astype("float32")
    targets = np.tile(np.eye(GROUP_SIZE, dtype="float32")[0], GROUPS)
    targets = np.broadcast_to(targets, (32, GROUPS * GROUP_SIZE))
    history = model.fit(features, targets, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    alphas = to_numpy(hidden.alphas)
    assert hidden.trainable_weights[-1] is hidden.alpha_logits
    assert np.all(np.abs(alphas - 1.5) > 1e-3)
    logits = features @ to_numpy(hidden.kernel) + to_numpy(hidden.bias)
    np.testing.assert_allclose(
        model.predict(features, verbose=0),
        grouped_entmax(logits, alphas),
        rtol=0,
        atol=1e-5,
    )


def test_hidden_softmax_saves_and_reloads_its_alphas(rng, tmp_path):
    hidden = HiddenSoftmax(
        GROUPS * GROUP_SIZE,
        groups=GROUPS,
        normalizer="entmax",
        alpha="learned",
        temperature=0.5,
    )
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, hidden(inputs))
    hidden.alpha_logits.assign(ALPHA_LOGITS)
    config = hidden.get_config()
    assert config["alpha"] == "learned"
    assert HiddenSoftmax.from_config(config).get_config() == config
    path = tmp_path / "hidden.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    loaded_hidden = loaded.layers[-1]
    assert loaded_hidden.get_config() == config
    np.testing.assert_array_equal(
        to_numpy(loaded_hidden.alpha_logits), ALPHA_LOGITS
    )
    x = rng.normal(size=(BATCH_SIZE, 6)).astype("float32")
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))


def test_hidden_softmax_with_lora_builds_and_reloads_its_alphas(rng, tmp_path):
    """LoRA, enabled at build from `lora_rank` (as in the config of a layer
    saved after `enable_lora`), locks Dense's variables: the alpha logits
    must be added before it."""
    hidden = HiddenSoftmax(
        GROUPS * GROUP_SIZE,
        groups=GROUPS,
        normalizer="entmax",
        alpha="learned",
        lora_rank=2,
    )
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, hidden(inputs))
    assert hidden.lora_enabled
    hidden.alpha_logits.assign(ALPHA_LOGITS)
    hidden.lora_kernel_b.assign(np.full((2, GROUPS * GROUP_SIZE), 0.1))
    path = tmp_path / "hidden_lora.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    loaded_hidden = loaded.layers[-1]
    assert loaded_hidden.get_config() == hidden.get_config()
    np.testing.assert_array_equal(
        to_numpy(loaded_hidden.alpha_logits), ALPHA_LOGITS
    )
    x = rng.normal(size=(BATCH_SIZE, 6)).astype("float32")
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))
    # Dense's `kernel` holds the LoRA update.
    pre_activations = x @ to_numpy(hidden.kernel) + to_numpy(hidden.bias)
    np.testing.assert_allclose(
        to_numpy(model(x)),
        grouped_entmax(pre_activations, 1.0 + special.expit(ALPHA_LOGITS)),
        atol=1e-5,
    )


def attention(alpha):
    return SparseMultiHeadAttention(
        num_heads=2,
        key_dim=3,
        normalizer="entmax",
        alpha=alpha,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
    )


def test_attention_gives_each_head_its_alpha(rng):
    query = (3.0 * rng.normal(size=(2, 4, 6))).astype("float32")
    learned = attention("learned")
    learned(query, query)
    assert learned.alpha_logits.shape == (2,)
    learned.alpha_logits.assign(ALPHA_LOGITS)
    projections = [
        variable
        for variable in learned.weights
        if variable.name != "alpha_logits"
    ]
    _, weights = learned(query, query, return_attention_scores=True)
    for head, alpha in enumerate(to_numpy(learned.alphas)):
        fixed = attention(float(alpha))
        fixed(query, query)
        fixed.set_weights([to_numpy(variable) for variable in projections])
        _, expected = fixed(query, query, return_attention_scores=True)
        np.testing.assert_allclose(
            to_numpy(weights)[:, head],
            to_numpy(expected)[:, head],
            rtol=0,
            atol=1e-6,
        )


@pytest.mark.parametrize(
    "layer_class, kwargs",
    [
        (HiddenSoftmax, dict(units=6, groups=2)),
        (GroupedSoftmax, dict(groups=2)),
        (SparseMultiHeadAttention, dict(num_heads=2, key_dim=3)),
    ],
)
@pytest.mark.parametrize(
    "normalizer, alpha, expected",
    [
        ("entmax", "learnt", 'a finite float value >= 1 or "learned"'),
        ("entmax", 0.5, 'a finite float value >= 1 or "learned"'),
        ("entmax", np.ones(2), 'a finite float value >= 1 or "learned"'),
        ("sparsemax", "learned", "None with normalizer='sparsemax'"),
        ("softmax", 1.5, "None with normalizer='softmax'"),
    ],
)
def test_rejects_a_bad_alpha(layer_class, kwargs, normalizer, alpha, expected):
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"Invalid value received for argument `alpha`. Expected {expected}"
        ),
    ):
        layer_class(**kwargs, normalizer=normalizer, alpha=alpha)
