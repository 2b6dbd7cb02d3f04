"""Gradient regularisers for the discriminator.

`d_fn` is any function images [B, H, W, C] -> outputs [B] or [B, 1]; it closes over D's
parameters, so gradients of the penalty flow back into them. Each function returns the
per-sample penalty, shape [B], without its weight: callers multiply by gamma/2 (R1, R2) or
lambda (WGAN-GP) as their paper specifies.
"""

import jax
import jax.numpy as jnp


def _input_grad(d_fn, x):
    # d(sum_b D(x_b))/dx gives each sample's own gradient: samples do not interact inside D
    # (true for every D here except batch-statistics layers, which the papers also ignore).
    return jax.grad(lambda v: jnp.sum(d_fn(v)))(x)


def _sq_norm(g):
    return jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1)


def r1_penalty(d_fn, real_images):
    """R1 (Mescheder et al. 2018): ||grad_x D(x)||^2 on real data. Weight: gamma / 2."""
    return _sq_norm(_input_grad(d_fn, real_images))


def r2_penalty(d_fn, fake_images):
    """R2: the same penalty on generated data. Weight: gamma / 2."""
    return _sq_norm(_input_grad(d_fn, fake_images))


def gradient_penalty(d_fn, real_images, fake_images, key, target=1.0):
    """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - target)^2 at x_hat = eps x + (1-eps) G(z),
    eps ~ U[0, 1] per sample. Weight: lambda (10 in the paper)."""
    eps = jax.random.uniform(key, (real_images.shape[0],) + (1,) * (real_images.ndim - 1), real_images.dtype)
    x_hat = eps * real_images + (1.0 - eps) * fake_images
    norm = jnp.sqrt(_sq_norm(_input_grad(d_fn, x_hat)) + 1e-12)
    return jnp.square(norm - target)


def drift_penalty(real_scores):
    """ProGAN's drift term D(x)^2 that keeps critic outputs near zero. Weight: epsilon (0.001)."""
    s = jnp.asarray(real_scores)
    s = s.reshape(s.shape[0], -1).sum(axis=1) if s.ndim > 1 else s
    return jnp.square(s)


def clip_weights(params, clip_value):
    """WGAN's weight clipping to [-c, c] (c = 0.01 in the paper); use as a Phase.post_update."""
    return jax.tree_util.tree_map(lambda p: jnp.clip(p, -clip_value, clip_value), params)
