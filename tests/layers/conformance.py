"""One conformance check for every keras-latent layer.

`check_layer_conformance` runs Keras's own `run_layer_test` (the checks that
Keras applies to its built-in layers), then the checks below, each named in
`CHECKS` so that a test can run them one at a time:

- `keras`: Keras's `run_layer_test` with the counts and shapes stated by
  the caller: config and serialization round trip (same config, same
  attributes), `supports_masking` as stated, weight and seed-generator
  counts after `build()` and after a symbolic call (and, on torch, as many
  torch parameters), symbolic and eager output shapes equal to
  `expected_output_shape`, and the number of losses of an eager call. Its
  own training and mixed-precision steps are replaced by the checks below.
- `config`: `get_config()` is plain JSON and holds every constructor
  argument as given (objects in their serialized form); `from_config` and
  `keras.layers.deserialize(keras.layers.serialize(...))` give the same
  class and config, registered as `keras_latent>ClassName`; the config
  does not change when the layer's variables do (it holds the initial
  values; the state lives in the variables); a clone from the config with
  the layer's weights gives identical outputs and losses in training and
  inference.
- `shapes`: the symbolic output of `keras.Input` tensors and
  `compute_output_shape` both have `expected_output_shape` with an unknown
  batch size; eager outputs in training and inference have it exactly.
- `losses`: a call in training and a call in inference each leave
  `expected_num_losses` losses, each a finite float32 scalar.
- `mixed_float16`, `mixed_bfloat16`: under the policy, float weights are
  float32; outputs in training and inference are finite, in the compute
  dtype, and within 8 units of half-precision roundoff (or the case's
  `mixed_precision_roundoffs`) of the float32 layer's outputs on the same
  inputs rounded to the compute dtype; every loss is a finite float32
  scalar. With `float32_losses=True` (the latent layers) the losses also
  equal those of the float32 layer on the rounded inputs (rtol 1e-5): the
  KL is computed in float32, not in half precision.
- `masking`: in a functional model whose input carries a Keras mask of
  shape `mask_shape`, a layer with `supports_masking=True` makes Keras warn
  nothing, and its output carries the same mask, symbolically and in an
  eager call (`compute_mask`); the outputs and losses stay finite. A layer
  with `supports_masking=False` must say so, and Keras warns that it drops
  the mask.
- `saving`: a model of the layer, its variables moved away from their
  initial values, is saved to a `.keras` file and loaded with
  `keras.saving.load_model(..., safe_mode=True)`; the loaded layer has the
  same class, config and variable values, and gives identical outputs and
  losses in training (same seed) and inference.
- `training`: `Dense -> layer -> Dense` fits one step with `model.fit`
  (compiled where the backend compiles by default); the loss is finite, the
  weights stay finite, and the Dense layer before the layer under test
  changes, so the gradient reaches through the layer.
  `check_layers_train_together` runs it for several layers in one model,
  with one compilation instead of one per layer.

Every case must fix the `seed` of a layer that draws noise: the checks
compare two layers, or a layer and its reloaded copy, at the same seed.
"""

import json
import warnings

import keras
import numpy as np
from keras import ops

# Keras publishes no test helper; `run_layer_test` is the one its own layers
# are tested with. Tests may import it, the package must not.
from keras.src.testing import test_case as keras_test_case

CHECKS = (
    "keras",
    "config",
    "shapes",
    "losses",
    "mixed_float16",
    "mixed_bfloat16",
    "masking",
    "saving",
    "training",
)

# float16 and bfloat16 have 11 and 8 bits of precision.
UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8}
# Tolerances of the mixed-precision comparison, in units of roundoff.
MIXED_PRECISION_ROUNDOFFS = 8

MASK_WARNING = "does not support masking"


class AttachMask(keras.layers.Layer):
    """Passes `inputs[0]` on with the boolean mask `inputs[1]` attached, as
    `Masking` or `Embedding(mask_zero=True)` attach theirs."""

    def call(self, inputs):
        return ops.multiply(inputs[0], ops.cast(1, inputs[0].dtype))

    def compute_mask(self, inputs, previous_mask=None):
        return ops.cast(inputs[1], "bool")

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def check_layer_conformance(*, checks=CHECKS, tmp_path=None, **arguments):
    """Checks that a layer behaves as Keras expects of any layer.

    Args:
        checks: the names in `CHECKS` to run.
        tmp_path: a directory for the `.keras` file of the `saving` check.
        **arguments: the arguments of `LayerCase`: the layer and what it is
            expected to hold.
    """
    case = LayerCase(**arguments)
    for check in checks:
        if check not in CHECKS:
            raise ValueError(
                f"Unknown check {check!r}; expected one of {CHECKS}"
            )
        if check == "saving":
            if tmp_path is None:
                raise ValueError("The `saving` check needs a `tmp_path`.")
            check_saving(case, tmp_path)
        elif check.startswith("mixed_"):
            check_mixed_precision(case, check)
        else:
            CHECK_FUNCTIONS[check](case)


