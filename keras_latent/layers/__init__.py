"""Keras layers of keras-latent: one layer per module."""

from keras_latent.layers.bernoulli_latent import BernoulliLatent
from keras_latent.layers.categorical_latent import CategoricalLatent
from keras_latent.layers.content_addressing import ContentAddressing
from keras_latent.layers.grouped_softmax import GroupedSoftmax
from keras_latent.layers.gumbel_softmax import GumbelSoftmax
from keras_latent.layers.hidden_softmax import HiddenSoftmax
from keras_latent.layers.sparse_attention import SparseMultiHeadAttention
from keras_latent.layers.subset_sampler import SubsetSampler
