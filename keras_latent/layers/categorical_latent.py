"""The multinomial latent variable of a categorical VAE."""

import keras
import numpy as np
from keras import ops

from keras_latent import ops as latent_ops
from keras_latent import validation
from keras_latent.layers.latent_layer import LatentLayer

PRIOR_SUM_TOLERANCE = 1e-5
KL_CHOICES = ("analytic", "relaxed")


@keras.saving.register_keras_serializable(package="keras_latent")
class CategoricalLatent(LatentLayer):
    """A layer of `num_variables` categorical latent variables.

    The input holds the posterior logits of `num_variables` independent
    categorical variables with `num_categories` categories each. In
    training the layer returns a Gumbel-softmax (Concrete) sample of each
    variable at the current temperature (one-hot with straight-through
    gradients if `hard=True`); at inference, by `eval_mode`, an exact
    one-hot sample (`"sample"`, the default, so that `evaluate` reports a
    valid bound of the discrete model), the one-hot mode (`"mode"`) or the
    posterior probabilities (`"probs"`).

    At every call the layer adds `kl_weight * mean_batch(sum_variables KL)`
    to the model's losses, in float32 (the mean over the unmasked steps; 0
    for an empty batch). A `keras_latent.models.LatentModel` logs the
    unweighted KL, in nats, as `<layer name>_kl`. The temperature and
    `kl_weight` are floats or schedules evaluated at the layer's step
    counter (see `RelaxedLayer`). The KL is:
    - `kl="analytic"`: the analytic KL(q || prior) between the discrete
      posterior q = softmax(logits) and the prior.
    - `kl="relaxed"`: in training, the single-sample Monte Carlo estimate
      log q(y) - log p(y) between the Concrete densities of posterior and
      prior at the current temperature, at the soft sample y (Maddison et
      al. 2017, appendix C), computed from its log-sample so that it stays
      unbiased at low temperatures (see
      `keras_latent.ops.relaxed_categorical_kl`); at inference, the
      analytic KL. With `"gumbel_rao"`, the mean of the estimates at its
      K conditional Concrete samples, each one marginally a Concrete
      sample. `"straight_through"` and `"reinmax"` draw no Concrete
      sample: they take `kl="analytic"`, the KL of the discrete model
      that their exact samples belong to.

    A fixed prior may give some categories probability 0. Those categories
    are then excluded: the posterior logits are masked to `-inf` there, so
    that no sample, mode or probability ever picks them and the KL stays
    finite (the KL over the remaining categories).

    Args:
        num_variables: the number of latent variables, an integer >= 1.
        num_categories: the number of categories per variable, >= 2.
        temperature: a float >= 1e-30, or a schedule of the training step
            (see `keras_latent.schedules`) whose values are > 0.
        hard: None, or whether training samples are one-hot: `hard=True`
            alone means `estimator="straight_through_gumbel"`; given with
            `estimator`, it must agree with it.
        estimator: None (decided by `hard`), `"gumbel_softmax"`,
            `"straight_through_gumbel"`, `"straight_through"`,
            `"gumbel_rao"` or `"reinmax"`.
        num_samples: K of `"gumbel_rao"` (default 10); None otherwise.
        prior: `"uniform"`, `"learned"` (trainable prior logits, one row per
            variable), or fixed probabilities: an array of shape
            `(num_categories,)` or `(num_variables, num_categories)`,
            non-negative, each row summing to 1 (zeros exclude
            categories, see above).
        kl_weight: the weight of the KL term, a float >= 0 or a schedule
            of the training step.
        kl: `"analytic"` or `"relaxed"`.
        eval_mode: `"sample"`, `"mode"` or `"probs"`.
        seed: an integer or None, the seed of the layer's `SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: logits of shape `(..., num_variables * num_categories)` or
            `(..., num_variables, num_categories)`; an input of rank 3 or
            more ending in `(num_variables, num_categories)` is read as the
            second form (with `num_variables=1`, `(batch, 1, K)` is one
            variable per example, not a batch of flat logits). The form is
            that of the shape the layer was built for: built for
            `(batch, None, K)`, a batch of length 1 is flat logits too.
        training: whether to draw relaxed samples or to apply `eval_mode`.
        mask: a boolean tensor of the input's leading (batch) shape, as
            `keras.layers.Embedding(mask_zero=True)` propagates; masked
            steps are left out of the KL mean. The mask passes through.

    Returns:
        A tensor of shape `(..., num_variables, num_categories)` in the
        layer's compute dtype.

    Example:

    >>> latent = keras_latent.layers.CategoricalLatent(30, 10, seed=1)
    >>> logits = keras.random.normal((4, 300))
    >>> tuple(latent(logits, training=True).shape)
    (4, 30, 10)

    References:
        - [Jang et al., 2017](https://arxiv.org/abs/1611.01144)
        - [Maddison et al., 2017](https://arxiv.org/abs/1611.00712)
        - [Paulus et al., 2021](https://arxiv.org/abs/2010.04838)
        - [Liu et al., 2023](https://arxiv.org/abs/2304.08612)
    """

    def __init__(
        self,
        num_variables: int,
        num_categories: int,
        temperature: float = 1.0,
        hard: bool | None = None,
        estimator: str | None = None,
        num_samples: int | None = None,
        prior="uniform",
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
        self.num_variables = validation.check_integer(
            "num_variables", num_variables, minimum=1
        )
        self.num_categories = validation.check_integer(
            "num_categories", num_categories, minimum=2
        )
        self.kl = check_kl(kl, self.estimator)
        self.prior, self.fixed_prior_log_probs = self._check_prior(prior)

    def _check_prior(self, prior):
        """Returns the prior for the config and its log-probabilities."""
        if isinstance(prior, str):
            validation.check_choice("prior", prior, ("uniform", "learned"))
            return prior, None
        probabilities = np.asarray(prior, dtype="float64")
        allowed_shapes = (
            (self.num_categories,),
            (self.num_variables, self.num_categories),
        )
        if probabilities.shape not in allowed_shapes:
            raise ValueError(
                "Invalid value received for argument `prior`. Expected "
                "'uniform', 'learned' or probabilities of shape "
                f"{allowed_shapes[0]} or {allowed_shapes[1]}. Received: "
                f"prior with shape {probabilities.shape}"
            )
        row_sums = probabilities.sum(axis=-1)
        if (
            not np.all(np.isfinite(probabilities))
            or np.any(probabilities < 0)
            or np.any(np.abs(row_sums - 1.0) > PRIOR_SUM_TOLERANCE)
        ):
            raise ValueError(
                "Invalid value received for argument `prior`. Expected "
                "non-negative probabilities summing to 1 along the last "
                f"axis. Received: prior={probabilities.tolist()}"
            )
        with np.errstate(divide="ignore"):
            log_probs = np.log(probabilities).astype("float32")
        return probabilities.tolist(), log_probs

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        # Decided on the shape the layer is built for, as the symbolic
        # output is: flat logits of a sequence of unknown length stay flat
        # in a batch whose length happens to equal num_variables.
        self.built_for_structured_input = self._is_structured(input_shape)
        super().build(input_shape)
        if self.prior == "learned":
            self.prior_logits = self.add_weight(
                shape=(self.num_variables, self.num_categories),
                initializer="zeros",
                trainable=True,
                name="prior_logits",
                dtype="float32",
                autocast=False,
            )

    def _is_structured(self, shape):
        """Whether `shape` ends in (num_variables, num_categories)."""
        structured = (self.num_variables, self.num_categories)
        return len(shape) >= 3 and tuple(shape[-2:]) == structured

    def _check_input_shape(self, input_shape):
        flat_size = self.num_variables * self.num_categories
        structured = (self.num_variables, self.num_categories)
        if self._is_structured(input_shape):
            return
        if len(input_shape) >= 1 and input_shape[-1] == flat_size:
            return
        raise validation.invalid_shape(
            "inputs",
            f"logits with a last dimension of {flat_size} (num_variables * "
            f"num_categories) or a shape ending in {structured}",
            input_shape,
        )

    def _prior_excludes_categories(self):
        """Whether a fixed prior gives some category probability 0."""
        return self.fixed_prior_log_probs is not None and not np.all(
            np.isfinite(self.fixed_prior_log_probs)
        )

    def _prior_logits(self):
        if self.prior == "uniform":
            return None
        if self.prior == "learned":
            return self.prior_logits
        return ops.convert_to_tensor(self.fixed_prior_log_probs)

    def call(self, inputs, training=None, mask=None):
        if not (
            self.built_for_structured_input
            and self._is_structured(inputs.shape)
        ):
            batch_shape = ops.shape(inputs)[:-1]
            inputs = ops.reshape(
                inputs, (*batch_shape, self.num_variables, self.num_categories)
            )
        prior_logits = self._prior_logits()
        if self._prior_excludes_categories():
            inputs = ops.where(
                np.isfinite(self.fixed_prior_log_probs), inputs, -np.inf
            )
        if training:
            outputs, kl = self._relaxed_sample_and_kl(inputs, prior_logits)
        else:
            outputs = latent_ops.categorical_inference(
                inputs, self.eval_mode, -1, self.seed_generator
            )
            kl = latent_ops.categorical_kl(
                ops.cast(inputs, "float32"), prior_logits
            )
        self.add_kl_loss(ops.sum(ops.cast(kl, "float32"), axis=-1), mask)
        if training:
            self._count_training_call()
        return outputs

    def _relaxed_sample_and_kl(self, logits, prior_logits):
        # The sample stays in float32 until the output: a half-precision
        # sample underflows to 0 where the Concrete density needs log(y).
        logits32 = ops.cast(logits, "float32")
        temperature = self.current_temperature()
        sample, log_samples = latent_ops.categorical_estimator(
            logits32,
            self.estimator,
            temperature,
            num_samples=self.num_samples,
            seed=self.seed_generator,
        )
        if self.kl == "relaxed":
            kl = latent_ops.relaxed_categorical_kl(
                log_samples,
                ops.broadcast_to(logits32, ops.shape(log_samples)),
                prior_logits,
                temperature,
            )
            kl = ops.mean(kl, axis=0)
        else:
            kl = latent_ops.categorical_kl(logits32, prior_logits)
        return ops.cast(sample, logits.dtype), kl

    def compute_output_shape(self, input_shape):
        built_for_flat_input = self.built and not (
            self.built_for_structured_input
        )
        if self._is_structured(input_shape) and not built_for_flat_input:
            return tuple(input_shape)
        return (*input_shape[:-1], self.num_variables, self.num_categories)

    def get_config(self):
        return {
            **super().get_config(),
            "num_variables": self.num_variables,
            "num_categories": self.num_categories,
            "prior": self.prior,
            "kl": self.kl,
        }


def check_kl(kl, estimator):
    """Checks `kl`; a relaxed KL needs an estimator that draws a Concrete
    sample. Returns `kl`."""
    kl = validation.check_choice("kl", kl, KL_CHOICES)
    if (
        kl == "relaxed"
        and estimator not in latent_ops.estimators.CONCRETE_ESTIMATORS
    ):
        raise ValueError(
            "Invalid value received for argument `kl`. Expected 'analytic' "
            f"with estimator={estimator!r}, which draws an exact sample and "
            "no Concrete sample for a relaxed KL. Received: kl='relaxed'"
        )
    return kl
