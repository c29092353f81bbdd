"""Under `torch.compile` the normalizers trace as one graph each.

A graph break splits the compiled function and, in a loop such as the
bisection, made Dynamo trace it again and again: Keras's `ops.max` on
torch breaks the graph (it checks `isinstance(result.values, Tensor)`),
and the bisected entmax took 12.6 s to compile instead of 4.4 until the
ops used `ops.amax`.
"""

import keras
import pytest

from keras_latent import ops as latent_ops

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="torch.compile only"
)
NORMALIZERS = {
    "softmax": latent_ops.softmax,
    "sparsemax": latent_ops.sparsemax,
    "entmax15": latent_ops.entmax15,
    "entmax_bisect": lambda x: latent_ops.entmax_bisect(x, 1.3, n_iter=4),
    "sparsemax_loss": lambda x: latent_ops.sparsemax_loss(
        keras.ops.softmax(x), x
    ),
}


@pytest.mark.parametrize("name", NORMALIZERS)
def test_normalizer_compiles_without_graph_breaks(name, rng):
    import torch

    x = torch.tensor(rng.normal(size=(16, 8)).astype("float32"))
    explanation = torch._dynamo.explain(NORMALIZERS[name])(x)
    reasons = [reason.reason for reason in explanation.break_reasons]
    assert explanation.graph_break_count == 0, reasons
