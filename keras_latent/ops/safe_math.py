"""Elementwise helpers that keep NaN out of values and gradients."""

from keras import ops


def weighted_log_ratio(weight, log_numerator, log_denominator):
    """`weight * (log_numerator - log_denominator)`, taken as 0 where weight=0.

    This is the summand of a KL divergence with the convention
    0 * log(0 / p) = 0. The inner `where` keeps the NaN of `-inf - -inf`
    (a masked category whose prior is also zero) out of the backward pass: a
    single outer `where` would still multiply a zero cotangent by NaN.
    """
    support = weight > 0
    log_ratio = ops.where(support, log_numerator - log_denominator, 0.0)
    return ops.where(support, weight * log_ratio, 0.0)
