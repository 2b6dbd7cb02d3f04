"""Latent-space walks and vector arithmetic (DCGAN, Radford et al. 2016, sections 6.1 and 6.3).

Pure jnp functions on latent vectors; feed the results to any generator.
- `interpolate(z0, z1, steps, method)`: the paper's walk is linear ('linear'); 'slerp' follows the
  great circle (White 2016), which keeps Gaussian latents at a typical norm along the way.
- `vector_arithmetic(za, zb, zc)`: mean(za) - mean(zb) + mean(zc) over exemplar sets (the paper
  averages three exemplars per concept, e.g. smiling woman - neutral woman + neutral man).
- `variations(key, z, num, scale)`: z followed by `num` copies with uniform noise in
  [-scale, scale] added (the paper's 3x3 grids: the centre sample and 8 others with noise of
  scale +-0.25).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_pair(z0, z1, who):
    z0, z1 = jnp.asarray(z0), jnp.asarray(z1)
    if z0.shape != z1.shape:
        raise ValueError(f"{who}: z0 and z1 must have the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    return z0, z1


def lerp(z0, z1, t):
    """(1 - t) z0 + t z1. t broadcasts against z0 (a scalar, or [..., 1])."""
    z0, z1 = _check_pair(z0, z1, "lerp")
    return z0 + (z1 - z0) * t


def slerp(z0, z1, t, eps: float = 1e-7):
    """Spherical interpolation along the last axis: sin((1-t) W)/sin W z0 + sin(t W)/sin W z1 with
    W the angle between z0 and z1. Falls back to `lerp` where the vectors are (nearly) parallel.
    When |z0| == |z1| every point keeps that norm."""
    z0, z1 = _check_pair(z0, z1, "slerp")
    n0 = jnp.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = jnp.linalg.norm(z1, axis=-1, keepdims=True)
    cos = jnp.sum(z0 * z1, axis=-1, keepdims=True) / jnp.maximum(n0 * n1, eps)
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    sin = jnp.sin(omega)
    parallel = sin < 1e-4
    safe_sin = jnp.where(parallel, 1.0, sin)
    w0 = jnp.where(parallel, 1.0 - t, jnp.sin((1.0 - t) * omega) / safe_sin)
    w1 = jnp.where(parallel, t, jnp.sin(t * omega) / safe_sin)
    return w0 * z0 + w1 * z1


def interpolate(z0, z1, steps: int, method: str = "linear"):
    """`steps` latents from z0 to z1 inclusive: [steps, *z0.shape]. method: 'linear' or 'slerp'."""
    if int(steps) < 2:
        raise ValueError(f"interpolate: steps must be >= 2 (both endpoints), got {steps}")
    if method not in ("linear", "slerp"):
        raise ValueError(f"interpolate: method must be 'linear' or 'slerp', got {method!r}")
    z0, z1 = _check_pair(z0, z1, "interpolate")
    t = jnp.linspace(0.0, 1.0, int(steps), dtype=jnp.result_type(z0.dtype, jnp.float32))
    t = t.reshape((-1,) + (1,) * z0.ndim)
    fn = lerp if method == "linear" else slerp
    return fn(z0[None], z1[None], t)


def vector_arithmetic(za, zb, zc):
    """mean(za) - mean(zb) + mean(zc), each an exemplar set [k, z_dim] (k = 3 in the paper) -> [z_dim]."""
    za, zb, zc = (jnp.asarray(z) for z in (za, zb, zc))
    for name, z in (("za", za), ("zb", zb), ("zc", zc)):
        if z.ndim != 2 or z.shape[0] < 1:
            raise ValueError(f"vector_arithmetic: {name} must be an exemplar set [k, z_dim], got {tuple(z.shape)}")
    if not za.shape[1] == zb.shape[1] == zc.shape[1]:
        raise ValueError(f"vector_arithmetic: z_dim differs: za {tuple(za.shape)}, zb {tuple(zb.shape)}, "
                         f"zc {tuple(zc.shape)}")
    return za.mean(axis=0) - zb.mean(axis=0) + zc.mean(axis=0)


def variations(key, z, num: int = 8, scale: float = 0.25):
    """[num + 1, z_dim]: z itself, then num samples z + U[-scale, scale] (independent per element)."""
    z = jnp.asarray(z)
    if z.ndim != 1:
        raise ValueError(f"variations: z must be one latent [z_dim], got {tuple(z.shape)}")
    noise = jax.random.uniform(key, (int(num),) + z.shape, z.dtype if jnp.issubdtype(z.dtype, jnp.floating)
                               else jnp.float32, -scale, scale)
    return jnp.concatenate([z[None], z[None] + noise], axis=0)
