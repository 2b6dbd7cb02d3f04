"""Adversarial losses on discriminator outputs.

Every function takes raw discriminator outputs (logits for the probabilistic losses, critic
values for WGAN / hinge, scores for LSGAN) of shape [B] or [B, 1] and returns the per-sample
loss, shape [B], so callers choose the reduction (the official StyleGAN code sums per-sample
terms before a mean; most papers report a mean).
"""

import jax.numpy as jnp
from jax.nn import softplus


def _flat(x):
    x = jnp.asarray(x)
    return x.reshape(x.shape[0], -1).sum(axis=1) if x.ndim > 1 else x


# --- Goodfellow et al. 2014 -------------------------------------------------------------------

def logistic_d(real_logits, fake_logits):
    """D's loss, -log D(x) - log(1 - D(G(z))), written with softplus for stability."""
    return softplus(-_flat(real_logits)) + softplus(_flat(fake_logits))


def nonsaturating_g(fake_logits):
    """G's non-saturating loss, -log D(G(z)) (the heuristic of Goodfellow et al. 2014, sec. 3)."""
    return softplus(-_flat(fake_logits))


def minimax_g(fake_logits):
    """G's original minimax loss, log(1 - D(G(z))) = -softplus(logit). Saturates early in training."""
    return -softplus(_flat(fake_logits))


# --- Wasserstein (Arjovsky et al. 2017) ----------------------------------------------------

def wgan_d(real_scores, fake_scores):
    """Critic loss D(G(z)) - D(x): minimising it maximises the Wasserstein estimate."""
    return _flat(fake_scores) - _flat(real_scores)


def wgan_g(fake_scores):
    return -_flat(fake_scores)


# --- Least squares (Mao et al. 2017, the a=0, b=c=1 coding) ---------------------------------

def lsgan_d(real_scores, fake_scores):
    return 0.5 * jnp.square(_flat(real_scores) - 1.0) + 0.5 * jnp.square(_flat(fake_scores))


def lsgan_g(fake_scores):
    return 0.5 * jnp.square(_flat(fake_scores) - 1.0)


# --- Hinge (Lim & Ye 2017; SAGAN / BigGAN) ---------------------------------------------------

def hinge_d(real_scores, fake_scores):
    return jnp.maximum(0.0, 1.0 - _flat(real_scores)) + jnp.maximum(0.0, 1.0 + _flat(fake_scores))


def hinge_g(fake_scores):
    return -_flat(fake_scores)
