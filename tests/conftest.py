"""Shared test set-up: the backend comes from KERAS_BACKEND (see Makefile)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The benchmarks' harness logic (loops, tables, verdicts) does not depend on
# the backend, and the layers and ops they drive are tested under every
# backend; their end-to-end runs go under one backend, the quickest to
# compile them, to keep the suite within its time budget.
HARNESS_BACKEND = "tensorflow"


def pytest_collection_modifyitems(config, items):
    if keras.backend.backend() == HARNESS_BACKEND:
        return
    skip = pytest.mark.skip(
        reason=f"a benchmark's end-to-end run: under {HARNESS_BACKEND} only"
    )
    for item in items:
        if "harness" in item.keywords:
            item.add_marker(skip)


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
