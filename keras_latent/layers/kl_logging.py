"""How a latent layer's KL reaches the `fit` and `evaluate` logs.

A latent layer computes its KL inside `call` and stores it in a
non-trainable variable, `layer.last_kl`. Its metric, `layer.kl_tracker`
(logged as `<layer name>_kl`), is then updated from that variable inside
`Model.compute_loss`, which keras-latent wraps once, on import.

Why not update the metric inside `call`? Under the JAX backend, Keras 3 runs
`call` through `stateless_call`, which maps only the trainable and
non-trainable variables: a metric update there fails (`'NoneType' object is
not callable`), or is silently dropped and the metric logs 0. Non-trainable
variables are carried out of `call` on every backend (that is how batch
normalization keeps its moving statistics), and `compute_loss` runs in a
scope that maps the updated non-trainable variables *and* the metric
variables, on every backend. The same code path serves TensorFlow, JAX and
PyTorch, so the logged value is the KL of the batch just computed.

A model that overrides `compute_loss` without calling `super()` keeps the
KL in its loss but no longer logs it.
"""

import functools

import keras


def update_kl_trackers(model):
    """Updates the KL metric of every latent layer inside `model`."""
    from keras_latent.layers.latent_layer import LatentLayer

    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, LatentLayer) and layer.built:
            layer.kl_tracker.update_state(layer.last_kl)


def install():
    """Wraps `keras.Model.compute_loss` to update the KL metrics. Idempotent."""
    compute_loss = keras.Model.compute_loss
    if getattr(compute_loss, "_keras_latent_wrapped", False):
        return

    @functools.wraps(compute_loss)
    def compute_loss_and_kl_metrics(self, *args, **kwargs):
        loss = compute_loss(self, *args, **kwargs)
        update_kl_trackers(self)
        return loss

    compute_loss_and_kl_metrics._keras_latent_wrapped = True
    keras.Model.compute_loss = compute_loss_and_kl_metrics
