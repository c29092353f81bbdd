"""Every Python snippet in the README runs and does what its text claims.

Each snippet runs as written, with `print` recording what it prints; the
check registered for its section (the heading above it) then compares those
values, and the snippet's variables, with references computed here in NumPy
float64, not by keras-latent.
"""

import builtins
import math
import pathlib
import re

import keras
import numpy as np
import pytest

from tests.arrays import to_numpy

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def readme_snippets():
    """`(heading, code)` for each Python snippet, under its last heading."""
    text = README.read_text()
    snippets = []
    for match in re.finditer(r"```python\n(.*?)```", text, re.DOTALL):
        headings = re.findall(r"^#+ (.*)$", text[: match.start()], re.M)
        snippets.append((headings[-1].strip(), match.group(1)))
    return snippets


SNIPPETS = readme_snippets()


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    x = np.asarray(x, dtype=np.float64)
    exp = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return exp / np.sum(exp, axis=-1, keepdims=True)


def entropy(p):
    p = np.asarray(p, dtype=np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), -1)


def numpy_entmax(x, alpha):
    """alpha-entmax of a vector by bisection on its threshold, in float64.

    p_i = max(0, (alpha - 1) * x_i - tau) ** (1 / (alpha - 1)), with tau
    such that the p_i sum to 1 (Peters et al. 2019).
    """
    scaled = (alpha - 1.0) * np.asarray(x, dtype=np.float64)
    low, high = np.max(scaled) - 1.0, np.max(scaled)
    for _ in range(200):
        tau = (low + high) / 2
        total = np.sum(np.maximum(scaled - tau, 0) ** (1 / (alpha - 1)))
        low, high = (tau, high) if total > 1 else (low, tau)
    return np.maximum(scaled - tau, 0) ** (1 / (alpha - 1))


def assert_one_hot(values):
    values = to_numpy(values)
    assert set(np.unique(values)) <= {0.0, 1.0}
    np.testing.assert_array_equal(np.sum(values, axis=-1), 1.0)


"""
## What each section's snippet claims
"""


def check_gumbel_softmax(namespace, printed):
    (training,), (inference,) = printed
    assert_one_hot(training)  # "one-hot samples, straight-through"
    # "the one-hot argmax" of [2, 0.5, -1] and [0, 0, 3].
    np.testing.assert_array_equal(to_numpy(inference), [[1, 0, 0], [0, 0, 1]])


def check_categorical_latent(namespace, printed):
    ((keys,),) = printed
    assert keys == ["latent_kl", "loss"]
    history = namespace["history"].history
    # The reconstruction is summed over the 64 pixels: random binary
    # images cost about 64 * log(2) = 44 nats each, far above the KL of 8
    # four-way variables (at most 8 * log(4) = 11). A mean over pixels
    # would give less than 1 plus the KL.
    assert history["loss"][-1] > 30.0
    assert 0.0 <= history["latent_kl"][-1] <= 8 * math.log(4) + 1e-4


def check_bernoulli_latent(namespace, printed):
    ((shape, losses),) = printed
    assert tuple(shape) == (4, 16)
    # The KL to Bernoulli(0.2), summed over the 16 units, mean over batch.
    logits = to_numpy(keras.random.normal((4, 16), seed=0))
    q = sigmoid(logits)
    kl = q * np.log(q / 0.2) + (1 - q) * np.log((1 - q) / 0.8)
    (loss,) = losses
    np.testing.assert_allclose(
        to_numpy(loss), np.mean(np.sum(kl, axis=-1)), rtol=1e-5
    )


def check_estimators(namespace, printed):
    (codes,), (first_loss, last_loss) = printed
    # "exact one-hot samples" of 4 variables of 3 categories, 2 examples.
    assert tuple(codes.shape) == (2, 4, 3)
    assert_one_hot(codes)
    # "the mean loss falls": from about 1 (y = +-1, an untrained decoder)
    # to about a third in 8 epochs on every backend.
    assert last_loss < 0.6 * first_loss and last_loss < 0.5
    model = namespace["model"]
    _, samples, _ = model(namespace["x"][:8])
    assert_one_hot(samples)