def check_layers_train_together(*arguments):
    """The `training` check of several layers in one model and one fit.

    Args:
        *arguments: for each layer, a dict of the arguments of `LayerCase`;
            all input shapes must have the same batch size.
    """
    check_training(
        *(LayerCase(**case_arguments) for case_arguments in arguments)
    )


class LayerCase:
    """A layer to check, what it is expected to hold, and its inputs.

    Args:
        layer_cls: the layer class.
        init_kwargs: its constructor arguments; fix `seed` if it draws noise.
        input_shape: the input shape with its batch size, or a dict from
            call-argument names to shapes, the first being the main input
            (as `{"key": ..., "memory": ...}`).
        expected_output_shape: the output shape for `input_shape`, or a
            tuple of shapes for a layer with several outputs.
        expected_num_trainable_weights: trainable weights once built.
        expected_num_non_trainable_weights: non-trainable weights once built.
        expected_num_seed_generators: `SeedGenerator`s of the layer.
        expected_num_losses: losses added by one call, in training and in
            inference.
        supports_masking: whether the layer supports Keras masks.
        mask_shape: the shape of the mask of the main input; defaults to the
            main input's shape without its last axis.
        float32_losses: whether the losses under a mixed policy must equal
            the float32 losses of the rounded inputs.
        mixed_precision_roundoffs: the units of half-precision roundoff
            within which mixed-precision outputs must match; more for a
            layer that chains several products in the compute dtype.
    """

    def __init__(
        self,
        layer_cls,
        init_kwargs,
        input_shape,
        expected_output_shape,
        expected_num_trainable_weights,
        expected_num_non_trainable_weights,
        expected_num_seed_generators,
        expected_num_losses,
        supports_masking,
        mask_shape=None,
        float32_losses=False,
        mixed_precision_roundoffs=MIXED_PRECISION_ROUNDOFFS,
    ):
        self.layer_cls = layer_cls
        self.init_kwargs = init_kwargs
        self.input_shape = input_shape
        self.expected_output_shape = expected_output_shape
        self.expected_num_trainable_weights = expected_num_trainable_weights
        self.expected_num_non_trainable_weights = (
            expected_num_non_trainable_weights
        )
        self.expected_num_seed_generators = expected_num_seed_generators
        self.expected_num_losses = expected_num_losses
        self.supports_masking = supports_masking
        self.mask_shape = mask_shape
        self.float32_losses = float32_losses
        self.mixed_precision_roundoffs = mixed_precision_roundoffs
        shapes = self.input_shape
        self.input_names = list(shapes) if isinstance(shapes, dict) else None
        rng = np.random.default_rng(20261126)
        if self.input_names is None:
            self.inputs = (2.0 * rng.normal(size=shapes)).astype("float32")
            main_shape = tuple(shapes)
        else:
            self.inputs = {
                name: (2.0 * rng.normal(size=shape)).astype("float32")
                for name, shape in shapes.items()
            }
            main_shape = tuple(shapes[self.input_names[0]])
        self.main_shape = main_shape
        if self.mask_shape is None:
            self.mask_shape = main_shape[:-1]

    def make_layer(self, **extra_kwargs):
        return self.layer_cls(**{**self.init_kwargs, **extra_kwargs})

    def call(self, layer, inputs=None, **kwargs):
        """Calls `layer` on `inputs` (the case's inputs by default)."""
        inputs = self.inputs if inputs is None else inputs
        if self.input_names is None:
            return layer(inputs, **kwargs)
        return layer(**inputs, **kwargs)

    def symbolic_inputs(self):
        """`keras.Input` tensors of the input shapes without batch size."""
        if self.input_names is None:
            return keras.Input(self.main_shape[1:])
        return {
            name: keras.Input(tuple(shape[1:]))
            for name, shape in self.input_shape.items()
        }

    def graph(self, before=None):
        """The layer on `keras.Input` tensors (its main input through
        `before`, if given): returns the inputs and their data as lists in
        the same order, the layer, and its symbolic outputs."""
        inputs = self.symbolic_inputs()
        layer = self.make_layer()
        if self.input_names is None:
            main = inputs if before is None else before(inputs)
            return [inputs], [self.inputs], layer, layer(main)
        arguments = dict(inputs)
        first = self.input_names[0]
        if before is not None:
            arguments[first] = before(arguments[first])
        outputs = layer(**arguments)
        model_inputs = [inputs[name] for name in self.input_names]
        data = [self.inputs[name] for name in self.input_names]
        return model_inputs, data, layer, outputs

    def unknown_batch(self, shape):
        return (None, *shape[1:])

    def expected_shapes(self, batch_known=True):
        shapes = self.expected_output_shape
        single = is_shape(shapes)
        shapes = [shapes] if single else list(shapes)
        if not batch_known:
            shapes = [self.unknown_batch(shape) for shape in shapes]
        return [tuple(shape) for shape in shapes]


