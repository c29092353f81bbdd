"""Backend-agnostic math of keras-latent, built on `keras.ops`.

Every function computes in float32 and returns the input's dtype.
"""

from keras_latent.ops.bernoulli import bernoulli_kl
from keras_latent.ops.bernoulli import relaxed_bernoulli
from keras_latent.ops.categorical_kl import categorical_kl
from keras_latent.ops.gumbel_softmax import gumbel_softmax
from keras_latent.ops.gumbel_softmax import one_hot_argmax
from keras_latent.ops.gumbel_softmax import sample_one_hot
from keras_latent.ops.noise import uniform_noise
from keras_latent.ops.relaxed_log_prob import relaxed_one_hot_log_prob
from keras_latent.ops.straight_through import straight_through
