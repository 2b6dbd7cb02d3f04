"""Bilinear resizing with PyTorch's `F.interpolate(mode='bilinear')` semantics, NHWC.

The official Projected GAN / StyleGAN-XL code resizes with torch; `jax.image.resize` differs
(it antialiases when shrinking and has no align_corners=True mode), so the feature networks and
the random projections of the projected discriminator use this instead. Each axis is one small
interpolation matrix applied as a matmul, exact and cheap at these sizes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def interpolation_matrix(n_in: int, n_out: int, align_corners: bool = False) -> np.ndarray:
    """[n_out, n_in] float32 weights of 1-D linear interpolation as torch computes them.

    align_corners=False: source coordinate (i + 0.5) * n_in / n_out - 0.5, clamped below at 0,
    upper neighbour clamped to the border; the scale is float32 and the coordinate is rounded to
    float32 once (torch's CPU kernel uses a fused multiply-add there), so the weights match
    torch's to the last bit. align_corners=True: source coordinate i * (n_in - 1) / (n_out - 1)."""
    f32 = np.float32
    if align_corners:
        scale = f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else f32(0)
        src = (np.float64(scale) * np.arange(n_out)).astype(f32)
    else:
        scale = f32(n_in) / f32(n_out)
        src = np.maximum((np.float64(scale) * (np.arange(n_out) + 0.5) - 0.5).astype(f32), f32(0))
    lo = np.minimum(src.astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo.astype(f32)).astype(f32)
    m = np.zeros((n_out, n_in), f32)
    np.add.at(m, (np.arange(n_out), lo), f32(1) - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def resize_bilinear(x: jax.Array, size, align_corners: bool = False) -> jax.Array:
    """`F.interpolate(x, size, mode='bilinear', align_corners=...)` without antialiasing, on NHWC:
    x [N, H, W, C] -> [N, size, size, C] (or [N, size[0], size[1], C]); computed in float32 at
    the highest matmul precision, returned in x's dtype."""
    oh, ow = (size, size) if isinstance(size, int) else size
    x = jnp.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"resize_bilinear expects x of shape [N, H, W, C]; got {x.shape}")
    my = jnp.asarray(interpolation_matrix(x.shape[1], oh, align_corners))
    mx = jnp.asarray(interpolation_matrix(x.shape[2], ow, align_corners))
    hp = jax.lax.Precision.HIGHEST
    y = jnp.einsum("oh,nhwc->nowc", my, x.astype(jnp.float32), precision=hp)
    return jnp.einsum("pw,nowc->nopc", mx, y, precision=hp).astype(x.dtype)
