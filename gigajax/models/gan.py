"""The multilayer-perceptron GAN of Goodfellow et al. 2014, optionally class-conditional as in
Mirza & Osindero 2014 (cGAN).

Both networks are plain MLPs. Choices that differ from the papers (documented here once):
- Hidden layers use LeakyReLU(0.2) in G and D. The GAN paper used ReLU/sigmoid units in G and
  maxout units in D; LeakyReLU trains as well and needs no extra pieces per unit.
- G ends in tanh, so samples are in [-1, 1] (the papers used a sigmoid on [0, 1] pixels).
- D's dropout (the papers used it on every maxout layer) is available as `dropout`; it is off
  by default because a small D on 5k digits trains fine without it.
- Conditioning (cGAN): the one-hot label is concatenated to G's latent and to D's flattened
  image, with no learned embedding. The cGAN paper first mapped z and y through separate hidden
  layers (200 and 1000 units in G) and then joined them; the plain concatenation is the
  common simplification and is the same model class (the first Dense layer is a sum of a
  z-part and a y-part).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def check_labels(c, c_dim: int, n: int, who: str):
    """Validate labels c [n, c_dim] (None allowed when c_dim == 0) and return them or None."""
    if c is None or (c.ndim == 2 and c.shape[-1] == 0 and c_dim == 0):
        if c_dim:
            raise ValueError(f"{who}: c_dim={c_dim} but no labels were given (c=None)")
        return None
    if c.ndim != 2 or c.shape != (n, c_dim):
        raise ValueError(f"{who}: labels c must have shape [{n}, {c_dim}] (c_dim={c_dim}), got {tuple(c.shape)}")
    return c.astype(jnp.float32)


def check_latents(z, z_dim: int, who: str):
    if z.ndim != 2 or z.shape[-1] != z_dim:
        raise ValueError(f"{who}: latents z must have shape [N, {z_dim}] (z_dim={z_dim}), got {tuple(z.shape)}")


def check_images(x, img_resolution: int, img_channels: int, who: str):
    want = (img_resolution, img_resolution, img_channels)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(f"{who}: images must have shape [N, {img_resolution}, {img_resolution}, {img_channels}] "
                         f"(NHWC), got {tuple(x.shape)}")


class MLPGenerator(nn.Module):
    """z [N, z_dim] (+ one-hot c [N, c_dim]) -> images [N, R, R, C] in [-1, 1]."""
    z_dim: int = 100
    c_dim: int = 0
    img_resolution: int = 32
    img_channels: int = 1
    hidden: Sequence[int] = (256, 512, 1024)
    negative_slope: float = 0.2

    @nn.compact
    def __call__(self, z, c=None, train: bool = False):
        del train  # no train-time behaviour; the argument keeps one call signature for all networks
        check_latents(z, self.z_dim, "MLPGenerator")
        c = check_labels(c, self.c_dim, z.shape[0], "MLPGenerator")
        x = z.astype(jnp.float32) if c is None else jnp.concatenate([z.astype(jnp.float32), c], axis=-1)
        for i, width in enumerate(self.hidden):
            x = nn.leaky_relu(nn.Dense(width, name=f"fc{i}")(x), self.negative_slope)
        r, ch = self.img_resolution, self.img_channels
        x = nn.Dense(r * r * ch, name="out")(x)
        return jnp.tanh(x).reshape(z.shape[0], r, r, ch)


class MLPDiscriminator(nn.Module):
    """images [N, R, R, C] (+ one-hot c [N, c_dim]) -> logits [N]. Dropout needs rngs={'dropout': k}
    when train=True and dropout > 0."""
    c_dim: int = 0
    img_resolution: int = 32
    img_channels: int = 1
    hidden: Sequence[int] = (1024, 512, 256)
    negative_slope: float = 0.2
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, c=None, train: bool = False):
        check_images(x, self.img_resolution, self.img_channels, "MLPDiscriminator")
        c = check_labels(c, self.c_dim, x.shape[0], "MLPDiscriminator")
        h = x.astype(jnp.float32).reshape(x.shape[0], -1)
        if c is not None:
            h = jnp.concatenate([h, c], axis=-1)
        for i, width in enumerate(self.hidden):
            h = nn.leaky_relu(nn.Dense(width, name=f"fc{i}")(h), self.negative_slope)
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(1, name="out")(h)[:, 0]

