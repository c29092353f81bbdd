"""The examples' checks of their command-line arguments, each a usage
error (exit 2) before any work starts."""


def require_at_least_one(parser, args, names):
    """Stops with a usage error if an integer argument of `names` is below 1.

    Args:
        parser: the script's `argparse.ArgumentParser`, whose `error`
            prints the message and exits.
        args: the parsed arguments.
        names: the arguments' attribute names, such as `"batch_size"`.
    """
    for name in names:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
