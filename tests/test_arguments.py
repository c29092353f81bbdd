"""The examples' checks of their arguments, `examples/arguments.py`."""

import argparse

import pytest

from tests import example_modules


@pytest.mark.parametrize("value", [0, -5])
def test_an_argument_below_one_is_a_usage_error_naming_it(value, capsys):
    arguments = example_modules.load("arguments")
    parser = argparse.ArgumentParser()
    args = argparse.Namespace(epochs=3, batch_size=value)
    with pytest.raises(SystemExit) as stop:
        arguments.require_at_least_one(parser, args, ("epochs", "batch_size"))
    assert stop.value.code == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    arguments.require_at_least_one(parser, args, ("epochs",))
