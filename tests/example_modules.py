"""Imports the scripts of `examples/` and `benchmarks/` as modules.

The scripts import each other by name (`import image_datasets`), as Python
lets a script import the modules beside it; the folders go on `sys.path`
so that the tests import them the same way, and share one module object.
"""

import importlib
import pathlib
import sys

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES_DIR = REPOSITORY_ROOT / "examples"
BENCHMARKS_DIR = REPOSITORY_ROOT / "benchmarks"

for folder in (BENCHMARKS_DIR, EXAMPLES_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def load(name):
    """The script `examples/<name>.py` or `benchmarks/<name>.py`."""
    return importlib.import_module(name)
