"""BEGAN networks (Berthelot et al. 2017, "BEGAN: Boundary Equilibrium Generative Adversarial
Networks", section 3.5 and Figure 1).

The discriminator is an autoencoder: an encoder maps the image to an embedding h of size
h_dim, and a decoder with the generator's architecture (separate weights) maps h back. Every
conv is 3x3 with ELU; each resolution has `convs_per_level` convs. The encoder downsamples with
stride-2 convs and widens linearly (n, 2n, 3n, ...); the decoder upsamples by nearest
neighbour and keeps n channels. The bottleneck and the first decoder layer are fully connected,
without activation. The last conv has no activation either, as in the paper: outputs are not
bounded, and `Generator` images are only clipped to [-1, 1] by the recipe's `generate`.

The paper's 64x64 model starts the decoder at 8x8 with n = 64 or 128 and h_dim = z_dim = 64.
Here the first decoder map is `base_resolution` square (8 by default), so 32x32 images get two
upsamplings and three encoder levels; the default width is scaled down for a CPU.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def _levels(resolution: int, base_resolution: int) -> int:
    lv, r = 1, base_resolution
    while r < resolution:
        r *= 2
        lv += 1
    if r != resolution:
        raise ValueError(f"began: resolution must be base_resolution={base_resolution} times a power of 2, "
                         f"got {resolution}")
    return lv


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
    """NHWC nearest-neighbour upsampling by an integer factor."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class Decoder(nn.Module):
    """Vector [B, in_dim] -> image [B, res, res, channels] (unbounded). Also BEGAN's generator.
    `out_bias_init` is the initial bias of the last conv, i.e. the image value the network
    starts around (0 = mid-gray, as with the paper's default initialisation)."""
    resolution: int = 32
    channels: int = 1
    n: int = 32
    base_resolution: int = 8
    convs_per_level: int = 2
    out_bias_init: float = 0.0

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        if h.ndim != 2:
            raise ValueError(f"began.Decoder: input must be [B, dim], got shape {h.shape}")
        levels = _levels(self.resolution, self.base_resolution)
        b = self.base_resolution
        x = nn.Dense(b * b * self.n)(h).reshape(h.shape[0], b, b, self.n)
        for lv in range(levels):
            for _ in range(self.convs_per_level):
                x = nn.elu(nn.Conv(self.n, (3, 3), padding="SAME")(x))
            if lv < levels - 1:
                x = upsample_nearest(x)
        return nn.Conv(self.channels, (3, 3), padding="SAME",
                       bias_init=nn.initializers.constant(self.out_bias_init))(x)


class Encoder(nn.Module):
    """Image [B, res, res, C] -> embedding [B, h_dim] (no activation)."""
    resolution: int = 32
    n: int = 32
    h_dim: int = 64
    base_resolution: int = 8
    convs_per_level: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4 or x.shape[1] != self.resolution or x.shape[2] != self.resolution:
            raise ValueError(f"began.Encoder: images must be [B, {self.resolution}, {self.resolution}, C], "
                             f"got shape {x.shape}")
        levels = _levels(self.resolution, self.base_resolution)
        x = nn.elu(nn.Conv(self.n, (3, 3), padding="SAME")(x))
        for lv in range(levels):
            width = self.n * (lv + 1)
            for _ in range(self.convs_per_level):
                x = nn.elu(nn.Conv(width, (3, 3), padding="SAME")(x))
            if lv < levels - 1:
                x = nn.elu(nn.Conv(self.n * (lv + 2), (3, 3), strides=(2, 2), padding="SAME")(x))
        return nn.Dense(self.h_dim)(x.reshape(x.shape[0], -1))


class Generator(nn.Module):
    """z [B, z_dim] (U(-1, 1) in the paper) -> images [B, res, res, channels], unbounded.
    `out_bias_init` starts the output at that constant (see `Decoder`)."""
    resolution: int = 32
    channels: int = 1
    n: int = 32
    base_resolution: int = 8
    convs_per_level: int = 2
    out_bias_init: float = 0.0

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        return Decoder(self.resolution, self.channels, self.n, self.base_resolution, self.convs_per_level,
                       self.out_bias_init, name="decoder")(z)


class Discriminator(nn.Module):
    """Autoencoder D: images [B, res, res, C] -> reconstructions of the same shape."""
    resolution: int = 32
    channels: int = 1
    n: int = 32
    h_dim: int = 64
    base_resolution: int = 8
    convs_per_level: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = Encoder(self.resolution, self.n, self.h_dim, self.base_resolution, self.convs_per_level,
                    name="encoder")(x)
        return Decoder(self.resolution, self.channels, self.n, self.base_resolution, self.convs_per_level,
                       name="decoder")(h)
