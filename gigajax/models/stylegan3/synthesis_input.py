"""StyleGAN3's input layer: Fourier features in continuous image coordinates.

The features are sinusoids at fixed random frequencies inside a disc of radius `bandwidth`. The
first w turns them by a learned rotation and translation; a user transform (the `transform`
buffer, or the `transform` argument) moves them further. Because the features are defined in
continuous coordinates, translating or rotating the whole image is just a change of these
parameters, which is what the equivariance metrics exploit.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gigajax.models.stylegan2.layers import FullyConnectedLayer
from gigajax.ops._args import fail


def _random_disc_freqs(key, channels, bandwidth):
    """`[channels, 2]` frequencies, dense near the origin and fading towards |f| = bandwidth
    (a normal draw whose radius is shrunk by r * exp(r^2 / 4), as in the paper's appendix F)."""
    f = jax.random.normal(key, (channels, 2), jnp.float32)
    radii = jnp.sqrt(jnp.sum(jnp.square(f), axis=1, keepdims=True))
    return f / (radii * jnp.exp(jnp.square(radii)) ** 0.25) * bandwidth


def sampling_grid(size, sampling_rate):
    """Pixel-centre coordinates `(x [W], y [H])` of a `size = [W, H]` image whose sampling rate is
    `sampling_rate` samples per unit, centred on the origin."""
    w, h = (int(v) for v in np.broadcast_to(np.asarray(size), [2]))
    x = (np.arange(w, dtype=np.float64) + 0.5 - w / 2) / sampling_rate
    y = (np.arange(h, dtype=np.float64) + 0.5 - h / 2) / sampling_rate
    return x.astype(np.float32), y.astype(np.float32)


class SynthesisInput(nn.Module):
    """w `[N, w_dim]` -> Fourier features `[N, H, W, channels]` (`size = [W, H]` or an int).

    Params: `weight` `[channels, channels]` (`[in, out]`; official `[out, in]`), the learned
    mixing of the features; `affine` (w -> (r_c, r_s, t_x, t_y), zero weights, bias (1, 0, 0, 0)).
    Buffers: `freqs` `[channels, 2]` and `phases` `[channels]` (random at init, then fixed);
    `transform` `[3, 3]`, the user's inverse transform of the output image (identity at init).

    Call: `(w, transform=None)`; a `transform` `[3, 3]` or `[N, 3, 3]` argument replaces the
    buffer for this call (the equivariance metrics pass one per batch without mutating state).
    """
    w_dim: int
    channels: int
    size: Any
    sampling_rate: float
    bandwidth: float

    @nn.compact
    def __call__(self, w, transform=None):
        if w.ndim != 2 or w.shape[1] != self.w_dim:
            fail("w.shape", tuple(w.shape), f"[N, w_dim={self.w_dim}]")
        c = self.channels
        freqs = self.variable("buffers", "freqs",
                              lambda: _random_disc_freqs(self.make_rng("params"), c, self.bandwidth)).value
        phases = self.variable("buffers", "phases",
                               lambda: jax.random.uniform(self.make_rng("params"), (c,), jnp.float32) - 0.5).value
        user = self.variable("buffers", "transform", lambda: jnp.eye(3, dtype=jnp.float32)).value
        weight = self.param("weight", nn.initializers.normal(1.0), (c, c))
        if transform is not None:
            user = jnp.asarray(transform, jnp.float32)
            if user.shape[-2:] != (3, 3) or user.ndim not in (2, 3):
                fail("transform.shape", tuple(user.shape), "[3, 3] or [N, 3, 3]")
        n = w.shape[0]
        user = jnp.broadcast_to(user, (n, 3, 3))

        # The learned similarity: rotation by the unit vector (r_c, r_s), then translation.
        t = FullyConnectedLayer(self.w_dim, 4, weight_init=0, bias_init=(1, 0, 0, 0), name="affine")(w)
        t = t / jnp.linalg.norm(t[:, :2], axis=1, keepdims=True)
        zeros, ones = jnp.zeros((n,), t.dtype), jnp.ones((n,), t.dtype)
        m_r = jnp.stack([jnp.stack([t[:, 0], -t[:, 1], zeros], -1),
                         jnp.stack([t[:, 1], t[:, 0], zeros], -1),
                         jnp.stack([zeros, zeros, ones], -1)], 1)
        m_t = jnp.stack([jnp.stack([ones, zeros, -t[:, 2]], -1),
                         jnp.stack([zeros, ones, -t[:, 3]], -1),
                         jnp.stack([zeros, zeros, ones], -1)], 1)
        m = m_r @ m_t @ user                                           # [N, 3, 3]

        # Transforming the coordinates = transforming the frequencies and phases.
        phases = phases[None] + jnp.einsum("cj,nj->nc", freqs, m[:, :2, 2])  # [N, C]
        freqs = jnp.einsum("cj,njk->nck", freqs, m[:, :2, :2])               # [N, C, 2]
        # A user rotation can push frequencies past the band; fade them out before they alias.
        amplitudes = jnp.clip(1 - (jnp.linalg.norm(freqs, axis=2) - self.bandwidth)
                              / (self.sampling_rate / 2 - self.bandwidth), 0, 1)

        gx, gy = sampling_grid(self.size, self.sampling_rate)
        x = (gx[None, None, :, None] * freqs[:, None, None, :, 0] + gy[None, :, None, None] * freqs[:, None, None, :, 1]
             + phases[:, None, None, :])                                       # [N, H, W, C]
        x = jnp.sin(x * (2 * np.pi)) * amplitudes[:, None, None, :]
        return x @ (weight / np.sqrt(c))
