"""InfoGAN networks (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by
Information Maximizing Generative Adversarial Nets", appendix C.1, MNIST).

The generator sees one latent vector that packs the incompressible noise and the structured
codes side by side::

    z = [noise (noise_dim) | categorical code (cat_dim, one-hot) | continuous codes (cont_dim)]

(62 + 10 + 2 = 74 for the paper's MNIST setup). The discriminator shares its conv trunk with
the recognition network Q: one forward pass returns D's real/fake logit, Q's categorical logits,
and the mean and log-std of a factored Gaussian over the continuous codes.

Layers follow the paper's MNIST table, scaled from 28x28 to any resolution divisible by 4
(the first feature map is resolution/4 square):

    G: FC fc_dim BN ReLU -> FC (res/4)^2 * 2ch BN ReLU -> 4x4 up-conv ch s2 BN ReLU
       -> 4x4 up-conv channels s2, tanh
    D: 4x4 conv ch s2 lReLU(0.1) -> 4x4 conv 2ch s2 BN lReLU -> FC fc_dim BN lReLU -> FC 1
    Q: (D's FC fc_dim features) -> FC q_dim BN lReLU -> FC cat_dim + 2 * cont_dim

with ch = 64, fc_dim = 1024, q_dim = 128 in the paper.

The paper's MNIST Q models each continuous code as a Gaussian with *fixed* unit variance (the
official code's ``Uniform(1, fix_std=True)``); ``Discriminator`` always returns a log-std head,
and the training recipe decides whether to use it (``q_learn_std``) or to ignore it (unit std).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LOG_STD_MIN = -5.0   # clamp for the learned log-std head, so a perfect fit cannot drive the NLL to -inf
LOG_STD_MAX = 2.0


def _bn(train: bool, name: str | None = None):
    # momentum 0.9: G changes quickly, so its running statistics must track it for sample grids.
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


class Generator(nn.Module):
    """Latent z [B, noise_dim + cat_dim + cont_dim] -> images [B, res, res, channels] in [-1, 1]."""
    resolution: int = 32
    channels: int = 1
    ch: int = 64
    fc_dim: int = 1024

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        if self.resolution % 4:
            raise ValueError(f"infogan.Generator: resolution must be divisible by 4, got {self.resolution}")
        if z.ndim != 2:
            raise ValueError(f"infogan.Generator: z must be [B, z_dim], got shape {z.shape}")
        s = self.resolution // 4
        x = nn.Dense(self.fc_dim, use_bias=False)(z)
        x = nn.relu(_bn(train)(x))
        x = nn.Dense(s * s * 2 * self.ch, use_bias=False)(x)
        x = nn.relu(_bn(train)(x))
        x = x.reshape(x.shape[0], s, s, 2 * self.ch)
        x = nn.ConvTranspose(self.ch, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)(x)
        x = nn.relu(_bn(train)(x))
        x = nn.ConvTranspose(self.channels, (4, 4), strides=(2, 2), padding="SAME")(x)
        return jnp.tanh(x)


class Discriminator(nn.Module):
    """Images [B, res, res, C] -> (d_logit [B], cat_logits [B, cat_dim], cont_mean [B, cont_dim],
    cont_log_std [B, cont_dim]). D and Q share every layer up to the fc_dim features."""
    cat_dim: int = 10
    cont_dim: int = 2
    ch: int = 64
    fc_dim: int = 1024
    q_dim: int = 128

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True):
        if x.ndim != 4:
            raise ValueError(f"infogan.Discriminator: images must be [B, H, W, C], got shape {x.shape}")
        lrelu = lambda v: nn.leaky_relu(v, 0.1)
        h = lrelu(nn.Conv(self.ch, (4, 4), strides=(2, 2), padding="SAME")(x))
        h = nn.Conv(2 * self.ch, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)(h)
        h = lrelu(_bn(train)(h))
        h = h.reshape(h.shape[0], -1)
        h = nn.Dense(self.fc_dim, use_bias=False)(h)
        h = lrelu(_bn(train)(h))
        d_logit = nn.Dense(1, name="d_out")(h)[:, 0]
        q = nn.Dense(self.q_dim, use_bias=False, name="q_fc")(h)
        q = lrelu(_bn(train, name="q_bn")(q))
        q = nn.Dense(self.cat_dim + 2 * self.cont_dim, name="q_out")(q)
        cat_logits = q[:, :self.cat_dim]
        cont_mean = q[:, self.cat_dim:self.cat_dim + self.cont_dim]
        cont_log_std = jnp.clip(q[:, self.cat_dim + self.cont_dim:], LOG_STD_MIN, LOG_STD_MAX)
        return d_logit, cat_logits, cont_mean, cont_log_std


# --- latent packing ----------------------------------------------------------------------------

def pack_latents(noise: jax.Array, cat: jax.Array, cont: jax.Array) -> jax.Array:
    """[B, noise_dim], [B, cat_dim] one-hot, [B, cont_dim] -> z [B, noise_dim + cat_dim + cont_dim]."""
    return jnp.concatenate([noise, cat, cont], axis=-1)


def split_latents(z: jax.Array, cat_dim: int, cont_dim: int):
    """Inverse of `pack_latents`: z -> (noise, cat, cont)."""
    n = z.shape[-1] - cat_dim - cont_dim
    if n < 0:
        raise ValueError(f"split_latents: z has {z.shape[-1]} dims, fewer than cat_dim + cont_dim = {cat_dim + cont_dim}")
    return z[..., :n], z[..., n:n + cat_dim], z[..., n + cat_dim:]


def sample_latents(key: jax.Array, n: int, noise_dim: int, cat_dim: int, cont_dim: int):
    """Draw from the InfoGAN prior: noise ~ N(0, I), cat ~ uniform one-hot, cont ~ U(-1, 1).
    Returns (z packed, cat_index [n] int32, cont [n, cont_dim])."""
    kn, kc, ku = jax.random.split(key, 3)
    noise = jax.random.normal(kn, (n, noise_dim), jnp.float32)
    idx = jax.random.randint(kc, (n,), 0, cat_dim)
    cont = jax.random.uniform(ku, (n, cont_dim), jnp.float32, -1.0, 1.0)
    return pack_latents(noise, jax.nn.one_hot(idx, cat_dim, dtype=jnp.float32), cont), idx, cont


def code_sweep(noise: jax.Array, categories: Sequence[int], cat_dim: int, cont_dim: int, code_index: int,
               cols: int, lo: float = -2.0, hi: float = 2.0, other_cont: float = 0.0) -> jax.Array:
    """Latents for the paper's Figure 2 (c)/(d): one row per entry of `categories`, the continuous
    code `code_index` swept linearly from `lo` to `hi` along the `cols` columns (beyond the
    training prior U(-1, 1), as in the paper), every other continuous code held at `other_cont`.

    noise: [noise_dim] (shared by every row) or [rows, noise_dim] (one per row).
    Returns z [rows * cols, noise_dim + cat_dim + cont_dim], row-major.
    """
    rows = len(categories)
    if not 0 <= code_index < cont_dim:
        raise ValueError(f"code_sweep: code_index must be in [0, {cont_dim}), got {code_index}")
    noise = jnp.asarray(noise, jnp.float32)
    if noise.ndim == 1:
        noise = jnp.broadcast_to(noise, (rows, noise.shape[0]))
    if noise.shape[0] != rows:
        raise ValueError(f"code_sweep: noise must be [noise_dim] or [rows={rows}, noise_dim], got {noise.shape}")
    noise = jnp.repeat(noise, cols, axis=0)
    cat = np.eye(cat_dim, dtype=np.float32)[np.repeat(np.asarray(categories) % cat_dim, cols)]
    cont = np.full((rows * cols, cont_dim), other_cont, np.float32)
    cont[:, code_index] = np.tile(np.linspace(lo, hi, cols, dtype=np.float32), rows)
    return pack_latents(noise, jnp.asarray(cat), jnp.asarray(cont))
