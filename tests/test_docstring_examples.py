"""The docstring examples of every module of keras_latent run as written,
on every backend: each `>>>` line gives the output shown under it."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_latent

GLOBALS = {"keras": keras, "keras_latent": keras_latent, "np": np}


def docstring_tests(module_name):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder().find(module, globs=dict(GLOBALS))
    return [test for test in tests if test.examples]


# The modules that hold examples (the package's __init__ files hold none).
MODULES = [
    module.name
    for module in pkgutil.walk_packages(
        keras_latent.__path__, keras_latent.__name__ + "."
    )
    if docstring_tests(module.name)
]


def test_the_modules_with_examples_are_found():
    assert len(MODULES) >= 26, MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run_as_written(module_name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    failures = []
    for test in docstring_tests(module_name):
        runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)
