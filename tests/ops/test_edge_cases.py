"""Bad and edge input never becomes a plausible number, for every op.

NaN in gives NaN out; `+inf` gives the mathematical limit or NaN; a fully
masked (`-inf`) group gives zeros from every normalizer; an empty batch
gives an empty output; ranks the ops cannot serve raise a clear
`ValueError`. The rows of each input are independent: row 0 holds the bad
value and must come out NaN, row 1 is finite and must stay finite.
"""

import keras
import numpy as np
import pytest

from keras_latent import ops as latent_ops
from tests.arrays import to_numpy

NORMALIZERS = {
    "softmax": latent_ops.softmax,
    "sparsemax": latent_ops.sparsemax,
    "entmax15": latent_ops.entmax15,
    "entmax_bisect_1.5": lambda x: latent_ops.entmax_bisect(x, alpha=1.5),
    "entmax_bisect_3": lambda x: latent_ops.entmax_bisect(x, alpha=3.0),
    "entmax_bisect_1": lambda x: latent_ops.entmax_bisect(x, alpha=1.0),
    "grouped_softmax": lambda x: latent_ops.grouped_normalize(x, 1),
    "grouped_sparsemax": lambda x: latent_ops.grouped_normalize(
        x, 1, "sparsemax"
    ),
    "grouped_entmax15": lambda x: latent_ops.grouped_normalize(
        x, 1, "entmax15"
    ),
}

# Ops of logits that reduce or keep the category axis; each maps a (2, 3)
# tensor of logits to a result whose first axis is the row.
LOGIT_OPS = {
    **NORMALIZERS,
    "gumbel_softmax": lambda x: latent_ops.gumbel_softmax(x, 0.5, seed=1),
    "gumbel_softmax_hard": lambda x: latent_ops.gumbel_softmax(
        x, 0.5, hard=True, seed=1
    ),
    "relaxed_one_hot_log_sample": lambda x: (
        latent_ops.relaxed_one_hot_log_sample(x, 0.5, seed=1)
    ),
    "sample_one_hot": lambda x: latent_ops.sample_one_hot(x, seed=1),
    "one_hot_argmax": latent_ops.one_hot_argmax,
    "categorical_inference_mode": lambda x: latent_ops.categorical_inference(
        x, "mode"
    ),
    "categorical_inference_sample": lambda x: latent_ops.categorical_inference(
        x, "sample", seed=1
    ),
    "categorical_inference_probs": lambda x: latent_ops.categorical_inference(
        x, "probs"
    ),
    "categorical_kl": latent_ops.categorical_kl,
    "categorical_kl_prior": lambda x: latent_ops.categorical_kl(
        np.zeros((2, 3), "float32"), x
    ),
    "exp_relaxed_one_hot_log_prob": lambda x: (
        latent_ops.exp_relaxed_one_hot_log_prob(
            np.log(np.full((2, 3), 1 / 3, "float32")), x, 0.5
        )
    ),
    "relaxed_one_hot_log_prob": lambda x: latent_ops.relaxed_one_hot_log_prob(
        np.full((2, 3), 1 / 3, "float32"), x, 0.5
    ),
    "relaxed_categorical_kl": lambda x: latent_ops.relaxed_categorical_kl(
        latent_ops.relaxed_one_hot_log_sample(
            np.zeros((2, 3), "float32"), 0.5, seed=2
        ),
        x,
        None,
        0.5,
    ),
    "relaxed_categorical_kl_prior": lambda x: latent_ops.relaxed_categorical_kl(
        latent_ops.relaxed_one_hot_log_sample(
            np.zeros((2, 3), "float32"), 0.5, seed=2
        ),
        np.zeros((2, 3), "float32"),
        x,
        0.5,
    ),
    "content_weights_sparsemax": lambda x: latent_ops.content_weights(
        x, np.eye(3, dtype="float32"), 1.0, "sparsemax"
    ),
}

