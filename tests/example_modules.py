"""Imports the scripts of `examples/` and `benchmarks/` as modules.

The scripts import each other by name (`import image_datasets`), as Python
lets a script import the modules beside it; the folders go on `sys.path`
so that the tests import them the same way, and share one module object.
"""

import contextlib
import importlib
import io
import pathlib
import sys

import pytest

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES_DIR = REPOSITORY_ROOT / "examples"
BENCHMARKS_DIR = REPOSITORY_ROOT / "benchmarks"

for folder in (BENCHMARKS_DIR, EXAMPLES_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def load(name):
    """The script `examples/<name>.py` or `benchmarks/<name>.py`."""
    return importlib.import_module(name)


def assert_keeps_an_earlier_run(main, arguments, output_dir, file_name):
    """Checks that `main(arguments + ["--output-dir", output_dir])`, where
    `output_dir` holds the `file_name` of an earlier run, stops with a
    usage error that names the file, before writing anything, and leaves
    the file as it was."""
    earlier = output_dir / file_name
    earlier.write_text("an earlier run")
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        with pytest.raises(SystemExit) as stop:
            main([*arguments, "--output-dir", str(output_dir)])
    assert stop.value.code == 2
    assert f"already holds {file_name}" in errors.getvalue()
    assert earlier.read_text() == "an earlier run"
    assert [path.name for path in output_dir.iterdir()] == [file_name]
