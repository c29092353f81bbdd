"""References shared by the tests, in float64 NumPy and SciPy.

Each is written from its definition (the paper is named where there is one),
never computed with keras-latent; `tests/test_references.py` anchors them on
hand-worked values. The statistical checks at the end state their
false-failure rate.
"""

import numpy as np
from scipy import optimize
from scipy import special
from scipy import stats


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`."""
    x = np.asarray(x, np.float64)
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - log(sum(exp(x))) along `axis`."""
    x = np.asarray(x, np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def one_hot_of_argmax(x, axis=-1):
    """The one-hot of `np.argmax` along `axis` (first index on ties)."""
    x = np.asarray(x)
    winners = np.expand_dims(np.argmax(x, axis=axis), axis)
    categories = np.arange(x.shape[axis]).reshape(
        [-1 if i == axis % x.ndim else 1 for i in range(x.ndim)]
    )
    return (winners == categories).astype(np.float64)


def categorical_kl(logits, prior_logits=None, axis=-1):
    """KL(softmax(logits) || softmax(prior_logits)) along `axis`.

    sum_k q_k log(q_k / p_k), with 0 log 0 = 0; `prior_logits=None` is the
    uniform prior. Log-probabilities are valid logits.
    """
    q = softmax(logits, axis=axis)
    if prior_logits is None:
        p = np.full_like(q, 1.0 / q.shape[axis])
    else:
        p = softmax(np.broadcast_to(prior_logits, q.shape), axis=axis)
    return special.rel_entr(q, p).sum(axis=axis)


def bernoulli_kl(logits, prior_logits=0.0):
    """KL(Bernoulli(sigmoid(logits)) || Bernoulli(sigmoid(prior_logits))).

    Elementwise, with 0 log 0 = 0.
    """
    q = special.expit(np.asarray(logits, np.float64))
    p = special.expit(np.asarray(prior_logits, np.float64))
    return special.rel_entr(q, p) + special.rel_entr(1.0 - q, 1.0 - p)


def sparsemax(z, axis=-1):
    """Sparsemax along `axis`: Alg. 1 of Martins and Astudillo (2016).

    For each vector: sort z descending; the support size is the largest k
    with 1 + k * z_(k) > z_(1) + ... + z_(k); the threshold is
    (z_(1) + ... + z_(k) - 1) / k; the output is max(z - threshold, 0).
    Entries of -inf are left out of the sort and get 0.
    """

    def one(vector):
        z_sorted = np.sort(vector[np.isfinite(vector)])[::-1]
        cumulative = np.cumsum(z_sorted)
        k = np.arange(1, len(z_sorted) + 1)
        support_size = k[1.0 + k * z_sorted > cumulative].max()
        threshold = (cumulative[support_size - 1] - 1.0) / support_size
        return np.maximum(vector - threshold, 0.0)

    return np.apply_along_axis(one, axis, np.asarray(z, np.float64))


def entmax(z, alpha, axis=-1):
    """Alpha-entmax along `axis` by root finding (softmax at alpha = 1).

    alpha-entmax(z) = max((alpha - 1) z - tau, 0) ** (1 / (alpha - 1)) with
    tau such that the entries sum to 1 (Peters et al., 2019), found by
    `scipy.optimize.brentq`. The maximum is subtracted first (entmax does not
    change when a constant is added), so that tau lies in [-1, 0], where
    float64 resolves the tolerance given to `brentq`.
    """

    def one(vector):
        if alpha == 1.0:
            return softmax(vector)
        exponent = 1.0 / (alpha - 1.0)
        x = (alpha - 1.0) * (vector - vector.max())
        finite = x[np.isfinite(x)]

        def excess_mass(threshold):
            return np.sum(np.maximum(finite - threshold, 0.0) ** exponent) - 1

        threshold = optimize.brentq(
            excess_mass,
            finite.max() - 1.0,
            finite.max(),
            xtol=1e-15,
            rtol=1e-15,
        )
        unnormalized = np.maximum(x - threshold, 0.0) ** exponent
        return unnormalized / unnormalized.sum()

    return np.apply_along_axis(one, axis, np.asarray(z, np.float64))


def entmax15(z, axis=-1):
    """1.5-entmax along `axis`: `entmax(z, 1.5, axis)`."""
    return entmax(z, 1.5, axis=axis)


NORMALIZERS = {"softmax": softmax, "sparsemax": sparsemax, "entmax15": entmax15}


def grouped(x, groups, normalizer, temperature):
    """Splits the last axis into `groups` and normalizes each group of
    `x / temperature` with the named normalizer."""
    x = np.asarray(x, np.float64)
    split = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
    return NORMALIZERS[normalizer](split / temperature).reshape(x.shape)


def group_sums(p, groups):
    """The sum of each of the `groups` groups of the last axis."""
    return p.reshape(*p.shape[:-1], groups, p.shape[-1] // groups).sum(-1)


def cosine_similarity(keys, memory):
    """cos(k, M[i]) = k . M[i] / (|k| |M[i]|), broadcasting leading axes
    (Graves et al., 2014, eq. 6)."""
    keys = np.asarray(keys, np.float64)[..., None, :]
    memory = np.asarray(memory, np.float64)
    dots = np.sum(keys * memory, axis=-1)
    norms = np.linalg.norm(keys, axis=-1) * np.linalg.norm(memory, axis=-1)
    return dots / norms


def assert_exact_one_hot(y, axis=-1):
    """Every slice along `axis` holds exactly one 1 and zeros."""
    y = np.asarray(y)
    assert np.all((y == 0.0) | (y == 1.0))
    np.testing.assert_array_equal(np.sum(y, axis=axis), 1.0)


def assert_counts_match(counts, probabilities, false_failure_rate):
    """Chi-square test of every slice of `counts` against `probabilities`.

    Both have the categories on the last axis; slices are tested separately
    at level `false_failure_rate / number of slices` (Bonferroni), so a
    correct sampler fails with probability at most `false_failure_rate`.
    """
    counts = counts.reshape(-1, counts.shape[-1])
    probabilities = probabilities.reshape(-1, probabilities.shape[-1])
    expected = counts.sum(axis=-1, keepdims=True) * probabilities
    _, p_values = stats.chisquare(counts, expected, axis=-1)
    level = false_failure_rate / len(counts)
    assert p_values.min() >= level, (p_values, counts, expected)
