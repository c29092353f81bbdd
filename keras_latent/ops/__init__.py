"""Backend-agnostic math of keras-latent, built on `keras.ops`.

Every function computes in float32 and returns the input's dtype.

- `simplex`: softmax, sparsemax, entmax15 and entmax_bisect, with one
  masking rule; `grouped_normalize` applies them within groups of units.
- `gumbel`: relaxed (Concrete) samples in log space, their densities, exact
  one-hot samples and the outputs of a categorical layer at inference.
- `bernoulli`: relaxed and exact Bernoulli samples and their densities.
- `discrete`: log-probabilities of exact one-hot and binary samples.
- `estimators`: gradient estimators chosen by name (straight-through,
  straight-through Gumbel, Gumbel-Rao, ReinMax) for categorical and
  Bernoulli samples, and the REINFORCE-LOO surrogate loss.
- `fenchel_young`: the Fenchel-Young losses of sparsemax and entmax, and
  the Tsallis negentropy that defines them.
- `subsets`: exact Gumbel-top-k samples of k categories, their
  relaxation and its straight-through estimator.
- `kl`: analytic KLs, and Monte Carlo KLs from log-space samples.
- `content_addressing`: the read of a memory by content.
- `noise`: seeded uniform and normal noise that differs between
  data-parallel replicas.
"""

from keras_latent.ops.bernoulli import bernoulli_inference
from keras_latent.ops.bernoulli import relaxed_bernoulli
from keras_latent.ops.bernoulli import relaxed_bernoulli_logit_log_prob
from keras_latent.ops.bernoulli import relaxed_bernoulli_logit_sample
from keras_latent.ops.bernoulli import sample_bernoulli
from keras_latent.ops.content_addressing import content_weights
from keras_latent.ops.content_addressing import cosine_similarity
from keras_latent.ops.content_addressing import weighted_read
from keras_latent.ops.discrete import bernoulli_log_prob
from keras_latent.ops.discrete import one_hot_categorical_log_prob
from keras_latent.ops.estimators import bernoulli_estimator
from keras_latent.ops.estimators import categorical_estimator
from keras_latent.ops.estimators import conditional_gumbel
from keras_latent.ops.estimators import conditional_logistic
from keras_latent.ops.estimators import gumbel_rao
from keras_latent.ops.estimators import reinforce_loo_surrogate
from keras_latent.ops.estimators import reinmax
from keras_latent.ops.estimators import straight_through_gumbel
from keras_latent.ops.estimators import straight_through_sample
from keras_latent.ops.fenchel_young import entmax15_loss
from keras_latent.ops.fenchel_young import entmax_bisect_loss
from keras_latent.ops.fenchel_young import sparsemax_loss
from keras_latent.ops.fenchel_young import tsallis_negentropy
from keras_latent.ops.grouped_normalize import grouped_normalize
from keras_latent.ops.gumbel import categorical_inference
from keras_latent.ops.gumbel import exp_relaxed_one_hot_log_prob
from keras_latent.ops.gumbel import gumbel_softmax
from keras_latent.ops.gumbel import one_hot_argmax
from keras_latent.ops.gumbel import relaxed_one_hot_log_prob
from keras_latent.ops.gumbel import relaxed_one_hot_log_sample
from keras_latent.ops.gumbel import sample_one_hot
from keras_latent.ops.kl import bernoulli_kl
from keras_latent.ops.kl import categorical_kl
from keras_latent.ops.kl import relaxed_bernoulli_kl
from keras_latent.ops.kl import relaxed_categorical_kl
from keras_latent.ops.noise import normal_noise
from keras_latent.ops.noise import uniform_noise
from keras_latent.ops.simplex import entmax15
from keras_latent.ops.simplex import entmax_bisect
from keras_latent.ops.simplex import softmax
from keras_latent.ops.simplex import sparsemax
from keras_latent.ops.straight_through import straight_through
from keras_latent.ops.subsets import gumbel_top_k
from keras_latent.ops.subsets import k_hot_top_k
from keras_latent.ops.subsets import relaxed_top_k
from keras_latent.ops.subsets import straight_through_top_k
