"""The binary latent variable: a layer of relaxed Bernoulli units."""

import math

import keras
from keras import ops

from keras_latent import ops as latent_ops
from keras_latent import validation
from keras_latent.layers.categorical_latent import check_kl
from keras_latent.layers.latent_layer import LatentLayer


@keras.saving.register_keras_serializable(package="keras_latent")
class BernoulliLatent(LatentLayer):
    """A layer of independent binary latent units (binary Concrete).

    The input holds the posterior log-odds of each unit. In training the
    layer returns a relaxed Bernoulli sample `sigmoid((logits + l) / t)`,
    `l` being logistic noise and `t` the temperature (exactly 0 or 1 with
    straight-through gradients if `hard=True`); at inference, by
    `eval_mode`, an exact Bernoulli sample (`"sample"`, the default), the
    mode (`"mode"`) or the probabilities (`"probs"`).

    At every call it adds `kl_weight * mean_batch(sum_units KL)` to the
    model's losses, in float32 (the mean over the unmasked steps; 0 for an
    empty batch). A `keras_latent.models.LatentModel` logs the unweighted
    KL, in nats, as `<layer name>_kl`. The temperature and `kl_weight` are
    floats or schedules evaluated at the layer's step counter (see
    `RelaxedLayer`). The KL is:
    - `kl="analytic"`: the analytic
      KL(Bernoulli(sigmoid(logits)) || Bernoulli(prior_probability)).
    - `kl="relaxed"`: in training, the single-sample Monte Carlo estimate
      log q(x) - log p(x) between the logistic densities of the logit `x`
      of the relaxed sample under posterior and prior at the current
      temperature (see `keras_latent.ops.relaxed_bernoulli_kl`); at
      inference, the analytic KL. With `"gumbel_rao"`, the mean of the
      estimates at its K conditional relaxed samples. `"straight_through"`
      and `"reinmax"` draw no relaxed sample and take `kl="analytic"`.

    Args:
        temperature: a float >= 1e-30, or a schedule of the training step
            (see `keras_latent.schedules`) whose values are > 0.
        hard: None, or whether training samples are exactly 0 or 1:
            `hard=True` alone means `estimator="straight_through_gumbel"`;
            given with `estimator`, it must agree with it.
        estimator: None (decided by `hard`), `"gumbel_softmax"`,
            `"straight_through_gumbel"`, `"straight_through"`,
            `"gumbel_rao"` or `"reinmax"`.
        num_samples: K of `"gumbel_rao"` (default 10); None otherwise.
        prior_probability: the prior probability of 1, strictly between 0
            and 1.
        kl_weight: the weight of the KL term, a float >= 0 or a schedule
            of the training step.
        kl: `"analytic"` or `"relaxed"`.
        eval_mode: `"sample"`, `"mode"` or `"probs"`.
        seed: an integer or None, the seed of the layer's `SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: logits of shape `(..., units)`.
        training: whether to draw relaxed samples or to apply `eval_mode`.
        mask: a boolean tensor of the input's leading (batch) shape, as
            `keras.layers.Embedding(mask_zero=True)` propagates; masked
            steps are left out of the KL mean. The mask passes through.

    Returns:
        A tensor of the shape of `inputs` in the layer's compute dtype.

    Example:

    >>> latent = keras_latent.layers.BernoulliLatent(seed=1)
    >>> tuple(latent(keras.random.normal((4, 20)), training=True).shape)
    (4, 20)

    References:
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
        - [Paulus et al., 2021](https://arxiv.org/abs/2010.04838)
        - [Liu et al., 2023](https://arxiv.org/abs/2304.08612)
    """

    def __init__(
        self,
        temperature: float = 1.0,
        hard: bool | None = None,
        estimator: str | None = None,
        num_samples: int | None = None,
        prior_probability: float = 0.5,
        kl_weight: float = 1.0,
        kl: str = "analytic",
        eval_mode: str = "sample",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            temperature=temperature,
            hard=hard,
            estimator=estimator,
            num_samples=num_samples,
            kl_weight=kl_weight,
            eval_mode=eval_mode,
            seed=seed,
            **kwargs,
        )
        self.prior_probability = validation.check_open_unit_interval(
            "prior_probability", prior_probability
        )
        p = self.prior_probability
        self.prior_logit = math.log(p) - math.log1p(-p)
        self.kl = check_kl(kl, self.estimator)

    def call(self, inputs, training=None, mask=None):
        # In float32: a KL rounded to half precision loses up to 0.4%.
        logits = ops.cast(inputs, "float32")
        temperature = self.current_temperature()
        if training:
            outputs, logit_samples = latent_ops.bernoulli_estimator(
                inputs,
                self.estimator,
                temperature=temperature,
                num_samples=self.num_samples,
                seed=self.seed_generator,
            )
        else:
            outputs = latent_ops.bernoulli_inference(
                inputs, self.eval_mode, self.seed_generator
            )
        if training and self.kl == "relaxed":
            kl = latent_ops.relaxed_bernoulli_kl(
                logit_samples, logits, self.prior_logit, temperature
            )
            kl = ops.mean(kl, axis=0)
        else:
            kl = latent_ops.bernoulli_kl(logits, self.prior_logit)
        self.add_kl_loss(ops.sum(ops.cast(kl, "float32"), axis=-1), mask)
        if training:
            self._count_training_call()
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "prior_probability": self.prior_probability,
            "kl": self.kl,
        }