def check_hidden_softmax(namespace, printed):
    ((sums,),) = printed
    assert tuple(sums.shape) == (2, 16)
    np.testing.assert_allclose(to_numpy(sums), 1.0, rtol=1e-5)  # "all ones"


def check_learned_alpha(namespace, printed):
    (before,), (after,) = printed
    np.testing.assert_array_equal(to_numpy(before), [1.5] * 4)
    # "each group's own alpha, in (1, 2)": trained away from 1.5.
    after = to_numpy(after)
    assert np.all((after > 1.0) & (after < 2.0))
    assert np.all(after != 1.5) and len(np.unique(after)) == 4
    # The layer's outputs: each group of its pre-activations normalized by
    # entmax at that group's alpha.
    layer, x = namespace["hidden"], namespace["x"][:4]
    logits = x @ to_numpy(layer.kernel) + to_numpy(layer.bias)
    expected = np.concatenate(
        [
            np.apply_along_axis(numpy_entmax, -1, group, alpha)
            for group, alpha in zip(
                np.split(logits, 4, axis=-1), after, strict=True
            )
        ],
        axis=-1,
    )
    np.testing.assert_allclose(to_numpy(layer(x)), expected, atol=1e-6)


def check_content_addressing(namespace, printed):
    ((shape, sums),) = printed
    assert tuple(shape) == (2, 16)
    np.testing.assert_allclose(to_numpy(sums), 1.0, rtol=1e-5)


def check_sparse_multi_head_attention(namespace, printed):
    (output_shape, weights_shape), (sums,), (zeros,) = printed
    assert tuple(output_shape) == (2, 6, 16)
    assert tuple(weights_shape) == (2, 2, 6, 6)
    np.testing.assert_allclose(to_numpy(sums), 1.0, atol=1e-6)
    # The weights: sparsemax (2-entmax) of the scaled dot products of the
    # layer's own projections, the masked step at -inf.
    layer, x = namespace["attention"], to_numpy(namespace["x"])

    def project(dense):
        kernel, bias = to_numpy(dense.kernel), to_numpy(dense.bias)
        return np.einsum("btd,dnh->btnh", x, kernel) + bias

    scores = np.einsum(
        "btnh,bsnh->bnts", project(layer.query_dense), project(layer.key_dense)
    ) / np.sqrt(8)
    scores[..., -1] = -np.inf
    expected = np.apply_along_axis(numpy_entmax, -1, scores, 2.0)
    weights = to_numpy(namespace["weights"])
    np.testing.assert_allclose(weights, expected, atol=2e-6)
    # "1 zero per row for the masked step, and more": exact zeros.
    assert np.all(weights[..., -1] == 0.0)
    zeros = to_numpy(zeros)
    np.testing.assert_array_equal(zeros, np.sum(expected == 0.0, axis=-1))
    assert np.all(zeros >= 1) and np.sum(zeros) > zeros.size


def check_subset_sampler(namespace, printed):
    (relaxed,), (inference,), (hard,) = printed
    logits = to_numpy(namespace["logits"])
    relaxed, hard = to_numpy(relaxed), to_numpy(hard)
    # "relaxed 2-hot rows, each sums to 2", zero where the logit is -inf.
    np.testing.assert_allclose(relaxed.sum(-1), 2.0, atol=1e-5)
    assert np.all(relaxed >= 0.0) and relaxed[1, 1] == 0.0
    # "the 2 largest logits of each row".
    largest = np.argsort(-logits, axis=-1)[:, :2]
    np.testing.assert_array_equal(
        to_numpy(inference), (np.eye(4)[largest]).sum(axis=1)
    )
    # "exact 2-hot samples, never the -inf".
    assert set(np.unique(hard)) <= {0.0, 1.0}
    np.testing.assert_array_equal(hard.sum(-1), 2.0)
    assert hard[1, 1] == 0.0


