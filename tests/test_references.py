"""The shared references of `tests/references.py` on hand-worked values."""

import numpy as np

from tests import references


def test_normalizers_agree_with_hand_worked_values():
    np.testing.assert_allclose(
        references.sparsemax(np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])),
        [[0.0, 0.1, 0.2, 0.3, 0.4]],
        atol=1e-12,
    )
    # Two equal logits 2 apart from a third: entmax15 keeps only the pair.
    np.testing.assert_allclose(
        references.entmax15(np.array([[0.0, 0.0, -2.0]])),
        [[0.5, 0.5, 0.0]],
        atol=1e-12,
    )
    # z / 2 = (-1, 0, 0.25) with support {0, 0.25}: tau solves
    # tau ** 2 + (0.25 - tau) ** 2 = 1, so tau = (0.5 - sqrt(7.75)) / 4.
    tau = (0.5 - np.sqrt(7.75)) / 4.0
    np.testing.assert_allclose(
        references.entmax15(np.array([[-2.0, 0.0, 0.5]])),
        [[0.0, tau**2, (0.25 - tau) ** 2]],
        atol=1e-12,
    )
    np.testing.assert_allclose(
        references.softmax(np.log([[1.0, 3.0]])), [[0.25, 0.75]], atol=1e-12
    )
    np.testing.assert_allclose(
        references.log_softmax(np.log([[1.0, 3.0]])),
        np.log([[0.25, 0.75]]),
        atol=1e-12,
    )


def test_entmax_at_alpha_2_is_the_sort_based_sparsemax(rng):
    z = rng.normal(size=(5, 7))
    np.testing.assert_allclose(
        references.entmax(z, 2.0, axis=0),
        references.sparsemax(z, axis=0),
        atol=1e-12,
    )


def test_one_hot_of_argmax_takes_the_first_of_tied_maxima():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    np.testing.assert_array_equal(
        references.one_hot_of_argmax(x), [[0, 1, 0], [1, 0, 0]]
    )
    np.testing.assert_array_equal(
        references.one_hot_of_argmax(x, axis=0), [[0, 1, 1], [1, 0, 0]]
    )


def test_kls_agree_with_hand_worked_values():
    # KL((1/4, 3/4) || uniform) = log 2 + (1/4) log(1/4) + (3/4) log(3/4).
    expected = np.log(2.0) + 0.25 * np.log(0.25) + 0.75 * np.log(0.75)
    np.testing.assert_allclose(
        references.categorical_kl(np.log([1.0, 3.0])), expected, rtol=1e-12
    )
    np.testing.assert_allclose(
        references.categorical_kl(np.log([1.0, 3.0]), [0.0, 0.0]),
        expected,
        rtol=1e-12,
    )
    # Bernoulli(1/2) against Bernoulli(1/4): (1/2) log 2 + (1/2) log(2/3).
    np.testing.assert_allclose(
        references.bernoulli_kl(0.0, np.log(1.0 / 3.0)),
        0.5 * np.log(2.0) + 0.5 * np.log(2.0 / 3.0),
        rtol=1e-12,
    )
