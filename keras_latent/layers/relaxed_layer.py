"""Shared state of the layers that draw relaxed (Concrete) samples."""

import keras

from keras_latent import schedules
from keras_latent import validation
from keras_latent.ops import estimators

FIXED_AT_CONSTRUCTION = (
    "`{name}` is set at construction: a train step that is already compiled "
    "would not see a new value. To change it during training, pass a "
    "schedule from `keras_latent.schedules`, or use the callbacks of "
    "`keras_latent.callbacks`."
)


class RelaxedLayer(keras.layers.Layer):
    """Base class: a scheduled temperature, a step counter, a seed generator.

    `layer.temperature` is the configured temperature: a float, or a
    schedule of the step (see `keras_latent.schedules`). The layer
    evaluates it inside the train step at its step counter
    `layer.iterations`, a non-trainable integer variable saved with the
    model: the number of training calls the layer has made. Each training
    call uses the value at the counter, then advances the counter by one;
    inference (`training=False`: `predict`, `evaluate`) neither advances it
    nor uses the temperature. A layer called once per train step thus
    follows its schedule in optimizer steps, also with
    `steps_per_execution > 1`, under `jit` and `tf.function`, and resumes
    it after a `.keras` reload. A layer called k times in one train step
    (shared between several inputs) advances k steps per train step, each
    call using its own step: express its schedule in calls.

    `layer.current_temperature()` returns the value in force, the one that
    the next training call uses.

    `estimator` names the gradient estimator of training samples (see
    `keras_latent.ops.categorical_estimator`): `"gumbel_softmax"` returns
    relaxed samples; `"straight_through_gumbel"`, `"straight_through"`,
    `"gumbel_rao"` and `"reinmax"` exact one-hot (or {0, 1}) samples. `hard`
    is the older switch between the first two: `hard=True` alone means
    `"straight_through_gumbel"`, nothing or `hard=False` alone means
    `"gumbel_softmax"`; given with `estimator`, it must agree with it
    (`hard=True` for the one-hot estimators). `layer.hard` reads whether the
    training samples are one-hot.

    Args:
        temperature: a float >= 1e-30 or a schedule whose values are >= 1e-30.
        hard: None, or whether training samples are one-hot; see above.
        estimator: None (decided by `hard`) or one of
            `keras_latent.ops.estimators.ESTIMATORS`.
        num_samples: the number of conditional Gumbel draws K of
            `"gumbel_rao"`, an integer >= 1 (default 10); None for the
            other estimators.
        eval_mode: what the layer returns at inference; one of
            `eval_modes`. It can be set again until the layer is built;
            after that, use `keras_latent.models.set_eval_mode`, which
            also discards the model's compiled `predict` and `evaluate`
            functions (they would keep the mode they were traced with).
        seed: an integer or None, the seed of the layer's `SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    eval_modes = ("mode", "sample", "probs")
    # The arguments that take a float or a schedule, and the least value
    # each takes (None: any float32 number >= 0).
    scheduled_arguments = {"temperature": validation.MIN_TEMPERATURE}

    def __init__(
        self,
        temperature=1.0,
        hard: bool | None = None,
        estimator: str | None = None,
        num_samples: int | None = None,
        eval_mode: str = "mode",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._temperature = schedules.check_value_or_schedule(
            "temperature", temperature, self.scheduled_arguments["temperature"]
        )
        self.estimator = resolve_estimator(estimator, hard)
        self.hard = self.estimator not in estimators.RELAXED_ESTIMATORS
        self.num_samples = resolve_num_samples(num_samples, self.estimator)
        self.eval_mode = eval_mode
        self.seed = validation.check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        # A mask passes through unchanged, as in `keras.layers.GaussianNoise`.
        self.supports_masking = True

    @property
    def eval_mode(self):
        """What the layer returns at inference: `"mode"`, `"sample"`, ...

        Read-only once the layer is built: TensorFlow and JAX would keep
        serving the mode that their cached `predict` and `evaluate`
        functions were traced with.
        """
        return self._eval_mode

    @eval_mode.setter
    def eval_mode(self, value):
        value = validation.check_choice("eval_mode", value, self.eval_modes)
        if self.built and value != self._eval_mode:
            raise ValueError(
                f"Layer '{self.name}' is built, so its `eval_mode` cannot be "
                "set directly: compiled `predict` and `evaluate` functions "
                "would keep the old mode on TensorFlow and JAX. Call "
                "`keras_latent.models.set_eval_mode(model, "
                f"{value!r})`, which also discards them. Received: "
                f"eval_mode={value!r}"
            )
        self._eval_mode = value

    @property
    def temperature(self):
        """The configured temperature: a float or a schedule."""
        return self._temperature

    @temperature.setter
    def temperature(self, value):
        raise AttributeError(FIXED_AT_CONSTRUCTION.format(name="temperature"))

    def build(self, input_shape):
        # Each replica counts its own calls, all alike, as the replicas of
        # a `keras.random.SeedGenerator` advance its state. Another
        # aggregation would make `tf.distribute` synchronize the replicas
        # (a `merge_call`) inside the call, between `add_loss` and Keras's
        # `compute_loss`: the replicas share the layer's list of losses,
        # and every replica would then train on, and log, the KL of the
        # last one.
        self.iterations = self.add_weight(
            shape=(),
            initializer="zeros",
            trainable=False,
            name="iterations",
            dtype="int",
            aggregation="none",
        )

    def current_step(self):
        """The step at which the next training call evaluates schedules."""
        return self.iterations if self.built else 0

    def current_temperature(self):
        """The temperature in force, a float32 scalar tensor.

        It is the temperature of the next training call: the schedule at
        `layer.iterations`, or the configured float.
        """
        return schedules.value_at(self._temperature, self.current_step())

    def _count_training_call(self):
        """Advances the step counter; called once at the end of a training
        call, after every scheduled value of the call was read."""
        self.iterations.assign_add(1)

    def _set_schedule(self, name, value):
        """Replaces the configured `temperature` or `kl_weight`.

        For `keras_latent.callbacks`, which rebuild the model's train
        function afterwards.
        """
        value = schedules.check_value_or_schedule(
            name, value, self.scheduled_arguments[name]
        )
        setattr(self, f"_{name}", value)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.scheduled_arguments:
            if name in config:
                config[name] = schedules.deserialize(config[name])
        return cls(**config)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": schedules.serialize(self._temperature),
            "hard": self.hard,
            "estimator": self.estimator,
            "num_samples": self.num_samples,
            "eval_mode": self.eval_mode,
            "seed": self.seed,
        }


def resolve_estimator(estimator, hard):
    """The estimator named by `estimator` and the older `hard` switch."""
    if hard is not None:
        hard = validation.check_bool("hard", hard)
    if estimator is None:
        return "straight_through_gumbel" if hard else "gumbel_softmax"
    estimator = validation.check_choice(
        "estimator", estimator, estimators.ESTIMATORS
    )
    one_hot = estimator not in estimators.RELAXED_ESTIMATORS
    if hard is not None and hard != one_hot:
        raise ValueError(
            "Invalid value received for argument `hard`. Expected "
            f"hard={one_hot} or None with estimator={estimator!r}, whose "
            "training samples are "
            + ("one-hot" if one_hot else "relaxed")
            + f". Received: hard={hard}"
        )
    return estimator


def resolve_num_samples(num_samples, estimator):
    """K for `"gumbel_rao"` (default 10); None for the other estimators."""
    if estimator != "gumbel_rao":
        if num_samples is not None:
            raise ValueError(
                "Invalid value received for argument `num_samples`. "
                "Expected None: only estimator='gumbel_rao' draws several "
                f"samples, not estimator={estimator!r}. Received: "
                f"num_samples={num_samples!r}"
            )
        return None
    if num_samples is None:
        return estimators.DEFAULT_NUM_SAMPLES
    return validation.check_integer("num_samples", num_samples, minimum=1)
