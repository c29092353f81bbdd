"""Every layer passes the same conformance checks (see `conformance.py`).

`LAYER_CASES` is the one table of what each layer is expected to hold: its
weight, seed-generator and loss counts and whether it supports Keras masks;
what a whole layer class holds (its non-trainable weights, mask support) is
read from `NON_TRAINABLE_WEIGHTS` and `SUPPORTS_MASKING`, so that a change
of a layer's state is made in one place. The rows also cover the layer
options whose config, shapes, saving and mixed precision differ: input
forms and ranks, priors, hard samples, estimators, eval modes,
normalizers, trainable memory or memory inputs.
"""

import keras
import pytest

from keras_latent.layers import BernoulliLatent
from keras_latent.layers import CategoricalLatent
from keras_latent.layers import ContentAddressing
from keras_latent.layers import GroupedSoftmax
from keras_latent.layers import GumbelSoftmax
from keras_latent.layers import HiddenSoftmax
from keras_latent.layers import SparseMultiHeadAttention
from keras_latent.layers import SubsetSampler
from keras_latent.regularizers import Entropy
from tests.layers.conformance import CHECKS
from tests.layers.conformance import check_layer_conformance
from tests.layers.conformance import check_layers_train_together

# What each layer class holds, in one place: a change of state or of mask
# support is made here. Non-trainable weights: the step counter
# `iterations` of the relaxed and latent layers, at which their temperature
# and KL-weight schedules are evaluated.
NON_TRAINABLE_WEIGHTS = {
    GumbelSoftmax: 1,
    SubsetSampler: 1,
    CategoricalLatent: 1,
    BernoulliLatent: 1,
    GroupedSoftmax: 0,
    HiddenSoftmax: 0,
    ContentAddressing: 0,
    SparseMultiHeadAttention: 0,
}
# Every softmax-family layer passes a mask on, as `keras.layers.Softmax`
# does; ContentAddressing reads a memory, whose slots are not time steps.
SUPPORTS_MASKING = {
    GumbelSoftmax: True,
    SubsetSampler: True,
    CategoricalLatent: True,
    BernoulliLatent: True,
    GroupedSoftmax: True,
    HiddenSoftmax: True,
    ContentAddressing: False,
    SparseMultiHeadAttention: True,
}
# Attention rounds to the compute dtype after each of its chained products
# (projections, scores, weighted sum, output projection), as
# `keras.layers.MultiHeadAttention` does: its float16 outputs were measured
# up to 11 roundoffs away from float32's (TensorFlow).
ATTENTION_ROUNDOFFS = 32