# Elementwise ops of Bernoulli logits.
BERNOULLI_OPS = {
    "relaxed_bernoulli": lambda x: latent_ops.relaxed_bernoulli(x, 0.5, seed=1),
    "relaxed_bernoulli_hard": lambda x: latent_ops.relaxed_bernoulli(
        x, 0.5, hard=True, seed=1
    ),
    "relaxed_bernoulli_logit_sample": lambda x: (
        latent_ops.relaxed_bernoulli_logit_sample(x, 0.5, seed=1)
    ),
    "sample_bernoulli": lambda x: latent_ops.sample_bernoulli(x, seed=1),
    "bernoulli_inference_mode": lambda x: latent_ops.bernoulli_inference(
        x, "mode"
    ),
    "bernoulli_inference_sample": lambda x: latent_ops.bernoulli_inference(
        x, "sample", seed=1
    ),
    "bernoulli_inference_probs": lambda x: latent_ops.bernoulli_inference(
        x, "probs"
    ),
    "bernoulli_kl": latent_ops.bernoulli_kl,
    "bernoulli_kl_prior": lambda x: latent_ops.bernoulli_kl(
        np.zeros(3, "float32"), x
    ),
    "relaxed_bernoulli_logit_log_prob": lambda x: (
        latent_ops.relaxed_bernoulli_logit_log_prob(
            np.zeros(3, "float32"), x, 0.5
        )
    ),
    "relaxed_bernoulli_kl": lambda x: latent_ops.relaxed_bernoulli_kl(
        np.zeros(3, "float32"), x, None, 0.5
    ),
}


def rows_with(value):
    x = np.array([[value, 0.0, 1.0], [0.5, 0.0, 1.0]], dtype="float32")
    return x


@pytest.mark.parametrize("name", LOGIT_OPS)
def test_nan_logits_give_nan(name):
    result = to_numpy(LOGIT_OPS[name](rows_with(np.nan)))
    assert np.all(np.isnan(result[0])), result
    assert np.all(np.isfinite(result[1])), result


@pytest.mark.parametrize("name", LOGIT_OPS)
def test_plus_inf_logits_never_give_a_different_finite_value(name):
    """The one `+inf` logit makes its category certain: the normalizers and
    samples would be its one-hot, the KL from a uniform prior log(3). The
    ops give NaN, or the limit where it is free (the mode)."""
    result = to_numpy(LOGIT_OPS[name](rows_with(np.inf)))
    assert np.all(np.isfinite(result[1])), result
    if np.all(np.isnan(result[0])):
        return
    limits = {
        "one_hot_argmax": [1.0, 0.0, 0.0],
        "categorical_inference_mode": [1.0, 0.0, 0.0],
    }
    np.testing.assert_array_equal(result[0], limits[name])


@pytest.mark.parametrize("name", BERNOULLI_OPS)
def test_nan_bernoulli_logits_give_nan(name):
    x = np.array([np.nan, 0.0, 1.0], dtype="float32")
    result = to_numpy(BERNOULLI_OPS[name](x))
    assert np.isnan(result[0]), result
    assert np.all(np.isfinite(result[1:])), result


def test_bernoulli_kl_of_infinite_logits_is_the_limit():
    """KL(Bernoulli(1) || Bernoulli(1/2)) = log 2, and the same at -inf."""
    result = to_numpy(latent_ops.bernoulli_kl(np.array([np.inf, -np.inf])))
    np.testing.assert_allclose(result, [np.log(2.0)] * 2, rtol=1e-6)


def test_exact_bernoulli_samples_of_infinite_logits_are_the_limits():
    x = np.array([np.inf, -np.inf] * 50, dtype="float32")
    result = to_numpy(latent_ops.sample_bernoulli(x, seed=3))
    np.testing.assert_array_equal(result, [1.0, 0.0] * 50)


