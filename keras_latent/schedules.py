"""Temperature and KL-weight schedules, evaluated from a step counter.

A schedule maps a training step to a value inside the compiled train step,
the way Keras evaluates a `keras.optimizers.schedules.LearningRateSchedule`
from `optimizer.iterations`: no callback, no host round trip. The layers of
keras-latent take a float or a schedule as `temperature` and `kl_weight`,
and evaluate it at their own step counter, `layer.iterations`.

The schedules here subclass `LearningRateSchedule`, so the layers also take
Keras's own learning-rate schedules, and these can serve as learning rates.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_latent import validation


def is_schedule(value):
    """Whether `value` is a schedule: a Keras `LearningRateSchedule`."""
    return isinstance(value, keras.optimizers.schedules.LearningRateSchedule)


def check_value_or_schedule(name, value, minimum=None):
    """Checks a layer's `temperature` or `kl_weight`: a float or a schedule.

    A float must be held by float32, and be >= 0, or >= `minimum` where it
    is given (`keras_latent.validation.MIN_TEMPERATURE` for a temperature).
    A keras-latent schedule must take only such values; a Keras
    `LearningRateSchedule` cannot be inspected and is taken as it is.
    Returns the float or the schedule.
    """
    if not is_schedule(value):
        if not validation.is_python_number(value):
            raise validation.invalid_value(
                name, "a float or a schedule (keras_latent.schedules)", value
            )
        if minimum is None:
            return validation.check_float32(name, value)
        return validation.check_float32_at_least(name, value, minimum)
    lowest = getattr(value, "lower_bound", None)
    if minimum is not None and lowest is not None and lowest < minimum:
        raise validation.invalid_value(
            name, f"a schedule whose values are all >= {minimum:g}", value
        )
    return value


def value_at(value, step):
    """The value of a float or a schedule at `step`, a float32 scalar tensor.

    Args:
        value: a float or a schedule (a `LearningRateSchedule`).
        step: the step, a scalar integer (tensor, variable or Python int).

    Returns:
        A float32 scalar tensor.
    """
    if is_schedule(value):
        return ops.cast(value(step), "float32")
    return ops.convert_to_tensor(value, dtype="float32")


def serialize(value):
    """A float as it is; a schedule as its Keras serialization."""
    if is_schedule(value):
        return keras.saving.serialize_keras_object(value)
    return value


def deserialize(value):
    """The inverse of `serialize`: a float, or a schedule from its config."""
    if isinstance(value, dict):
        return keras.saving.deserialize_keras_object(value)
    return value


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """Base class of the keras-latent schedules.

    A schedule is called with a step (a scalar integer tensor) and returns a
    float32 scalar tensor computed with `keras.ops`, so that it runs inside
    compiled train steps. Subclasses define `__call__`, `get_config` and
    `lower_bound`, a float that no value of the schedule is below, which
    layers check (a temperature must stay > 0).
    """

    lower_bound = None

    def __repr__(self):
        arguments = ", ".join(
            f"{key}={value!r}" for key, value in self.get_config().items()
        )
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other):
        return type(self) is type(other) and (
            self.get_config() == other.get_config()
        )

    def __hash__(self):
        return hash((type(self).__name__, repr(self)))


def float32_step(step):
    return ops.cast(step, "float32")


def _reached(step, boundary):
    """Whether `step >= boundary`, a boolean scalar tensor.

    Compared exactly: on the host for a Python or NumPy integer (which
    a backend's default int32 could not hold beyond 2**31), in the step's
    own dtype for a tensor. Float32 holds every integer only up to 2**24
    (16.8 million steps), beyond which it puts a boundary several steps
    early or late. A boundary beyond the range of an integer tensor's
    dtype is never reached.
    """
    if isinstance(step, (int, np.integer)):
        return ops.convert_to_tensor(bool(step >= boundary))
    step = ops.convert_to_tensor(step)
    dtype = keras.backend.standardize_dtype(step.dtype)
    if "int" in dtype and boundary > np.iinfo(dtype).max:
        return ops.convert_to_tensor(False)
    return ops.greater_equal(step, ops.cast(boundary, dtype))


def _last_update(step, update_every):
    """`update_every * floor(step / update_every)`, exact as in `_reached`:
    on the host for a Python or NumPy integer, else in the step's dtype."""
    if isinstance(step, (int, np.integer)):
        return int(step) // update_every * update_every
    step = ops.convert_to_tensor(step)
    return ops.floor_divide(step, update_every) * update_every


@keras.saving.register_keras_serializable(package="keras_latent")
class ExponentialDecay(Schedule):
    """Exponential decay to a floor (Jang et al. 2017).

    The value at step `s` is `max(minimum, initial * exp(-rate * s'))`,
    where `s' = update_every * floor(s / update_every)` is the last update
    step: with `update_every=N` the value changes every N steps, as in Jang
    et al., who anneal the temperature from 1.0 to 0.5 with rates of 1e-5 to
    1e-4, updated every 1000 steps. `ExponentialDecay.reaching_minimum_at`
    derives the rate that reaches the floor at a given step.

    Args:
        initial: the value at step 0, a float > 0.
        minimum: the floor, a float > 0 and <= `initial`.
        rate: the decay rate per step, a float >= 0.
        update_every: the number of steps between updates, an integer >= 1.

    Example:

    >>> schedule = keras_latent.schedules.ExponentialDecay(
    ...     initial=1.0, minimum=0.5, rate=1e-3)
    >>> float(schedule(0)), float(schedule(10_000))
    (1.0, 0.5)

    References:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
    """

    def __init__(
        self,
        initial: float = 1.0,
        minimum: float = 0.5,
        rate: float = 3e-5,
        update_every: int = 1,
    ):
        self.initial = validation.check_float32(
            "initial", initial, positive=True
        )
        self.minimum = validation.check_float32(
            "minimum", minimum, positive=True
        )
        if self.minimum > self.initial:
            raise validation.invalid_value(
                "minimum", f"a float value <= initial={self.initial!r}", minimum
            )
        self.rate = validation.check_float32("rate", rate)
        self.update_every = validation.check_integer(
            "update_every", update_every, minimum=1
        )
        self.lower_bound = self.minimum

    @classmethod
    def reaching_minimum_at(
        cls, steps: int, initial: float, minimum: float, update_every: int = 1
    ):
        """The decay from `initial` that reaches `minimum` at step `steps`.

        After `steps` training steps the value in force is `minimum`: pass
        the number of steps of a run (epochs times steps per epoch) to
        anneal within that run whatever the dataset size.

        Args:
            steps: the step at which the floor is reached, an integer
                >= `update_every`.
            initial: the value at step 0, a float > 0.
            minimum: the floor, a float > 0 and <= `initial`.
            update_every: the number of steps between updates.

        Returns:
            An `ExponentialDecay`.
        """
        initial = validation.check_float32("initial", initial, positive=True)
        minimum = validation.check_float32("minimum", minimum, positive=True)
        update_every = validation.check_integer(
            "update_every", update_every, minimum=1
        )
        steps = validation.check_integer("steps", steps, minimum=update_every)
        last_update = update_every * (steps // update_every)
        # float32 evaluation can land a rounding error above the floor at
        # `last_update`; a rate larger by 1e-5 (relative) lands below it.
        rate = math.log(initial / minimum) / last_update * (1.0 + 1e-5)
        return cls(initial, minimum, rate, update_every)

    def __call__(self, step):
        if self.update_every > 1:
            step = _last_update(step, self.update_every)
        step = float32_step(step)
        decayed = self.initial * ops.exp(-self.rate * step)
        return ops.maximum(ops.cast(self.minimum, "float32"), decayed)

    def get_config(self):
        return {
            "initial": self.initial,
            "minimum": self.minimum,
            "rate": self.rate,
            "update_every": self.update_every,
        }


@keras.saving.register_keras_serializable(package="keras_latent")
class LinearWarmup(Schedule):
    """A linear ramp from `start` to `end` over `warmup_steps`, then `end`.

    The value at step `s` is `(1 - f) * start + f * end` with
    `f = min(1, s / warmup_steps)`: the KL warm-up of Bowman et al. 2016
    and Sønderby et al. 2016 with `start=0`; any other ramp of a
    temperature or weight otherwise.

    Args:
        warmup_steps: the number of steps of the ramp, an integer >= 1.
        start: the value at step 0, a float >= 0.
        end: the value from step `warmup_steps` on, a float >= 0.

    Example:

    >>> schedule = keras_latent.schedules.LinearWarmup(warmup_steps=1000)
    >>> float(schedule(250)), float(schedule(5000))
    (0.25, 1.0)

    References:
        - [Bowman et al., 2016](https://arxiv.org/abs/1511.06349)
        - [Sønderby et al., 2016](https://arxiv.org/abs/1602.02282)
    """

    def __init__(self, warmup_steps: int, start: float = 0.0, end: float = 1.0):
        self.warmup_steps = validation.check_integer(
            "warmup_steps", warmup_steps, minimum=1
        )
        self.start = validation.check_float32("start", start)
        self.end = validation.check_float32("end", end)
        self.lower_bound = min(self.start, self.end)

    def __call__(self, step):
        fraction = ops.minimum(float32_step(step) / self.warmup_steps, 1.0)
        # This form gives `end` exactly once the ramp is over.
        return (1.0 - fraction) * self.start + fraction * self.end

    def get_config(self):
        return {
            "warmup_steps": self.warmup_steps,
            "start": self.start,
            "end": self.end,
        }


@keras.saving.register_keras_serializable(package="keras_latent")
class PiecewiseConstant(Schedule):
    """A constant value between boundaries.

    The value is `values[0]` before step `boundaries[0]`, `values[i]` from
    step `boundaries[i - 1]` until before step `boundaries[i]`, and
    `values[-1]` from step `boundaries[-1]` on.

    Args:
        boundaries: the steps where the value changes, strictly increasing
            integers >= 1.
        values: floats >= 0, one more than `boundaries`.

    Example:

    >>> schedule = keras_latent.schedules.PiecewiseConstant(
    ...     boundaries=[100, 200], values=[1.0, 0.75, 0.5])
    >>> [float(schedule(step)) for step in (99, 100, 250)]
    [1.0, 0.75, 0.5]
    """

    def __init__(self, boundaries, values):
        boundaries = list(boundaries)
        values = list(values)
        for boundary in boundaries:
            validation.check_integer("boundaries", boundary, minimum=1)
        consecutive = zip(boundaries[:-1], boundaries[1:], strict=True)
        if any(later <= earlier for earlier, later in consecutive):
            raise validation.invalid_value(
                "boundaries", "strictly increasing integers >= 1", boundaries
            )
        if len(values) != len(boundaries) + 1:
            raise validation.invalid_value(
                "values",
                f"{len(boundaries) + 1} values (one more than boundaries)",
                values,
            )
        self.boundaries = [int(boundary) for boundary in boundaries]
        self.values = [
            validation.check_float32("values", value) for value in values
        ]
        self.lower_bound = min(self.values)

    def __call__(self, step):
        index = ops.zeros((), dtype="int32")
        for boundary in self.boundaries:
            index = index + ops.cast(_reached(step, boundary), "int32")
        return ops.take(ops.convert_to_tensor(self.values, "float32"), index)

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


@keras.saving.register_keras_serializable(package="keras_latent")
class CosineDecay(Schedule):
    """Cosine decay from `initial` to a floor over `decay_steps`.

    The value at step `s` is
    `minimum + (initial - minimum) * (1 + cos(pi * min(s, T) / T)) / 2`
    with `T = decay_steps` (Loshchilov & Hutter 2017, without restarts):
    `initial` at step 0, `minimum` from step `T` on.

    Args:
        decay_steps: the number of steps of the decay, an integer >= 1.
        initial: the value at step 0, a float >= 0.
        minimum: the floor, a float >= 0 and <= `initial`.

    Example:

    >>> schedule = keras_latent.schedules.CosineDecay(
    ...     decay_steps=100, initial=1.0, minimum=0.5)
    >>> float(schedule(50)), float(schedule(100))
    (0.75, 0.5)

    References:
        - [Loshchilov & Hutter, 2017](https://arxiv.org/abs/1608.03983)
    """

    def __init__(
        self, decay_steps: int, initial: float = 1.0, minimum: float = 0.0
    ):
        self.decay_steps = validation.check_integer(
            "decay_steps", decay_steps, minimum=1
        )
        self.initial = validation.check_float32("initial", initial)
        self.minimum = validation.check_float32("minimum", minimum)
        if self.minimum > self.initial:
            raise validation.invalid_value(
                "minimum", f"a float value <= initial={self.initial!r}", minimum
            )
        self.lower_bound = self.minimum

    def __call__(self, step):
        progress = ops.minimum(float32_step(step) / self.decay_steps, 1.0)
        weight = 0.5 * (1.0 + ops.cos(math.pi * progress))
        # This form gives `initial` and `minimum` exactly at the ends.
        return weight * self.initial + (1.0 - weight) * self.minimum

    def get_config(self):
        return {
            "decay_steps": self.decay_steps,
            "initial": self.initial,
            "minimum": self.minimum,
        }