def check_ops(namespace, printed):
    (
        (sample,),
        (kl,),
        (log_prob,),
        (exact_sample,),
        (bernoulli_sample,),
        (bernoulli_kl,),
        (sparse,),
        (entmax15, entmax_bisect),
        (grouped,),
        (weights, read_shape),
    ) = printed
    sample = to_numpy(sample)
    assert sample[0, 2] == 0.0  # "the masked category gets exactly 0"
    np.testing.assert_allclose(np.sum(sample), 1.0, rtol=1e-5)
    # KL(softmax([1, 2, -inf]) || uniform over the 2 unmasked categories).
    p = softmax([1.0, 2.0])
    np.testing.assert_allclose(
        to_numpy(kl), [np.sum(p * np.log(2 * p))], rtol=1e-5
    )
    assert np.all(np.isfinite(to_numpy(log_prob)))
    assert_one_hot(exact_sample)
    assert to_numpy(exact_sample)[0, 2] == 0.0
    assert tuple(bernoulli_sample.shape) == (1, 2)
    assert set(np.unique(to_numpy(bernoulli_sample))) <= {0.0, 1.0}
    q = sigmoid(np.array([-2.0, 0.0, 3.0]))
    expected_kl = q * np.log(2 * q) + (1 - q) * np.log(2 * (1 - q))
    np.testing.assert_allclose(to_numpy(bernoulli_kl), expected_kl, rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(sparse), [0.0, 0.1, 0.2, 0.3, 0.4], atol=1e-6
    )
    scores = [0.1, 0.2, 0.3, 0.4, 0.5]
    np.testing.assert_allclose(
        to_numpy(entmax15), numpy_entmax(scores, 1.5), atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(entmax_bisect), numpy_entmax(scores, 1.2), atol=1e-5
    )
    np.testing.assert_allclose(
        to_numpy(grouped),
        [np.concatenate([softmax([0.1, 0.2]), softmax([0.3, 0.4])])],
        rtol=1e-5,
    )
    weights = to_numpy(weights)
    assert np.argmax(weights) == 2 and weights[0, 2] > 0.5  # slot 2 dominates
    np.testing.assert_allclose(np.sum(weights), 1.0, rtol=1e-5)
    assert tuple(read_shape) == (1, 8)


def check_schedules(namespace, printed):
    (iterations,), (temperature, kl_weight) = printed
    # 2 epochs of 8 steps: the counter says 16, the decay has reached its
    # floor of 0.5 and the 8-step warm-up its end value of 1.
    assert int(iterations) == 16
    assert temperature == 0.5
    assert kl_weight == 1.0


def check_callbacks(namespace, printed):
    (temperatures,), (kl_weights,) = printed
    # 8 steps per epoch; the temperature in force after step s is
    # max(0.5, exp(-0.01 * s)) with s a multiple of 4: 8, then 16.
    np.testing.assert_allclose(
        temperatures, [math.exp(-0.08), math.exp(-0.16)], rtol=1e-6
    )
    # A linear warm-up over 16 steps: half after 8, all after 16.
    np.testing.assert_allclose(kl_weights, [0.5, 1.0], rtol=1e-6)


def check_regularizers(namespace, printed):
    ((losses,),) = printed
    (loss,) = losses
    # "0.01 * the mean entropy of the 8 rows".
    rows = to_numpy(namespace["outputs"])
    np.testing.assert_allclose(
        to_numpy(loss), 0.01 * np.mean(entropy(rows)), rtol=1e-5
    )


def check_losses(namespace, printed):
    (summed,), (mean,) = printed
    np.testing.assert_allclose(to_numpy(summed), 4 * math.log(2), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(mean), math.log(2), rtol=1e-6)


