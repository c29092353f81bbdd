"""Models that log the KL of their latent layers, and the helpers they use.

A latent layer (`CategoricalLatent`, `BernoulliLatent`) adds its weighted
KL to the model's losses in every model: plain `keras.Model` and
`keras.Sequential` train on it without help. Logging the unweighted KL as
`<layer name>_kl` is opt-in, and nothing in Keras is patched:

- `LatentModel` (functional or as a base class), `LatentSequential`, or
  `KLMetricsMixin` before any `keras.Model` subclass: their `compute_loss`
  calls Keras's, then `update_kl_metrics`, so `fit` and `evaluate` log the
  KL of each batch.
- In a `compute_loss` override that does not call `super()`, or a custom
  `train_step` or `test_step`, call `update_kl_metrics(self)` after the
  forward pass (the model must still be one of the above), or read the
  values with `kl_divergences(self)` and update metrics of your own.

Without the opt-in, the logs have no `<layer name>_kl` entry. With it, a
KL metric that no step updated shows NaN, with a warning that says which
call is missing; it never shows a number that was not measured.

The KL reaches these helpers without any variable: each call of a latent
layer records its loss tensor and its unweighted KL in Python, and the
helpers keep the records whose loss tensor is among the model's current
losses (`model.losses`, the list Keras sums into the loss), so the logged
KL is the one of the forward pass that produced the loss, on every
backend. A layer called several times in one forward pass adds one loss
per call, and its logged KL is the sum of its calls' KLs.
"""

import warnings

import keras
from keras import ops

from keras_latent import validation
from keras_latent.layers.latent_layer import LatentLayer
from keras_latent.layers.relaxed_layer import RelaxedLayer


def _sublayers(model, layer_class):
    # `_flatten_layers` is the recursive walk Keras's own `Layer.losses`
    # and `Trainer.metrics` use; there is no public equivalent that also
    # enters custom layers holding sublayers.
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, layer_class)
    ]


def _kl_by_layer(model, losses):
    """(layer, KL) for each latent layer with a KL among `losses`."""
    if losses is None:
        losses = model.losses
    pairs = []
    for layer in _sublayers(model, LatentLayer):
        kl = layer.kl_records.kl_among(losses)
        if kl is not None:
            pairs.append((layer, kl))
    return pairs


def kl_divergences(model, losses=None):
    """The unweighted KL of each latent layer in the current forward pass.

    Call it after the forward pass, in the same `compute_loss`,
    `train_step` or `test_step`: the values are tensors of that pass (of
    the same trace under `tf.function` or `jax.jit`). A layer that was not
    called in the pass has no entry; a layer called several times has the
    sum of its calls' KLs.

    Args:
        model: the model whose forward pass just ran.
        losses: the losses of that pass, by default `model.losses`. In a
            stateless JAX `train_step`, pass the losses returned by
            `model.stateless_call(..., return_losses=True)`.

    Returns:
        A dict from layer name to a float32 scalar tensor: the KL in nats,
        averaged over the unmasked examples of the batch, without the
        layer's `kl_weight`.

    Example:

    >>> inputs = keras.Input((8,))
    >>> latent = keras_latent.layers.CategoricalLatent(2, 4, name="latent")
    >>> model = keras.Model(inputs, latent(keras.layers.Dense(8)(inputs)))
    >>> _ = model(keras.ops.ones((3, 8)), training=True)
    >>> sorted(keras_latent.models.kl_divergences(model))
    ['latent']
    """
    return {layer.name: kl for layer, kl in _kl_by_layer(model, losses)}


