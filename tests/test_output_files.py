"""The examples' rule for output files, `examples/output_files.py`."""

import argparse

import pytest

from tests import example_modules


def test_an_earlier_runs_file_is_kept_unless_overwrite_is_given(
    tmp_path, capsys
):
    output_files = example_modules.load("output_files")
    parser = argparse.ArgumentParser()
    (tmp_path / "results.md").write_text("an earlier run")
    with pytest.raises(SystemExit) as stop:
        output_files.refuse_to_overwrite(
            parser, str(tmp_path), ("results.json", "results.md"), False
        )
    assert stop.value.code == 2
    assert "already holds results.md" in capsys.readouterr().err
    assert (tmp_path / "results.md").read_text() == "an earlier run"
    # With --overwrite, or in a fresh folder, the script goes on.
    output_files.refuse_to_overwrite(
        parser, str(tmp_path), ("results.md",), True
    )
    output_files.refuse_to_overwrite(
        parser, str(tmp_path / "fresh"), ("results.md",), False
    )


def test_an_output_dir_that_is_a_file_is_refused_and_kept(tmp_path, capsys):
    output_files = example_modules.load("output_files")
    users_file = tmp_path / "notes.txt"
    users_file.write_text("a user's notes")
    for overwrite in (False, True):
        with pytest.raises(SystemExit) as stop:
            output_files.refuse_to_overwrite(
                argparse.ArgumentParser(),
                str(users_file),
                ("results.md",),
                overwrite,
            )
        assert stop.value.code == 2
        assert "is a file, not a folder" in capsys.readouterr().err
    assert users_file.read_text() == "a user's notes"