def numpy_fenchel_young_loss(logits, label, alpha):
    """<p - y, z> + Omega(y) - Omega(p), with Omega(one-hot) = 0."""
    p = numpy_entmax(logits, alpha)
    y = np.eye(len(logits))[label]
    negentropy = (np.sum(p**alpha) - 1) / (alpha * (alpha - 1))
    return np.dot(p - y, logits) - negentropy


def check_fenchel_young_losses(namespace, printed):
    (sparsemax_losses,), (predictions,), (entmax_loss,) = printed
    logits, labels = namespace["logits"], namespace["labels"]
    np.testing.assert_allclose(to_numpy(sparsemax_losses), [0.0, 0.5625])
    np.testing.assert_allclose(
        to_numpy(predictions), [[1, 0, 0], [0.75, 0.25, 0]], atol=1e-7
    )
    expected = [
        numpy_fenchel_young_loss(row, label, 1.5)
        for row, label in zip(logits, labels, strict=True)
    ]
    np.testing.assert_allclose(
        to_numpy(entmax_loss), np.mean(expected), rtol=1e-5
    )


def check_saving(namespace, printed):
    assert printed == [(True,)]


def check_evaluation_and_diagnostics(namespace, printed):
    (expectation,), (gradient,), (shape, negative_bound) = printed
    # One variable: E = sum_k p_k (k - 0.45)^2, and its gradient
    # p_k ((k - 0.45)^2 - E) with respect to logit k.
    p = softmax([0.0, 1.0, -1.0])
    values = (np.arange(3) - 0.45) ** 2
    mean = np.sum(p * values)
    np.testing.assert_allclose(to_numpy(expectation), mean, rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(gradient), [p * (values - mean)], rtol=1e-5, atol=1e-6
    )
    assert tuple(shape) == (5,)
    # "-bound in nats per image": 16 pixels of an untrained decoder cost
    # between 16 * log(2) - 6 and 16 * log(2) + 16 nats; a bound of the
    # wrong sign, or averaged over pixels, is far from it.
    assert 16 * math.log(2) - 6 < negative_bound < 16 * math.log(2) + 16


# The check of each snippet, in the README's order, by its section.
CHECKS = [
    ("`GumbelSoftmax`", check_gumbel_softmax),
    ("`CategoricalLatent`", check_categorical_latent),
    ("`BernoulliLatent`", check_bernoulli_latent),
    ("Estimators", check_estimators),
    ("`HiddenSoftmax` and `GroupedSoftmax`", check_hidden_softmax),
    ("`HiddenSoftmax` and `GroupedSoftmax`", check_learned_alpha),
    ("`ContentAddressing`", check_content_addressing),
    ("`SparseMultiHeadAttention`", check_sparse_multi_head_attention),
    ("`SubsetSampler`", check_subset_sampler),
    ("Ops", check_ops),
    ("Schedules and callbacks", check_schedules),
    ("Schedules and callbacks", check_callbacks),
    ("Regularizers", check_regularizers),
    ("Losses", check_losses),
    ("Losses", check_fenchel_young_losses),
    ("Saving and loading", check_saving),
    ("Evaluation and diagnostics", check_evaluation_and_diagnostics),
]


def test_every_snippet_has_a_check_of_its_claims():
    assert [heading for heading, _ in SNIPPETS] == [
        heading for heading, _ in CHECKS
    ]


@pytest.mark.parametrize(
    "code, check",
    [
        (code, check)
        for (_, code), (_, check) in zip(SNIPPETS, CHECKS, strict=False)
    ],
    ids=[check.__name__ for _, check in CHECKS],
)
def test_readme_snippet_does_what_it_says(code, check):
    printed = []

    def recording_print(*values, **kwargs):
        printed.append(values)
        builtins.print(*values, **kwargs)

    namespace = {"__name__": "readme", "print": recording_print}
    exec(compile(code, str(README), "exec"), namespace)
    check(namespace, printed)