def is_shape(value):
    return all(isinstance(dim, (int, type(None))) for dim in value)


def flat_numpy(outputs):
    return [
        ops.convert_to_numpy(ops.cast(output, "float32"))
        for output in keras.tree.flatten(outputs)
    ]


def loss_values(losses):
    return [float(ops.convert_to_numpy(loss)) for loss in losses]


def assert_same_outputs(actual, expected, message):
    actual, expected = flat_numpy(actual), flat_numpy(expected)
    assert len(actual) == len(expected), message
    for actual_output, expected_output in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(actual_output, expected_output, message)


def float_variables(layer):
    return [
        variable
        for variable in layer.weights
        if keras.backend.is_float_dtype(variable.dtype)
    ]


def move_variables(layer, rng):
    """Moves every variable away from its initial value: trainable ones by
    Gaussian noise, non-trainable floats (temperatures, KL weights) to
    `0.5 * value + 0.25`, integers (step counters) by 3."""
    for variable in layer.weights:
        value = ops.convert_to_numpy(variable)
        dtype = keras.backend.standardize_dtype(variable.dtype)
        if not keras.backend.is_float_dtype(dtype):
            variable.assign((value + 3).astype(dtype))
        elif variable.trainable:
            noise = 0.5 * rng.normal(size=value.shape)
            variable.assign((value + noise).astype(dtype))
        else:
            variable.assign((0.5 * value + 0.25).astype(dtype))


def run_keras_layer_test(case):
    if case.input_names is None:
        inputs = {"input_data": case.inputs}
    else:
        # Keras's test builds with `build(key_shape=..., ...)`: shapes only.
        inputs = {
            "input_shape": {
                f"{name}_shape": tuple(shape)
                for name, shape in case.input_shape.items()
            }
        }
    expected_output_shape = case.expected_output_shape
    if not is_shape(expected_output_shape):
        expected_output_shape = tuple(expected_output_shape)
    keras_test_case.TestCase().run_layer_test(
        case.layer_cls,
        case.init_kwargs,
        **inputs,
        expected_output_shape=expected_output_shape,
        expected_num_trainable_weights=case.expected_num_trainable_weights,
        expected_num_non_trainable_weights=(
            case.expected_num_non_trainable_weights
        ),
        expected_num_seed_generators=case.expected_num_seed_generators,
        expected_num_losses=case.expected_num_losses,
        supports_masking=case.supports_masking,
        run_training_check=False,
        run_mixed_precision_check=False,
    )


