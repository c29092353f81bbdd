"""`softmax` and `log_softmax` along one axis, by the fastest kernel.

`keras.ops.softmax` and `keras.ops.log_softmax` on the torch backend call
PyTorch's kernels along the last axis, which on a CPU are nine times
slower when that axis holds fewer than 16 entries: 980 against 110
microseconds for a (6554, 10) float32 tensor, one thread, and 1.55 against
0.24 ms forward and backward, where a latent of 10 categories spends them.
There PyTorch's kernel along the first axis is fast, so these functions
move the axis to the front, normalize along it, and move it back: the same
numbers (the same algorithm, along another axis) and the same gradient.
Elsewhere, and while `torch.compile` traces (it generates its own kernel),
they are Keras's. Neither masks: see `keras_latent.ops.softmax`.
"""

import keras
from keras import ops

# PyTorch's last-axis CPU kernels are fast from this many entries on.
SMALL_AXIS = 16


def softmax(x, axis=-1):
    """`keras.ops.softmax(x, axis)`, faster on PyTorch's CPU kernels."""
    if _on_slow_torch_kernel(x, axis):
        import torch

        return torch.softmax(x.movedim(axis, 0), 0).movedim(0, axis)
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    """`keras.ops.log_softmax(x, axis)`, faster on PyTorch's CPU kernels."""
    if _on_slow_torch_kernel(x, axis):
        import torch

        return torch.log_softmax(x.movedim(axis, 0), 0).movedim(0, axis)
    return ops.log_softmax(x, axis=axis)


def _on_slow_torch_kernel(x, axis):
    """Whether `x` is a float32 PyTorch CPU tensor, outside a compiler,
    whose `axis` is short enough for PyTorch's slow last-axis kernel."""
    if keras.backend.backend() != "torch":
        return False
    import torch

    return (
        isinstance(x, torch.Tensor)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() > 1
        and 0 < x.shape[axis] < SMALL_AXIS
        and not torch.compiler.is_compiling()
    )