def update_kl_metrics(model, losses=None):
    """Updates the `<layer name>_kl` metrics of a `KLMetricsMixin` model.

    `LatentModel`, `LatentSequential` and `KLMetricsMixin` call it from
    `compute_loss`. Call it yourself from a `compute_loss` override that
    does not call `super().compute_loss`, or from a custom `train_step` or
    `test_step`, after the forward pass.

    Args:
        model: a compiled model with `KLMetricsMixin` among its bases.
        losses: as in `kl_divergences`.
    """
    if not isinstance(model, KLMetricsMixin) or not model.compiled:
        raise ValueError(
            "Invalid value received for argument `model`. Expected a "
            "compiled `keras_latent.models.LatentModel`, `LatentSequential` "
            "or model with `KLMetricsMixin` among its bases (a plain "
            "`keras.Model` has no KL metrics; use `kl_divergences` to read "
            f"the values). Received: model={model.name!r}"
        )
    kls = dict(_kl_by_layer(model, losses))
    for layer, metric in _kl_metric_pairs(model):
        if layer in kls:
            metric.update_state(kls[layer])


def set_eval_mode(model, eval_mode, layers=None):
    """Sets the inference output of relaxed layers, on every backend.

    A layer's `eval_mode` is read when `predict` or `evaluate` is traced;
    TensorFlow and JAX then keep the traced function. This sets the mode
    and discards the model's compiled `predict` and `evaluate` functions,
    so the next call traces them again. A direct call, `model(x)`, uses the
    new mode at once. Other models that share these layers keep their own
    compiled functions: call it for each of them.

    Args:
        model: the model whose compiled functions are discarded.
        eval_mode: `"mode"`, `"sample"` or `"probs"`.
        layers: the layers to set, by default every `GumbelSoftmax`,
            `CategoricalLatent`, `BernoulliLatent` and `SubsetSampler`
            inside `model`; `SubsetSampler` has no `"probs"` mode.

    Example:

    >>> inputs = keras.Input((6,))
    >>> latent = keras_latent.layers.CategoricalLatent(2, 3)
    >>> model = keras.Model(inputs, latent(inputs))
    >>> keras_latent.models.set_eval_mode(model, "mode")
    >>> latent.eval_mode
    'mode'
    """
    validation.check_choice("eval_mode", eval_mode, RelaxedLayer.eval_modes)
    inside = _sublayers(model, RelaxedLayer)
    if layers is None:
        layers = inside
    for layer in layers:
        if not any(layer is known for known in inside):
            raise validation.invalid_value(
                "layers",
                "GumbelSoftmax, CategoricalLatent, BernoulliLatent or "
                f"SubsetSampler layers of model {model.name!r}",
                layers,
            )
    for layer in layers:
        # A layer may offer fewer modes (`SubsetSampler` has no "probs"):
        # check them all before setting any.
        validation.check_choice("eval_mode", eval_mode, layer.eval_modes)
    for layer in layers:
        layer._eval_mode = eval_mode
    # What `Model.compile` does to them: they are traced again when needed.
    model.predict_function = None
    model.test_function = None


class KLMean(keras.metrics.Mean):
    """A mean that shows NaN, not 0, while no step has updated it."""

    def __init__(self, name, model_name):
        super().__init__(name=name)
        self.model_name = model_name
        self.updated = False
        self.warned = False

    def update_state(self, values, sample_weight=None):
        self.updated = True
        return super().update_state(values, sample_weight=sample_weight)

    def result(self):
        if not self.updated and not self.warned:
            self.warned = True
            warnings.warn(
                f"`{self.name}` is logged as NaN: no step of model "
                f"{self.model_name!r} updated it. LatentModel updates its "
                "KL metrics in `compute_loss`; an override of "
                "`compute_loss` that does not call `super().compute_loss`, "
                "or a custom `train_step` or `test_step`, must call "
                "`keras_latent.models.update_kl_metrics(self)` after the "
                "forward pass.",
                stacklevel=2,
            )
        return ops.where(
            self.count > 0,
            self.total / ops.maximum(self.count, 1.0),
            float("nan"),
        )


class _KLMetricSet:
    """The KL metric of each latent layer of a model.

    A plain object, so that Keras does not track it as model state (a built
    subclassed model refuses new tracked state); `KLMetricsMixin.metrics`
    lists its metrics.
    """

    def __init__(self, model):
        self.pairs = [
            (layer, KLMean(f"{layer.name}_kl", model.name))
            for layer in _sublayers(model, LatentLayer)
        ]