def expected_config_value(value):
    """A constructor argument as `get_config` must hold it."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [expected_config_value(item) for item in value]
    return keras.saving.serialize_keras_object(value)


def check_config(case):
    layer = case.make_layer()
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    for name, value in case.init_kwargs.items():
        assert name in config, f"The config lacks `{name}`."
        assert config[name] == expected_config_value(value), name
    clone = case.layer_cls.from_config(config)
    assert clone.get_config() == config
    serialized = keras.layers.serialize(layer)
    assert serialized["registered_name"] == (
        f"keras_latent>{case.layer_cls.__name__}"
    )
    restored = keras.layers.deserialize(serialized)
    assert type(restored) is case.layer_cls
    assert restored.get_config() == config

    # Build both layers symbolically (no eager call: the seed generators
    # stay at their initial state), then copy the moved weights.
    case.call(layer, case.symbolic_inputs())
    case.call(clone, case.symbolic_inputs())
    move_variables(layer, np.random.default_rng(1))
    assert layer.get_config() == config
    clone.set_weights(layer.get_weights())
    for training in [True, False]:
        message = f"training={training}"
        expected = case.call(layer, training=training)
        actual = case.call(clone, training=training)
        assert_same_outputs(actual, expected, message)
        assert loss_values(clone.losses) == loss_values(layer.losses), message


def check_shapes(case):
    layer = case.make_layer()
    symbolic = keras.tree.flatten(case.call(layer, case.symbolic_inputs()))
    expected = case.expected_shapes(batch_known=False)
    assert [tuple(output.shape) for output in symbolic] == expected
    if case.input_names is None:
        computed = layer.compute_output_shape(
            case.unknown_batch(case.main_shape)
        )
    else:
        computed = layer.compute_output_shape(
            **{
                f"{name}_shape": case.unknown_batch(shape)
                for name, shape in case.input_shape.items()
            }
        )
    if is_shape(computed):
        computed = [computed]
    assert [tuple(shape) for shape in computed] == expected
    for training in [True, False]:
        outputs = keras.tree.flatten(case.call(layer, training=training))
        shapes = [tuple(output.shape) for output in outputs]
        assert shapes == case.expected_shapes(), f"training={training}"


def assert_finite_float32_losses(losses, expected_count, message):
    assert len(losses) == expected_count, message
    for loss in losses:
        assert keras.backend.standardize_dtype(loss.dtype) == "float32", message
        assert tuple(loss.shape) == (), message
        assert np.isfinite(float(ops.convert_to_numpy(loss))), message


def check_losses(case):
    layer = case.make_layer()
    for training in [True, False]:
        case.call(layer, training=training)
        assert_finite_float32_losses(
            layer.losses, case.expected_num_losses, f"training={training}"
        )


MIXED_PRECISION_SEED = 5


def rounded_inputs(case, dtype):
    """The case's inputs rounded to `dtype`, as float32 NumPy arrays."""
    return keras.tree.map_structure(
        lambda x: ops.convert_to_numpy(ops.cast(ops.cast(x, dtype), "float32")),
        case.inputs,
    )


def check_mixed_precision(case, policy):
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    tolerance = case.mixed_precision_roundoffs * UNIT_ROUNDOFF[compute_dtype]
    # The weights come from a fixed seed, whatever the worker ran before: a
    # sparse normalizer's output jumps where a half-precision score crosses
    # its threshold, so the roundoff bound holds for given weights, not for
    # any (a sparsemax attention case failed it once under another order
    # of the tests).
    keras.utils.set_random_seed(MIXED_PRECISION_SEED)
    reference = case.make_layer()
    layer = case.make_layer(dtype=policy)
    case.call(reference, case.symbolic_inputs())
    case.call(layer, case.symbolic_inputs())
    for variable in float_variables(layer):
        assert keras.backend.standardize_dtype(variable.dtype) == "float32", (
            variable.path
        )
    layer.set_weights(reference.get_weights())
    rounded = rounded_inputs(case, compute_dtype)
    for training in [True, False]:
        message = f"{policy}, training={training}"
        outputs = keras.tree.flatten(case.call(layer, training=training))
        expected = flat_numpy(case.call(reference, rounded, training=training))
        for output, expected_output in zip(outputs, expected, strict=True):
            dtype = keras.backend.standardize_dtype(output.dtype)
            assert dtype == compute_dtype, message
            values = ops.convert_to_numpy(ops.cast(output, "float32"))
            assert np.all(np.isfinite(values)), message
            np.testing.assert_allclose(
                values,
                expected_output,
                rtol=tolerance,
                atol=tolerance,
                err_msg=message,
            )
        assert_finite_float32_losses(
            layer.losses, case.expected_num_losses, message
        )
        if case.float32_losses:
            np.testing.assert_allclose(
                loss_values(layer.losses),
                loss_values(reference.losses),
                rtol=1e-5,
                atol=1e-6,
                err_msg=message,
            )


def masked_model(case, layer):
    """A functional model whose main input carries a mask of `mask_shape`
    into `layer`; its inputs are the case's inputs, then the mask."""
    inputs = case.symbolic_inputs()
    keep = keras.Input(case.mask_shape[1:], dtype="bool", name="keep")
    if case.input_names is None:
        outputs = layer(AttachMask()([inputs, keep]))
        model_inputs = [inputs, keep]
    else:
        arguments = dict(inputs)
        first = case.input_names[0]
        arguments[first] = AttachMask()([arguments[first], keep])
        outputs = layer(**arguments)
        model_inputs = [inputs[name] for name in case.input_names] + [keep]
    return keras.Model(model_inputs, outputs), outputs


def mask_warnings(record):
    return [
        str(item.message)
        for item in record
        if MASK_WARNING in str(item.message)
    ]


