"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):
the augmentation that Projected GAN and StyleGAN-XL apply to every image their discriminator
sees, reals and fakes alike, before the feature network.

Images are NHWC in [-1, 1]. Every draw is per sample, and every op is differentiable w.r.t. the
images (the generator is trained through it). With the policy 'color,translation,cutout':

  brightness   x + (u - 0.5)                                  u ~ U[0, 1)
  saturation   (x - mean_C x) * 2u + mean_C x                 (a no-op on one channel)
  contrast     (x - mean_HWC x) * (u + 0.5) + mean_HWC x
  translation  an integer shift (dy, dx), each uniform in [-s, s] with s = int(size * ratio + 0.5),
               ratio 1/8; pixels shifted in from outside the image are 0
  cutout       a square of side k = int(size * ratio + 0.5) set to 0, its first row/column
               o - k // 2 with o uniform in [0, size + 1 - k % 2); the square is clipped to the image.
               ratio 1/2 in the DiffAugment paper, 0.2 in StyleGAN-XL's copy (`SGXL_CUTOUT_RATIO`)

`sample_params` draws, `apply_with_params` applies, so a test (or a user) can fix the draws.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp

POLICIES = ("color", "translation", "cutout")
DEFAULT_POLICY = "color,translation,cutout"
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
SGXL_CUTOUT_RATIO = 0.2


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """'color,translation,cutout' (or a sequence of names) -> the op names, validated."""
    names = tuple(p.strip() for p in policy.split(",")) if isinstance(policy, str) else tuple(policy)
    names = tuple(n for n in names if n)
    bad = [n for n in names if n not in POLICIES]
    if bad:
        raise ValueError(f"DiffAugment policy {policy!r}: unknown op(s) {bad}; expected a comma list of {list(POLICIES)}")
    return names


def _side(size, ratio):
    return int(size * ratio + 0.5)


def sample_params(key: jax.Array, shape: Sequence[int], policy: str | Sequence[str] = DEFAULT_POLICY, *,
                  translation_ratio: float = TRANSLATION_RATIO, cutout_ratio: float = CUTOUT_RATIO) -> dict:
    """Random draws for images of `shape` [N, H, W, C]: a dict of per-sample arrays
    (brightness, saturation, contrast [N] in [0, 1); translation [N, 2] int32 (dy, dx);
    cutout [N, 2] int32 (oy, ox), the uncentred offsets o of the module doc)."""
    names = parse_policy(policy)
    n, h, w = int(shape[0]), int(shape[1]), int(shape[2])
    sy, sx = _side(h, translation_ratio), _side(w, translation_ratio)
    ky, kx = _side(h, cutout_ratio), _side(w, cutout_ratio)
    keys = jax.random.split(key, 7)
    out = {}
    if "color" in names:
        for i, name in enumerate(("brightness", "saturation", "contrast")):
            out[name] = jax.random.uniform(keys[i], (n,), jnp.float32)
    if "translation" in names:
        out["translation"] = jnp.stack([jax.random.randint(keys[3], (n,), -sy, sy + 1),
                                        jax.random.randint(keys[4], (n,), -sx, sx + 1)], axis=1)
    if "cutout" in names:
        out["cutout"] = jnp.stack([jax.random.randint(keys[5], (n,), 0, h + 1 - ky % 2),
                                   jax.random.randint(keys[6], (n,), 0, w + 1 - kx % 2)], axis=1)
    return out


def _shift_axis(x, shift, axis):
    """out[..., i, ...] = x[..., i + shift, ...] along `axis` (1 = rows, 2 = columns), 0 outside."""
    size = x.shape[axis]
    src = jnp.arange(size)[None, :] + shift[:, None]                      # [N, size]
    valid = (src >= 0) & (src < size)
    shape = [x.shape[0], 1, 1, 1]
    shape[axis] = size
    idx = jnp.clip(src, 0, size - 1).reshape(shape)
    return jnp.take_along_axis(x, jnp.broadcast_to(idx, x.shape[:axis] + (size,) + x.shape[axis + 1:]), axis=axis) \
        * valid.reshape(shape).astype(x.dtype)


def _in_cut(offset, k, size):
    """[N, size] bool: o - k//2 <= i < o - k//2 + k (the square's rows, or its columns)."""
    lo = (offset - k // 2)[:, None]
    i = jnp.arange(size)[None, :]
    return (i >= lo) & (i < lo + k)


def apply_with_params(images: jax.Array, params: Mapping[str, jax.Array],
                      policy: str | Sequence[str] = DEFAULT_POLICY, *, cutout_ratio: float = CUTOUT_RATIO) -> jax.Array:
    """Apply the ops of `policy` in order (colour: brightness, saturation, contrast) with the
    draws of `sample_params` (made with the same cutout_ratio). images [N, H, W, C] -> same shape."""
    names = parse_policy(policy)
    if images.ndim != 4:
        raise ValueError(f"DiffAugment: images must be [N, H, W, C], got shape {tuple(images.shape)}")
    x = images
    n, h, w, _ = x.shape
    ky, kx = _side(h, cutout_ratio), _side(w, cutout_ratio)
    per_sample = lambda v: jnp.asarray(v, x.dtype).reshape(n, 1, 1, 1)
    for name in names:
        if name == "color":
            x = x + (per_sample(params["brightness"]) - 0.5)
            mean = jnp.mean(x, axis=3, keepdims=True)
            x = (x - mean) * (per_sample(params["saturation"]) * 2) + mean
            mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
            x = (x - mean) * (per_sample(params["contrast"]) + 0.5) + mean
        elif name == "translation":
            t = jnp.asarray(params["translation"], jnp.int32)
            x = _shift_axis(_shift_axis(x, t[:, 0], 1), t[:, 1], 2)
        elif name == "cutout":
            o = jnp.asarray(params["cutout"], jnp.int32)
            cut = _in_cut(o[:, 0], ky, h)[:, :, None] & _in_cut(o[:, 1], kx, w)[:, None, :]
            x = x * (~cut)[..., None].astype(x.dtype)
    return x


def diff_augment(images: jax.Array, key: jax.Array, policy: str | Sequence[str] = DEFAULT_POLICY, *,
                 translation_ratio: float = TRANSLATION_RATIO, cutout_ratio: float = CUTOUT_RATIO) -> jax.Array:
    """DiffAugment `images` [N, H, W, C] with fresh per-sample draws from `key`."""
    params = sample_params(key, images.shape, policy, translation_ratio=translation_ratio, cutout_ratio=cutout_ratio)
    return apply_with_params(images, params, policy, cutout_ratio=cutout_ratio)