@pytest.mark.parametrize("name", NORMALIZERS)
def test_a_fully_masked_group_gives_zeros(name):
    x = np.array([[-np.inf] * 3, [0.5, -np.inf, 1.0]], dtype="float32")
    result = to_numpy(NORMALIZERS[name](x))
    np.testing.assert_array_equal(result[0], np.zeros(3))
    assert result[1, 1] == 0.0
    np.testing.assert_allclose(result[1].sum(), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "name",
    [
        "gumbel_softmax",
        "gumbel_softmax_hard",
        "relaxed_one_hot_log_sample",
        "sample_one_hot",
        "categorical_inference_mode",
        "categorical_inference_sample",
    ],
)
def test_a_fully_masked_slice_has_no_sample_and_no_mode(name):
    """Every entry `-inf`: no distribution, so no sample and no mode (NaN,
    as its KL); the argmax's first category would be a plausible one-hot."""
    x = np.array([[-np.inf] * 3, [0.5, -np.inf, 1.0]], dtype="float32")
    result = to_numpy(LOGIT_OPS[name](x))
    assert np.all(np.isnan(result[0])), result
    assert not np.any(np.isnan(result[1])), result


@pytest.mark.parametrize("name", NORMALIZERS)
def test_an_empty_batch_gives_an_empty_output(name):
    result = NORMALIZERS[name](np.zeros((0, 5), "float32"))
    assert tuple(result.shape) == (0, 5)


SAMPLES_AND_KLS = [
    "gumbel_softmax",
    "gumbel_softmax_hard",
    "relaxed_one_hot_log_sample",
    "sample_one_hot",
    "one_hot_argmax",
    "categorical_inference_mode",
    "categorical_inference_sample",
    "categorical_inference_probs",
    "categorical_kl",
]


@pytest.mark.parametrize("name", SAMPLES_AND_KLS)
def test_an_empty_batch_of_logits_gives_an_empty_result(name):
    result = LOGIT_OPS[name](np.zeros((0, 3), "float32"))
    assert tuple(result.shape)[:1] == (0,)


def test_relaxed_kls_of_an_empty_batch_are_empty():
    logits = np.zeros((0, 3), "float32")
    log_sample = latent_ops.relaxed_one_hot_log_sample(logits, 0.5, seed=1)
    kl = latent_ops.relaxed_categorical_kl(log_sample, logits, None, 0.5)
    assert tuple(kl.shape) == (0,)
    _, logit_sample = latent_ops.relaxed_bernoulli(
        logits, 0.5, seed=1, return_logit_sample=True
    )
    kl = latent_ops.relaxed_bernoulli_kl(logit_sample, logits, None, 0.5)
    assert tuple(kl.shape) == (0, 3)


@pytest.mark.parametrize("name", BERNOULLI_OPS)
def test_an_empty_batch_of_bernoulli_logits_gives_an_empty_result(name):
    if name in ("bernoulli_kl_prior", "relaxed_bernoulli_logit_log_prob"):
        pytest.skip("the fixed first argument sets the shape")
    if name == "relaxed_bernoulli_kl":
        pytest.skip("covered with its own sample above")
    result = BERNOULLI_OPS[name](np.zeros((0, 3), "float32"))
    assert tuple(result.shape) == (0, 3)


@pytest.mark.parametrize("name", NORMALIZERS)
def test_rank_5_and_rank_6_inputs_match_rank_2(name, rng):
    """TensorFlow sorts tensors of rank 5 or less: the leading axes are
    flattened first, so any rank works."""
    x = rng.normal(size=(2, 1, 2, 3, 1, 4)).astype("float32")
    expected = to_numpy(NORMALIZERS[name](x.reshape(-1, 4)))
    for shape in [(2, 2, 3, 1, 4), x.shape]:
        result = to_numpy(NORMALIZERS[name](x.reshape(shape)))
        np.testing.assert_allclose(result.reshape(-1, 4), expected, atol=1e-7)


@pytest.mark.parametrize("name", NORMALIZERS)
def test_a_rank_0_input_raises_a_clear_error(name):
    with pytest.raises(
        ValueError,
        match=r"Invalid value received for argument `x`\. Expected a tensor "
        r"of rank >= 1\. Received: x\.shape=\(\)",
    ):
        NORMALIZERS[name](np.float32(1.0))


AXIS_OPS = {
    "softmax": latent_ops.softmax,
    "sparsemax": latent_ops.sparsemax,
    "entmax15": latent_ops.entmax15,
    "entmax_bisect": latent_ops.entmax_bisect,
    "tsallis_negentropy": lambda x, axis: latent_ops.tsallis_negentropy(
        x, 1.5, axis=axis
    ),
    "sparsemax_loss": lambda x, axis: latent_ops.sparsemax_loss(
        x, x, axis=axis
    ),
    "entmax15_loss": lambda x, axis: latent_ops.entmax15_loss(x, x, axis=axis),
    "entmax_bisect_loss": lambda x, axis: latent_ops.entmax_bisect_loss(
        x, x, axis=axis
    ),
}


