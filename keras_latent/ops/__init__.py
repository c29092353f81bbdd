"""Backend-agnostic math of keras-latent, built on `keras.ops`.

Every function computes in float32 and returns the input's dtype.
"""

from keras_latent.ops.bernoulli import bernoulli_kl
from keras_latent.ops.bernoulli import relaxed_bernoulli
from keras_latent.ops.categorical_kl import categorical_kl
from keras_latent.ops.content_addressing import content_weights
from keras_latent.ops.content_addressing import cosine_similarity
from keras_latent.ops.content_addressing import weighted_read
from keras_latent.ops.entmax import entmax15
from keras_latent.ops.entmax import entmax_bisect
from keras_latent.ops.grouped_normalize import grouped_normalize
from keras_latent.ops.gumbel_softmax import gumbel_softmax
from keras_latent.ops.gumbel_softmax import one_hot_argmax
from keras_latent.ops.gumbel_softmax import sample_one_hot
from keras_latent.ops.noise import uniform_noise
from keras_latent.ops.relaxed_log_prob import relaxed_one_hot_log_prob
from keras_latent.ops.sparsemax import sparsemax
from keras_latent.ops.straight_through import straight_through
