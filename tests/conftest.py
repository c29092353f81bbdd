"""Shared test set-up: the backend comes from KERAS_BACKEND (see Makefile)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Most of the suite's time under JAX is XLA compiling small graphs, once
# each; LLVM's optimization passes cost more there than they save on
# arrays of a few hundred numbers (a third less CPU time, measured on two
# of the slowest tests). Float semantics do not change: fast math stays
# off. Examples and benchmarks run from the command line are compiled as
# usual.
TEST_XLA_FLAGS = (
    "--xla_backend_optimization_level=0",
    "--xla_llvm_disable_expensive_passes=true",
    # XLA's MLIR fusion emitters compile a small fusion in about twice the
    # time of its classic emitters: 100 against 51 ms for a jitted
    # sin-and-cumsum, 117 against 76 s for four of the slowest test files.
    "--xla_cpu_use_fusion_emitters=false",
)
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), *TEST_XLA_FLAGS]
).strip()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Under pytest-xdist each worker has a core of its own (`make test` starts
# as many workers as CI has cores). PyTorch's intra-op threads, one per
# core in every worker, would then contend for the cores and spin: one
# thread per worker took a third of the time on the torch suite's slowest
# files (86 -> 40 s, 2 workers on 2 cores). TensorFlow gained 5% and JAX
# lost 28% with one thread, so they keep their defaults.
if keras.backend.backend() == "torch" and "PYTEST_XDIST_WORKER" in os.environ:
    import torch

    torch.set_num_threads(1)

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