@pytest.mark.parametrize("name", AXIS_OPS)
@pytest.mark.parametrize("axis", [2, -3])
def test_an_axis_out_of_range_raises_a_clear_error(name, axis):
    # PyTorch raised an IndexError, JAX and TensorFlow NumPy's message.
    with pytest.raises(
        ValueError,
        match=r"Invalid value received for argument `axis`\. Expected an "
        rf"axis of a tensor of rank 2\. Received: axis={axis}",
    ):
        AXIS_OPS[name](np.full((2, 3), 1 / 3, "float32"), axis=axis)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.function only"
)
def test_grouped_normalize_with_an_unknown_last_dimension_raises():
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def normalize(x):
        return latent_ops.grouped_normalize(x, groups=2)

    with pytest.raises(
        ValueError,
        match=r"Invalid value received for argument `x`\. Expected a "
        r"statically known last dimension\. Received: x\.shape=",
    ):
        normalize(tf.zeros((2, 4)))


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.function only"
)
@pytest.mark.parametrize("name", NORMALIZERS)
def test_normalizers_accept_unknown_dimensions_in_a_tf_function(name, rng):
    """The leading axes are flattened by a dynamic reshape."""
    import tensorflow as tf

    if name.startswith("grouped"):
        pytest.skip("grouped_normalize needs a static last dimension")
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    compiled = tf.function(
        NORMALIZERS[name],
        input_signature=[tf.TensorSpec([None, None, 4], tf.float32)],
    )
    np.testing.assert_allclose(
        to_numpy(compiled(x)), to_numpy(NORMALIZERS[name](x)), atol=1e-7
    )


def test_nan_and_masks_do_not_leak_into_other_rows_gradients(rng):
    """A NaN row gives NaN values but keeps every other row's gradient
    finite, for every normalizer."""
    from tests.ops.gradients import gradient

    x = rng.normal(size=(3, 4)).astype("float32")
    x[0, 1] = np.nan
    x[2] = -np.inf
    for name, normalize in NORMALIZERS.items():
        grad = gradient(normalize, x)
        assert np.all(np.isfinite(grad[1:])), name


@pytest.mark.parametrize("temperature", [1e-40, 1e39, 0.0, float("nan")])
def test_a_temperature_float32_cannot_hold_is_rejected(temperature):
    """1e-40 becomes 0 (or a flushed denormal) in float32, 1e39 overflows."""
    with pytest.raises(
        ValueError,
        match=r"Invalid value received for argument `temperature`\. "
        r"Expected a float value between 1\.17549e-38 and 3\.40282e\+38 "
        r"\(a positive normal float32 number\)\. Received: temperature=",
    ):
        latent_ops.grouped_normalize(
            np.zeros((1, 2), "float32"), 1, "softmax", temperature
        )


RELAXED_SAMPLES = {
    "gumbel_softmax": lambda x, t: latent_ops.gumbel_softmax(x, t, seed=2),
    "gumbel_rao": lambda x, t: latent_ops.gumbel_rao(x, t, seed=2),
    "relaxed_bernoulli": lambda x, t: latent_ops.relaxed_bernoulli(
        x, t, seed=2
    ),
    "relaxed_top_k": lambda x, t: latent_ops.relaxed_top_k(x, 2, t, seed=2),
}


@pytest.mark.parametrize("name", RELAXED_SAMPLES)
@pytest.mark.parametrize("temperature", [2e-38, 1e-31, 0.0])
def test_a_relaxed_sample_rejects_a_temperature_below_its_floor(
    name, temperature
):
    """Below about 5e-38 the noisy logits divided by the temperature
    overflowed float32 (NaN in 5% of Gumbel-softmax rows and 48% of
    Gumbel-Rao's at 2e-38); the floor, 1e-30, keeps a wide margin."""
    with pytest.raises(
        ValueError,
        match=r"Invalid value received for argument `temperature`\. "
        r"Expected a float value between 1e-30 and 3\.40282e\+38\. "
        r"Received: temperature=",
    ):
        RELAXED_SAMPLES[name](np.zeros((2, 4), "float32"), temperature)