def _kl_metric_pairs(model):
    """(layer, metric) for each latent layer of a compiled mixin model."""
    # Created at the first use after `compile` (Keras lists the metrics
    # before it traces a step), so that `compile` keeps Keras's own code
    # and a reloaded model is compiled from its config as usual.
    if getattr(model, "_kl_metrics", None) is None:
        model._kl_metrics = _KLMetricSet(model)
    return model._kl_metrics.pairs


class KLMetricsMixin:
    """Adds `<layer name>_kl` metrics to a `keras.Model` subclass.

    Put it first among the bases, before `keras.Model` or any subclass of
    it (a keras-hub task, a model of your own): once compiled, the model
    has one metric per latent layer inside it, nested models included, and
    `compute_loss` calls the next class's `compute_loss`, then
    `update_kl_metrics`.

    Example:

    >>> class Autoencoder(keras_latent.models.KLMetricsMixin, keras.Model):
    ...     pass
    """

    @property
    def metrics(self):
        metrics = super().metrics
        if not self.compiled:
            return metrics
        return metrics + [metric for _, metric in _kl_metric_pairs(self)]

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        loss = super().compute_loss(
            x=x,
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=training,
        )
        update_kl_metrics(self)
        return loss


def _functional_arguments(args, kwargs):
    """Whether model arguments are those of a functional model."""
    return (
        len(args) == 2
        or (len(args) == 1 and "outputs" in kwargs)
        or ("inputs" in kwargs and "outputs" in kwargs)
    )


@keras.saving.register_keras_serializable(package="keras_latent")
class LatentFunctional(KLMetricsMixin, keras.Model):
    """The functional model that `LatentModel(inputs, outputs)` returns.

    A class of its own: Keras turns the base of a `keras.Model` subclass
    built from inputs and outputs into its functional class, which would
    stop `LatentModel` from serving as a base class afterwards.
    """


@keras.saving.register_keras_serializable(package="keras_latent")
class LatentModel(KLMetricsMixin, keras.Model):
    """A `keras.Model` that logs the KL of its latent layers.

    `fit` and `evaluate` log, as `<layer name>_kl`, the unweighted KL (in
    nats, averaged over the batch) of each `CategoricalLatent` and
    `BernoulliLatent` inside the model, nested models included. The loss is
    the same as a `keras.Model`'s. Use it like `keras.Model`:

    - functionally, `LatentModel(inputs, outputs)`, which returns a
      `LatentFunctional`;
    - as the base class of a subclassed model. An override of
      `compute_loss` calls `super().compute_loss(...)`, or
      `keras_latent.models.update_kl_metrics(self)`; so does a custom
      `train_step` or `test_step`.

    Fit the outermost model: Keras ignores the metrics of a model nested in
    another, so a `LatentModel` inside a plain `keras.Model` logs nothing.

    Example:

    >>> inputs = keras.Input((8,))
    >>> latent = keras_latent.layers.CategoricalLatent(2, 4, name="latent")
    >>> model = keras_latent.models.LatentModel(
    ...     inputs, latent(keras.layers.Dense(8)(inputs))
    ... )
    >>> model.compile(optimizer="adam", loss="mse")
    >>> history = model.fit(
    ...     keras.ops.ones((4, 8)), keras.ops.ones((4, 2, 4)), verbose=0
    ... )
    >>> sorted(history.history)
    ['latent_kl', 'loss']
    """

    def __new__(cls, *args, **kwargs):
        if cls is LatentModel and _functional_arguments(args, kwargs):
            return LatentFunctional(*args, **kwargs)
        return super().__new__(cls, *args, **kwargs)


@keras.saving.register_keras_serializable(package="keras_latent")
class LatentSequential(KLMetricsMixin, keras.Sequential):
    """A `keras.Sequential` that logs the KL of its latent layers.

    See `LatentModel`.

    Example:

    >>> model = keras_latent.models.LatentSequential(
    ...     [
    ...         keras.Input((8,)),
    ...         keras.layers.Dense(8),
    ...         keras_latent.layers.BernoulliLatent(name="latent"),
    ...     ]
    ... )
    """
