"""Adversarial losses and discriminator regularisers (per-sample; callers reduce and weight)."""

from gigajax.losses.adversarial import (  # noqa: F401
    hinge_d, hinge_g, logistic_d, lsgan_d, lsgan_g, minimax_g, nonsaturating_g, wgan_d, wgan_g)
from gigajax.losses.regularizers import (  # noqa: F401
    clip_weights, drift_penalty, gradient_penalty, r1_penalty, r2_penalty)