def test_relaxed_samples_and_kls_at_the_temperature_floor_are_the_limits(
    rng,
):
    """At 1e-30 a Gumbel-softmax sample is the one-hot of its Gumbel-max
    draw, and its log-sample's Monte Carlo KL is the one at temperature 1
    on the same noise: the estimate is a function of the noisy logits
    alone, whatever the common temperature."""
    logits = rng.normal(size=(256, 10)).astype("float32")
    # The same seed draws the same noise; the argmax of a sample at any
    # temperature is the Gumbel-max category.
    at_one = to_numpy(latent_ops.gumbel_softmax(logits, 1.0, seed=3))
    sample = to_numpy(latent_ops.gumbel_softmax(logits, 1e-30, seed=3))
    np.testing.assert_array_equal(sample, np.eye(10)[np.argmax(at_one, -1)])
    kls = {}
    for temperature in (1.0, 1e-30):
        log_sample = latent_ops.relaxed_one_hot_log_sample(
            logits, temperature, seed=4
        )
        kls[temperature] = to_numpy(
            latent_ops.relaxed_categorical_kl(
                log_sample, logits, None, temperature
            )
        )
    # Estimates up to about 25 nats; float32 at the floor keeps 1e-4.
    np.testing.assert_allclose(kls[1e-30], kls[1.0], rtol=0, atol=5e-4)


@pytest.mark.parametrize(
    "layer_class", ["CategoricalLatent", "BernoulliLatent", "GumbelSoftmax"]
)
def test_a_relaxed_layer_rejects_a_temperature_below_its_floor(layer_class):
    from keras_latent import layers
    from keras_latent import schedules

    layer = getattr(layers, layer_class)
    arguments = (2, 3) if layer_class == "CategoricalLatent" else ()
    with pytest.raises(ValueError, match=r"between 1e-30 and 3\.40282e\+38"):
        layer(*arguments, temperature=1e-31)
    decay = schedules.ExponentialDecay(1.0, 1e-31, 1e-3)
    with pytest.raises(ValueError, match=r"values are all >= 1e-30"):
        layer(*arguments, temperature=decay)
    layer(*arguments, temperature=schedules.ExponentialDecay(1.0, 1e-30, 1e-3))


TEMPERATURE_OPS = {
    **RELAXED_SAMPLES,
    "relaxed_one_hot_log_sample": lambda x, t: (
        latent_ops.relaxed_one_hot_log_sample(x, t, seed=2)
    ),
    "relaxed_categorical_kl": lambda x, t: latent_ops.relaxed_categorical_kl(
        np.full_like(x, -np.log(x.shape[-1])), x, None, t
    ),
    "grouped_normalize": lambda x, t: latent_ops.grouped_normalize(
        x, 2, "softmax", t
    ),
}


@pytest.mark.parametrize("name", TEMPERATURE_OPS)
def test_a_tensor_temperature_out_of_range_gives_nan(name, rng):
    """A tensor cannot be checked without a host round trip: a negative
    one (which flips the ordering of the categories), zero, NaN, or one
    below the floor gives NaN; one in range gives the float's result."""
    x = rng.normal(size=(2, 4)).astype("float32")
    for bad in [-0.5, 0.0, np.nan, 1e-36]:
        if name == "grouped_normalize" and bad == 1e-36:
            continue  # its floor is the smallest normal float32
        temperature = keras.ops.convert_to_tensor(bad, "float32")
        result = to_numpy(TEMPERATURE_OPS[name](x, temperature))
        assert np.all(np.isnan(result)), (bad, result)
    in_range = to_numpy(
        TEMPERATURE_OPS[name](x, keras.ops.convert_to_tensor(0.5, "float32"))
    )
    np.testing.assert_array_equal(
        in_range, to_numpy(TEMPERATURE_OPS[name](x, 0.5))
    )
