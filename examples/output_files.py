"""The rule for an example's or benchmark's output files: never replace
the files of an earlier run unless asked to."""

import os


def refuse_to_overwrite(parser, output_dir, names, overwrite):
    """Stops with a usage error if `output_dir` already holds any of
    `names` and `overwrite` is False, or is a file and not a folder
    (whatever `overwrite`).

    Args:
        parser: the script's `argparse.ArgumentParser`, whose `exit`
            prints the error.
        output_dir: the folder the script writes to.
        names: the file names the script writes there.
        overwrite: the script's `--overwrite` flag.
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        parser.exit(
            2,
            f"error: --output-dir {output_dir} is a file, not a folder; "
            "pass another --output-dir\n",
        )
    existing = [
        name for name in names if os.path.exists(os.path.join(output_dir, name))
    ]
    if existing and not overwrite:
        parser.exit(
            2,
            f"error: {output_dir} already holds {', '.join(existing)}; "
            "pass --overwrite to replace them, or another --output-dir\n",
        )
