"""Shared test set-up: the backend comes from KERAS_BACKEND (see Makefile)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def reset_dtype_policy():
    """Each test starts and ends under the float32 policy."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, for inputs and references."""
    return np.random.default_rng(20261126)