LAYER_CASES = {
    "gumbel-softmax-rank2": dict(
        layer_cls=GumbelSoftmax,
        init_kwargs=dict(temperature=0.3, eval_mode="mode", seed=1),
        input_shape=(2, 5),
        expected_output_shape=(2, 5),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[GumbelSoftmax],
        expected_num_seed_generators=1,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[GumbelSoftmax],
    ),
    "gumbel-softmax-hard-reinmax-probs-rank3-axis1": dict(
        layer_cls=GumbelSoftmax,
        init_kwargs=dict(
            hard=True,
            estimator="reinmax",
            axis=1,
            eval_mode="probs",
            seed=2,
            name="relaxed",
        ),
        input_shape=(2, 5, 3),
        expected_output_shape=(2, 5, 3),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[GumbelSoftmax],
        expected_num_seed_generators=1,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[GumbelSoftmax],
        mask_shape=(2,),
    ),
    "gumbel-softmax-sample-rank3": dict(
        layer_cls=GumbelSoftmax,
        init_kwargs=dict(eval_mode="sample", seed=3),
        input_shape=(2, 3, 5),
        expected_output_shape=(2, 3, 5),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[GumbelSoftmax],
        expected_num_seed_generators=1,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[GumbelSoftmax],
    ),
    "subset-sampler-relaxed-rank2": dict(
        layer_cls=SubsetSampler,
        init_kwargs=dict(k=2, temperature=0.5, eval_mode="mode", seed=11),
        input_shape=(2, 5),
        expected_output_shape=(2, 5),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[SubsetSampler],
        expected_num_seed_generators=1,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[SubsetSampler],
    ),
    "subset-sampler-straight-through-sample-rank3-axis1": dict(
        layer_cls=SubsetSampler,
        init_kwargs=dict(
            k=3,
            estimator="straight_through",
            axis=1,
            eval_mode="sample",
            seed=12,
            name="subsets",
        ),
        input_shape=(2, 5, 3),
        expected_output_shape=(2, 5, 3),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[SubsetSampler],
        expected_num_seed_generators=1,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[SubsetSampler],
    ),
    "categorical-flat-rank2-uniform": dict(
        layer_cls=CategoricalLatent,
        init_kwargs=dict(
            num_variables=3,
            num_categories=4,
            prior="uniform",
            eval_mode="mode",
            seed=4,
        ),
        input_shape=(2, 12),
        expected_output_shape=(2, 3, 4),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            CategoricalLatent
        ],
        expected_num_seed_generators=1,
        expected_num_losses=1,
        supports_masking=SUPPORTS_MASKING[CategoricalLatent],
        float32_losses=True,
    ),
    "categorical-structured-rank3-learned-relaxed-gumbel-rao": dict(
        layer_cls=CategoricalLatent,
        init_kwargs=dict(
            num_variables=3,
            num_categories=4,
            temperature=0.7,
            hard=True,
            estimator="gumbel_rao",
            num_samples=3,
            prior="learned",
            kl_weight=0.25,
            kl="relaxed",
            eval_mode="probs",
            seed=5,
            name="latent",
        ),
        input_shape=(2, 3, 4),
        expected_output_shape=(2, 3, 4),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            CategoricalLatent
        ],
        expected_num_seed_generators=1,
        expected_num_losses=1,
        supports_masking=SUPPORTS_MASKING[CategoricalLatent],
        mask_shape=(2,),
        float32_losses=True,
    ),
    "categorical-flat-rank3-fixed-matrix": dict(
        layer_cls=CategoricalLatent,
        init_kwargs=dict(
            num_variables=2,
            num_categories=3,
            prior=[[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]],
            kl="relaxed",
            eval_mode="sample",
            seed=6,
        ),
        input_shape=(2, 3, 6),
        expected_output_shape=(2, 3, 2, 3),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            CategoricalLatent
        ],
        expected_num_seed_generators=1,
        expected_num_losses=1,
        supports_masking=SUPPORTS_MASKING[CategoricalLatent],
        float32_losses=True,
    ),
    "categorical-structured-rank4-fixed-vector": dict(
        layer_cls=CategoricalLatent,
        init_kwargs=dict(
            num_variables=3,
            num_categories=4,
            prior=[0.1, 0.2, 0.3, 0.4],
            eval_mode="mode",
            seed=7,
        ),
        input_shape=(2, 3, 3, 4),
        expected_output_shape=(2, 3, 3, 4),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            CategoricalLatent
        ],
        expected_num_seed_generators=1,
        expected_num_losses=1,
        supports_masking=SUPPORTS_MASKING[CategoricalLatent],
        mask_shape=(2, 3),
        float32_losses=True,
    ),
    "bernoulli-rank2-probs": dict(
        layer_cls=BernoulliLatent,
        init_kwargs=dict(
            temperature=0.7,
            prior_probability=0.25,
            kl_weight=0.5,
            eval_mode="probs",
            seed=8,
            name="bits",
        ),
        input_shape=(2, 6),
        expected_output_shape=(2, 6),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            BernoulliLatent
        ],
        expected_num_seed_generators=1,
        expected_num_losses=1,
        supports_masking=SUPPORTS_MASKING[BernoulliLatent],
        float32_losses=True,
    ),
    "bernoulli-rank3-straight-through-sample": dict(
        layer_cls=BernoulliLatent,
        init_kwargs=dict(
            estimator="straight_through", eval_mode="sample", seed=9
        ),
        input_shape=(2, 3, 6),
        expected_output_shape=(2, 3, 6),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            BernoulliLatent
        ],
        expected_num_seed_generators=1,
        expected_num_losses=1,
        supports_masking=SUPPORTS_MASKING[BernoulliLatent],
        float32_losses=True,
    ),
    "grouped-softmax-entmax15": dict(
        layer_cls=GroupedSoftmax,
        init_kwargs=dict(groups=4, normalizer="entmax15", temperature=2.0),
        input_shape=(2, 16),
        expected_output_shape=(2, 16),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            GroupedSoftmax
        ],
        expected_num_seed_generators=0,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[GroupedSoftmax],
    ),
    "grouped-softmax-sparsemax-rank3": dict(
        layer_cls=GroupedSoftmax,
        init_kwargs=dict(groups=2, normalizer="sparsemax", temperature=0.1),
        input_shape=(2, 3, 16),
        expected_output_shape=(2, 3, 16),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            GroupedSoftmax
        ],
        expected_num_seed_generators=0,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[GroupedSoftmax],
    ),
    "hidden-softmax-sparsemax-regularized": dict(
        layer_cls=HiddenSoftmax,
        init_kwargs=dict(
            units=16,
            groups=4,
            temperature=0.5,
            normalizer="sparsemax",
            use_bias=False,
            activity_regularizer=Entropy(weight=0.25, groups=4),
            kernel_constraint=keras.constraints.NonNeg(),
        ),
        input_shape=(2, 10),
        expected_output_shape=(2, 16),
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[HiddenSoftmax],
        expected_num_seed_generators=0,
        expected_num_losses=1,
        supports_masking=SUPPORTS_MASKING[HiddenSoftmax],
    ),
    "hidden-softmax-entmax15-rank3": dict(
        layer_cls=HiddenSoftmax,
        init_kwargs=dict(
            units=8,
            groups=2,
            normalizer="entmax15",
            bias_initializer=keras.initializers.RandomNormal(seed=2),
        ),
        input_shape=(2, 3, 10),
        expected_output_shape=(2, 3, 8),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[HiddenSoftmax],
        expected_num_seed_generators=0,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[HiddenSoftmax],
    ),
    "hidden-softmax-entmax-learned": dict(
        layer_cls=HiddenSoftmax,
        init_kwargs=dict(
            units=8, groups=2, normalizer="entmax", alpha="learned"
        ),
        input_shape=(2, 10),
        expected_output_shape=(2, 8),
        # The kernel, the bias and the two groups' alpha logits.
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[HiddenSoftmax],
        expected_num_seed_generators=0,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[HiddenSoftmax],
    ),
    "content-addressing-own-memory-entmax15": dict(
        layer_cls=ContentAddressing,
        init_kwargs=dict(
            num_slots=6,
            slot_size=5,
            normalizer="entmax15",
            key_strength=2.5,
            return_weights=True,
            memory_initializer=keras.initializers.RandomNormal(seed=1),
            epsilon=1e-5,
            seed=10,
            name="addressing",
        ),
        input_shape=(2, 5),
        expected_output_shape=((2, 5), (2, 6)),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            ContentAddressing
        ],
        expected_num_seed_generators=1,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[ContentAddressing],
    ),
    "content-addressing-own-memory-gumbel": dict(
        layer_cls=ContentAddressing,
        init_kwargs=dict(
            num_slots=6, slot_size=5, normalizer="gumbel", seed=11
        ),
        input_shape=(2, 3, 5),
        expected_output_shape=(2, 3, 5),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            ContentAddressing
        ],
        expected_num_seed_generators=1,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[ContentAddressing],
    ),
    "content-addressing-memory-input": dict(
        layer_cls=ContentAddressing,
        init_kwargs=dict(
            normalizer="sparsemax",
            key_strength=None,
            return_weights=True,
            seed=12,
        ),
        input_shape={
            "key": (2, 3, 5),
            "memory": (2, 6, 5),
            "values": (2, 6, 4),
            "key_strength": (2, 3, 1),
        },
        expected_output_shape=((2, 3, 4), (2, 3, 6)),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            ContentAddressing
        ],
        expected_num_seed_generators=1,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[ContentAddressing],
    ),
    # Without dropout: under TensorFlow, Keras's `Dropout` draws different
    # noise in float16 and float32, which the mixed-precision checks
    # compare. Dropout is tested in `test_sparse_attention.py`.
    "sparse-attention-sparsemax": dict(
        layer_cls=SparseMultiHeadAttention,
        init_kwargs=dict(num_heads=2, key_dim=3, normalizer="sparsemax"),
        input_shape={"query": (2, 3, 5), "value": (2, 4, 5)},
        expected_output_shape=(2, 3, 5),
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            SparseMultiHeadAttention
        ],
        expected_num_seed_generators=0,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[SparseMultiHeadAttention],
        mixed_precision_roundoffs=ATTENTION_ROUNDOFFS,
    ),
    "sparse-attention-entmax-learned": dict(
        layer_cls=SparseMultiHeadAttention,
        init_kwargs=dict(
            num_heads=2, key_dim=3, normalizer="entmax", alpha="learned"
        ),
        input_shape={"query": (2, 3, 5), "value": (2, 4, 5)},
        expected_output_shape=(2, 3, 5),
        # The eight projection kernels and biases, and one alpha per head.
        expected_num_trainable_weights=9,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            SparseMultiHeadAttention
        ],
        expected_num_seed_generators=0,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[SparseMultiHeadAttention],
        mixed_precision_roundoffs=ATTENTION_ROUNDOFFS,
    ),
    "sparse-attention-entmax-key": dict(
        layer_cls=SparseMultiHeadAttention,
        init_kwargs=dict(
            num_heads=2,
            key_dim=3,
            value_dim=2,
            normalizer="entmax",
            alpha=1.75,
        ),
        input_shape={
            "query": (2, 3, 5),
            "value": (2, 4, 6),
            "key": (2, 4, 5),
        },
        expected_output_shape=(2, 3, 5),
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=NON_TRAINABLE_WEIGHTS[
            SparseMultiHeadAttention
        ],
        expected_num_seed_generators=0,
        expected_num_losses=0,
        supports_masking=SUPPORTS_MASKING[SparseMultiHeadAttention],
        mixed_precision_roundoffs=ATTENTION_ROUNDOFFS,
    ),
}


# (case, check) pairs that fail on today's layers for a reason filed in an
# issue. Strict: the test fails once the layer is fixed, so that the entry is
# removed with the fix.
KNOWN_FAILURES = {}


def conformance_params():
    for case in sorted(LAYER_CASES):
        for check in CHECKS:
            if check == "training":
                continue
            marks = ()
            if (case, check) in KNOWN_FAILURES:
                reason = KNOWN_FAILURES[case, check]
                marks = pytest.mark.xfail(strict=True, reason=reason)
            yield pytest.param(case, check, marks=marks, id=f"{case}-{check}")


@pytest.mark.parametrize("case, check", conformance_params())
def test_layer_conforms(case, check, tmp_path):
    check_layer_conformance(
        **LAYER_CASES[case], checks=(check,), tmp_path=tmp_path
    )


def test_every_layer_trains_in_a_compiled_fit():
    # The `training` check of all cases in one model: one compilation.
    check_layers_train_together(*LAYER_CASES.values())
