"""Argument checks shared by every public op, layer and callback.

Every check raises a `ValueError` with the one message shape Keras uses:
"Invalid value received for argument `name`. Expected ... Received: name=...".
"""

import math
import numbers

import numpy as np
from keras import ops

FLOAT32_TINY = float(np.finfo(np.float32).tiny)
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The smallest temperature of a relaxed sample. The noisy logits of a sample
# lie at most about 17 above their maximum, and are divided by the
# temperature: below about 5e-38 the quotient overflows float32 and the
# sample is NaN, and up to 1e-37 the log-sample and its KL underflow.
# 1e-30 leaves a margin of ten million for the rest of the computation.
MIN_TEMPERATURE = 1e-30


def invalid_value(name, expected, value):
    """The `ValueError` for an argument `name` that is not what was expected."""
    return ValueError(
        f"Invalid value received for argument `{name}`. Expected {expected}. "
        f"Received: {name}={value!r}"
    )


def invalid_shape(name, expected, shape):
    """The `ValueError` for a tensor argument `name` of the wrong shape."""
    return ValueError(
        f"Invalid value received for argument `{name}`. Expected {expected}. "
        f"Received: {name}.shape={tuple(shape)}"
    )


def is_python_number(value):
    """Whether `value` is a plain (non-tensor) real number, bools excluded."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_float(name, value):
    """Checks a finite float > 0. Returns it as a Python float."""
    if not is_python_number(value) or not math.isfinite(value) or value <= 0:
        raise invalid_value(name, "a finite float value > 0", value)
    return float(value)


def check_float_at_least(name, value, minimum):
    """Checks a finite float >= `minimum`. Returns it as a Python float."""
    if (
        not is_python_number(value)
        or not math.isfinite(value)
        or value < minimum
    ):
        raise invalid_value(name, f"a finite float value >= {minimum:g}", value)
    return float(value)


def check_non_negative_float(name, value):
    """Checks a finite float >= 0. Returns it as a Python float."""
    return check_float_at_least(name, value, 0)


def check_open_unit_interval(name, value):
    """Checks a float strictly between 0 and 1. Returns it as a float."""
    if not is_python_number(value) or not 0.0 < value < 1.0:
        raise invalid_value(
            name, "a float value strictly between 0 and 1", value
        )
    return float(value)


def check_integer(name, value, minimum):
    """Checks an integer >= `minimum`. Returns it as a Python int."""
    is_integer = isinstance(value, (numbers.Integral, np.integer))
    if isinstance(value, bool) or not is_integer or value < minimum:
        raise invalid_value(name, f"an integer >= {minimum}", value)
    return int(value)


def check_seed(seed):
    """Checks a layer seed: None or an integer >= 0. Returns it."""
    if seed is None:
        return None
    return check_integer("seed", seed, minimum=0)


def check_choice(name, value, choices):
    """Checks that `value` is one of `choices`. Returns it unchanged."""
    if value not in choices:
        expected = "one of " + ", ".join(repr(choice) for choice in choices)
        raise invalid_value(name, expected, value)
    return value


def check_bool(name, value):
    """Checks a Python or NumPy bool. Returns it as a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise invalid_value(name, "a boolean", value)
    return bool(value)


def check_axis(name, value):
    """Checks an integer axis (negative values count from the end)."""
    if isinstance(value, bool) or not isinstance(
        value, (numbers.Integral, np.integer)
    ):
        raise invalid_value(name, "an integer axis", value)
    return int(value)


def check_axis_in_rank(name, axis, rank):
    """Checks that `axis` (negative values count from the end) names an
    axis of a tensor of rank `rank`."""
    if not -rank <= axis < rank:
        raise invalid_value(name, f"an axis of a tensor of rank {rank}", axis)
    return axis


def check_divisor(name, value, dividend_name, dividend):
    """Checks an integer >= 1 that divides `dividend` (if known). Returns it."""
    value = check_integer(name, value, minimum=1)
    if dividend is not None and dividend % value:
        raise invalid_value(
            name, f"a divisor of {dividend_name}={dividend}", value
        )
    return value


def check_float32(name, value, positive=False):
    """Checks a float >= 0 (> 0 if `positive`) that float32 holds exactly.

    Such a value is finite and survives the cast to a float32 variable or
    op: 1e39 would overflow, and a positive 1e-40 would become 0 (or a
    denormal that some backends flush to 0), so a positive value must be a
    normal float32 number. Returns it as a Python float.
    """
    lowest = FLOAT32_TINY if positive else 0.0
    if (
        not is_python_number(value)
        or not math.isfinite(value)
        or not lowest <= value <= FLOAT32_MAX
        or (not positive and 0 < value < FLOAT32_TINY)
    ):
        if positive:
            expected = (
                f"a float value between {FLOAT32_TINY:.6g} and "
                f"{FLOAT32_MAX:.6g} (a positive normal float32 number)"
            )
        else:
            expected = (
                f"0 or a float value between {FLOAT32_TINY:.6g} and "
                f"{FLOAT32_MAX:.6g} (a normal float32 number)"
            )
        raise invalid_value(name, expected, value)
    return float(value)


def check_positive_float32(name, value):
    """Checks a float > 0 that holds as a normal float32 number."""
    return check_float32(name, value, positive=True)


def check_temperature(name, value, minimum=MIN_TEMPERATURE):
    """Checks a temperature: a Python number, or a tensor made NaN if bad.

    A number must lie between `minimum` (by default `MIN_TEMPERATURE`, the
    floor of a relaxed sample) and the largest float32. A tensor or
    variable cannot be inspected inside a compiled function without a host
    round trip; it is returned as float32, NaN where it is below `minimum`
    or NaN, so that a temperature computed in the graph (a Keras schedule,
    a learned one) that leaves the range gives NaN, never a sample of the
    flipped ordering that a negative temperature would give. Layers
    validate their configured value at construction.
    """
    if is_python_number(value):
        return check_float32_at_least(name, value, minimum)
    return nan_below(value, minimum)


def nan_below(value, minimum):
    """A tensor argument as float32, NaN where it is below `minimum` (or
    NaN): the check of a tensor in the graph, without a host round trip,
    which turns an out-of-range value into NaN rather than a plausible
    result."""
    value = ops.cast(value, "float32")
    return ops.where(ops.greater_equal(value, minimum), value, np.nan)


def check_float32_at_least(name, value, minimum):
    """Checks a float between `minimum` > 0 and the largest float32.

    A `minimum` of `FLOAT32_TINY` is `check_positive_float32`. Returns the
    value as a Python float.
    """
    if minimum <= FLOAT32_TINY:
        return check_positive_float32(name, value)
    if (
        not is_python_number(value)
        or not math.isfinite(value)
        or not minimum <= value <= FLOAT32_MAX
    ):
        raise invalid_value(
            name,
            f"a float value between {minimum:g} and {FLOAT32_MAX:.6g}",
            value,
        )
    return float(value)
