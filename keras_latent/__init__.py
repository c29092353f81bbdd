"""keras-latent: discrete latent variables and softmax-family hidden layers."""

from keras_latent import callbacks
from keras_latent import diagnostics
from keras_latent import evaluation
from keras_latent import layers
from keras_latent import losses
from keras_latent import models
from keras_latent import ops
from keras_latent import regularizers
from keras_latent import schedules
from keras_latent.version import __version__
