"""
Title: Mixed precision in the examples
Author: keras-latent contributors
Date created: 2026/11/30
Last modified: 2026/11/30
Description: The `--dtype-policy` option of the examples: the Keras dtype
policy under which the model is built, set before any layer exists.

Under `mixed_float16` and `mixed_bfloat16` Keras keeps the weights in
float32 and computes each layer in half precision; keras-latent's layers
compute their sampling, densities and KL in float32 inside and return the
compute dtype. Two choices follow Keras's mixed-precision guide: the layer
that gives the model's output logits is built with `dtype="float32"`
(`OUTPUT_DTYPE`), so that the loss sees float32 logits, and `compile`
wraps the optimizer in a `keras.optimizers.LossScaleOptimizer` under
`mixed_float16` by itself, so that small float16 gradients do not flush to
zero. A model saved under a policy keeps each layer's policy in its config
and reloads with it, whatever the policy in force when it is loaded; its
compiled optimizer is wrapped again (and its saved loss scale restored)
only when `mixed_float16` is in force at loading, so resume training a
`mixed_float16` model under that policy.
"""

DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")

# The dtype of the layer that gives the model's output logits: float32
# under every policy, as Keras's guide advises for the last layer.
OUTPUT_DTYPE = "float32"


def add_arguments(parser):
    """Adds `--dtype-policy` to an `argparse` parser."""
    parser.add_argument(
        "--dtype-policy",
        default="float32",
        choices=DTYPE_POLICIES,
        help="the Keras dtype policy of the model's layers: mixed_float16 "
        "for GPUs with float16 units, mixed_bfloat16 for TPUs and recent "
        "GPUs and CPUs",
    )
