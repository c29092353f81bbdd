"""Keras masks and empty batches through every softmax-family layer.

After `Embedding(mask_zero=True)` the mask must reach the layers after ours
(checked with `GlobalAveragePooling1D`, which averages over the unmasked
steps only), Keras must not warn that a mask is dropped, and the KL of the
latent layers must be the mean over the unmasked steps, as in NumPy. An
empty batch gives an empty output and a zero KL loss, never NaN.
"""

import warnings

import keras
import numpy as np
import pytest
from scipy import special

from keras_latent.layers import BernoulliLatent
from keras_latent.layers import CategoricalLatent
from keras_latent.layers import GroupedSoftmax
from keras_latent.layers import GumbelSoftmax
from keras_latent.layers import HiddenSoftmax
from keras_latent.layers import SubsetSampler
from keras_latent.models import kl_divergences
from tests.arrays import to_numpy

UNITS = 6
STEPS = 5

LAYERS = {
    "gumbel_softmax": lambda: GumbelSoftmax(eval_mode="probs", name="layer"),
    "grouped_softmax": lambda: GroupedSoftmax(groups=2, name="layer"),
    "hidden_softmax": lambda: HiddenSoftmax(UNITS, groups=3, name="layer"),
    "categorical_latent": lambda: CategoricalLatent(
        2, 3, eval_mode="probs", name="layer"
    ),
    "bernoulli_latent": lambda: BernoulliLatent(
        eval_mode="probs", name="layer"
    ),
    "subset_sampler": lambda: SubsetSampler(2, name="layer"),
}


def padded_tokens(rng):
    """Token ids with 0 as padding: 1, 3 and all 5 steps kept."""
    tokens = rng.integers(1, 10, size=(3, STEPS))
    tokens[0, 1:] = 0
    tokens[1, 3:] = 0
    return tokens


def masked_model(layer):
    """Embedding(mask_zero) -> Dense -> layer, and the layer's output."""
    keras.utils.set_random_seed(7)
    tokens = keras.Input((STEPS,), dtype="int32")
    # Unit-scale embeddings and weights: logits, and so KLs, of order 1.
    embedded = keras.layers.Embedding(
        10,
        4,
        mask_zero=True,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
    )(tokens)
    logits = keras.layers.Dense(
        UNITS, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0)
    )(embedded)
    outputs = layer(logits)
    if len(outputs.shape) == 4:
        outputs = keras.layers.TimeDistributed(keras.layers.Flatten())(outputs)
    pooled = keras.layers.GlobalAveragePooling1D()(outputs)
    return keras.Model(tokens, [logits, outputs, pooled])


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_the_mask_passes_through_without_a_warning(name, rng):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = masked_model(LAYERS[name]())
        tokens = padded_tokens(rng)
        _, outputs, pooled = model(tokens, training=False)
    dropped = [w for w in caught if "support masking" in str(w.message)]
    assert not dropped, dropped[0].message
    keep = (tokens != 0)[..., None]
    expected = (to_numpy(outputs) * keep).sum(axis=1) / keep.sum(axis=1)
    np.testing.assert_allclose(to_numpy(pooled), expected, rtol=1e-5)
    # Without the mask the padded steps would change the mean.
    assert not np.allclose(to_numpy(outputs).mean(axis=1), expected)


def categorical_kl(logits):
    log_q = special.log_softmax(logits.reshape(*logits.shape[:-1], 2, 3), -1)
    return np.sum(np.exp(log_q) * (log_q + np.log(3)), axis=(-2, -1))


def bernoulli_kl(logits):
    q = special.expit(logits)
    return np.sum(q * np.log(2 * q) + (1 - q) * np.log(2 * (1 - q)), -1)


@pytest.mark.parametrize(
    "name, reference",
    [
        ("categorical_latent", categorical_kl),
        ("bernoulli_latent", bernoulli_kl),
    ],
)
@pytest.mark.parametrize("training", [False, True])
def test_the_kl_is_the_mean_over_unmasked_steps(name, reference, training, rng):
    model = masked_model(LAYERS[name]())
    tokens = padded_tokens(rng)
    logits, _, _ = model(tokens, training=training)
    kl = reference(to_numpy(logits))
    expected = kl[tokens != 0].mean()
    assert expected > 0.1 and abs(expected - kl.mean()) > 1e-3 * expected
    np.testing.assert_allclose(
        to_numpy(kl_divergences(model)["layer"]), expected, rtol=1e-5
    )
    np.testing.assert_allclose(to_numpy(model.losses[0]), expected, rtol=1e-5)


EMPTY_INPUTS = {
    "gumbel_softmax": (0, UNITS),
    "grouped_softmax": (0, UNITS),
    "hidden_softmax": (0, 4),
    "categorical_latent": (0, UNITS),
    "bernoulli_latent": (0, UNITS),
    "subset_sampler": (0, UNITS),
}
EMPTY_OUTPUTS = {"categorical_latent": (0, 2, 3), "hidden_softmax": (0, UNITS)}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("training", [False, True])
def test_an_empty_batch_gives_an_empty_output_and_a_zero_loss(name, training):
    layer = LAYERS[name]()
    layer.build(EMPTY_INPUTS[name])
    outputs = layer(np.zeros(EMPTY_INPUTS[name], "float32"), training=training)
    expected_shape = EMPTY_OUTPUTS.get(name, EMPTY_INPUTS[name])
    assert tuple(outputs.shape) == expected_shape
    for loss in layer.losses:
        assert to_numpy(loss) == 0.0