def check_masking(case):
    layer = case.make_layer()
    assert layer.supports_masking is case.supports_masking
    # Every other step (or example) of the main input is masked.
    keep = np.ones(case.mask_shape, bool)
    keep.reshape(-1)[1::2] = False
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model, symbolic_outputs = masked_model(case, layer)
        if case.input_names is None:
            data = [case.inputs, keep]
        else:
            data = [case.inputs[name] for name in case.input_names] + [keep]
        outputs = model(data, training=True)
    if not case.supports_masking:
        assert mask_warnings(record), "Keras did not warn that the mask drops."
        return
    assert not mask_warnings(record), mask_warnings(record)
    for output in keras.tree.flatten(symbolic_outputs):
        mask = getattr(output, "_keras_mask", None)
        assert mask is not None, "The symbolic output carries no mask."
        assert tuple(mask.shape) == case.unknown_batch(case.mask_shape)
    for output in flat_numpy(outputs):
        assert np.all(np.isfinite(output))
    for loss in loss_values(layer.losses):
        assert np.isfinite(loss)
    main_input = (
        case.inputs
        if case.input_names is None
        else case.inputs[case.input_names[0]]
    )
    output_masks = keras.tree.flatten(
        layer.compute_mask(main_input, ops.convert_to_tensor(keep))
    )
    for mask in output_masks:
        np.testing.assert_array_equal(ops.convert_to_numpy(mask), keep)


def check_saving(case, tmp_path):
    inputs, data, layer, outputs = case.graph()
    model = keras.Model(inputs, outputs)
    move_variables(layer, np.random.default_rng(2))
    path = tmp_path / f"{case.layer_cls.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    (loaded_layer,) = [
        candidate
        for candidate in loaded.layers
        if not isinstance(candidate, keras.layers.InputLayer)
    ]
    assert type(loaded_layer) is case.layer_cls
    assert loaded_layer.get_config() == layer.get_config()
    assert [v.path for v in loaded_layer.weights] == [
        v.path for v in layer.weights
    ]
    for variable, loaded_variable in zip(
        layer.weights, loaded_layer.weights, strict=True
    ):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(loaded_variable),
            ops.convert_to_numpy(variable),
            variable.path,
        )
    for training in [True, False]:
        message = f"training={training}"
        expected = model(data, training=training)
        actual = loaded(data, training=training)
        assert_same_outputs(actual, expected, message)
        assert loss_values(loaded.losses) == loss_values(model.losses), message


def check_training(*cases):
    """The `training` check of several cases at once, in one model: each
    layer behind its own Dense layer, all heads summed, one compiled fit
    step (one compilation instead of one per case)."""
    keras.utils.set_random_seed(3)
    batch_sizes = {case.main_shape[0] for case in cases}
    assert len(batch_sizes) == 1, "The cases must share their batch size."
    inputs, data, heads, befores = [], [], [], []
    for case in cases:
        before = keras.layers.Dense(case.main_shape[-1])
        case_inputs, case_data, _, outputs = case.graph(before=before)
        features = [
            keras.layers.Flatten()(output)
            for output in keras.tree.flatten(outputs)
        ]
        if len(features) > 1:
            features = [keras.layers.Concatenate()(features)]
        heads.append(keras.layers.Dense(1)(features[0]))
        inputs += case_inputs
        data += case_data
        befores.append(before)
    prediction = heads[0] if len(heads) == 1 else keras.layers.Add()(heads)
    model = keras.Model(inputs, prediction)
    # XLA on the backends that have it: nothing in the layers may keep
    # the training step from compiling (a TPU needs it).
    xla = keras.backend.backend() in ("tensorflow", "jax")
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=xla
    )
    (batch_size,) = batch_sizes
    targets = np.random.default_rng(4).normal(size=(batch_size, 1))
    kernels_before = [ops.convert_to_numpy(dense.kernel) for dense in befores]
    # Small inputs keep sparsemax and entmax off one-hot outputs, where
    # their Jacobian, and so the gradient, is zero.
    data = [0.25 * x for x in data]
    history = model.fit(
        data,
        targets.astype("float32"),
        batch_size=batch_size,
        epochs=1,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0])
    assert model.jit_compile == xla
    for weight in model.weights:
        if keras.backend.is_float_dtype(weight.dtype):
            values = ops.convert_to_numpy(weight)
            assert np.all(np.isfinite(values)), weight.path
    for case, dense, kernel in zip(cases, befores, kernels_before, strict=True):
        changed = ops.convert_to_numpy(dense.kernel)
        assert not np.array_equal(changed, kernel), (
            f"No gradient reached through {case.layer_cls.__name__} with "
            f"{case.init_kwargs}."
        )


CHECK_FUNCTIONS = {
    "keras": run_keras_layer_test,
    "config": check_config,
    "shapes": check_shapes,
    "losses": check_losses,
    "masking": check_masking,
    "training": check_training,
}
