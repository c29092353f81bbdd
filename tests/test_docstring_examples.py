"""The docstring examples of the latent math run as written, on every
backend: each `>>>` line gives the output shown under it."""

import doctest
import importlib

import keras
import numpy as np
import pytest

import keras_latent

MODULES = [
    "keras_latent.ops.bernoulli",
    "keras_latent.ops.discrete",
    "keras_latent.ops.estimators",
    "keras_latent.ops.gumbel",
    "keras_latent.ops.kl",
    "keras_latent.ops.noise",
    "keras_latent.schedules",
    "keras_latent.layers.bernoulli_latent",
    "keras_latent.layers.categorical_latent",
    "keras_latent.layers.gumbel_softmax",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run_as_written(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(
        module,
        globs={"keras": keras, "keras_latent": keras_latent, "np": np},
    )
    assert any(test.examples for test in tests)
    failures = []
    for test in tests:
        runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)
