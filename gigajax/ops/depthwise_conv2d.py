"""Depthwise 2-D convolution (one kh x kw filter per channel), NHWC, as a sum of kh*kw shifted
slices scaled per channel.

XLA:CPU runs `lax.conv_general_dilated` with feature_group_count == channels on a generic path
at 1-2 GFLOP/s (benchmarks/RESULTS.md), which made EfficientNet-Lite0, the projected
discriminator's backbone, the slowest part of a StyleGAN-XL step on CPU. Written as k*k static
slices multiplied by a [C] vector and summed, the whole convolution is one XLA fusion: memory
bound, and 5-20x faster there. Its gradient has the same form (custom VJP):
  d x: the adjoint, a stride-1 shift-and-add with the flipped filter over the cotangent
       (zero-stuffed for stride 2), placed back into the padded input and cropped;
  d w: for each tap, sum over N, H, W of cotangent * the slice that tap read.
On GPU/TPU the convolution primitive is the fast form, so `impl='auto'` uses it there.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax


def _taps(xp, kh, kw, stride, out_h, out_w):
    """Yield ((a, b), slice) for each filter tap: xp[:, a + s*i, b + s*j, :] for i < out_h, j < out_w."""
    n, _, _, c = xp.shape
    for a in range(kh):
        for b in range(kw):
            yield (a, b), lax.slice(xp, (0, a, b, 0), (n, a + (out_h - 1) * stride + 1, b + (out_w - 1) * stride + 1, c),
                                    (1, stride, stride, 1))


def _forward(x, w, stride, padding):
    (pt, pb), (pl, pr) = padding
    kh, kw = w.shape[0], w.shape[1]
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    out_h = (xp.shape[1] - kh) // stride + 1
    out_w = (xp.shape[2] - kw) // stride + 1
    y = None
    for (a, b), t in _taps(xp, kh, kw, stride, out_h, out_w):
        term = t * w[a, b]
        y = term if y is None else y + term
    return y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise(x, w, stride, padding):
    return _forward(x, w, stride, padding)


def _fwd(x, w, stride, padding):
    return _forward(x, w, stride, padding), (x, w)


def _bwd(stride, padding, res, g):
    x, w = res
    (pt, pb), (pl, pr) = padding
    kh, kw = w.shape[0], w.shape[1]
    n, h, wd, c = x.shape
    hp, wp = h + pt + pb, wd + pl + pr
    out_h, out_w = g.shape[1], g.shape[2]
    # d w: each tap's slice of the padded input against the cotangent.
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    gw = jnp.stack([jnp.sum(t * g, axis=(0, 1, 2)) for _, t in _taps(xp, kh, kw, stride, out_h, out_w)])
    gw = gw.reshape(kh, kw, c).astype(w.dtype)
    # d x: the cotangent spread back onto the padded grid (zero-stuffed for stride > 1), then a
    # full correlation with the flipped filter; rows/columns no output read get zero.
    if stride > 1:
        gd = jnp.zeros((n, (out_h - 1) * stride + 1, (out_w - 1) * stride + 1, c), g.dtype)
        gd = gd.at[:, ::stride, ::stride, :].set(g)
    else:
        gd = g
    used_h, used_w = gd.shape[1] + kh - 1, gd.shape[2] + kw - 1
    gpad = jnp.pad(gd, ((0, 0), (kh - 1, kh - 1 + hp - used_h), (kw - 1, kw - 1 + wp - used_w), (0, 0)))
    gxp = _forward(gpad, w[::-1, ::-1], 1, ((0, 0), (0, 0)))
    gx = gxp[:, pt:pt + h, pl:pl + wd, :].astype(x.dtype)
    return gx, gw


_depthwise.defvjp(_fwd, _bwd)


def depthwise_conv2d(x, w, stride: int = 1, padding=((0, 0), (0, 0)), impl: str = "auto"):
    """x [N, H, W, C], w [kh, kw, C] (or HWIO [kh, kw, 1, C]), zero padding ((top, bottom), (left, right))
    -> [N, (H + top + bottom - kh) // stride + 1, (W + left + right - kw) // stride + 1, C]:
    y[n, i, j, c] = sum_{a, b} w[a, b, c] * x_pad[n, s*i + a, s*j + b, c] (a correlation, as
    `lax.conv_general_dilated` with feature_group_count=C computes).

    impl: 'shift' (sum of shifted slices, custom VJP), 'lax' (the convolution primitive), or
    'auto' = 'shift' on CPU, 'lax' elsewhere."""
    if w.ndim == 4:
        if w.shape[2] != 1:
            raise ValueError(f"depthwise_conv2d: HWIO weight must have I == 1, got shape {tuple(w.shape)}")
        w = w[:, :, 0, :]
    if x.ndim != 4 or w.ndim != 3 or w.shape[2] != x.shape[3]:
        raise ValueError(f"depthwise_conv2d: expected x [N, H, W, C] and w [kh, kw, C]; got {tuple(x.shape)} and "
                         f"{tuple(w.shape)}")
    padding = tuple((int(a), int(b)) for a, b in padding)
    if impl == "auto":
        impl = "shift" if jax.default_backend() == "cpu" else "lax"
    if impl == "lax":
        return lax.conv_general_dilated(x, w[:, :, None, :], (stride, stride), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[3])
    if impl != "shift":
        raise ValueError(f"depthwise_conv2d: impl={impl!r}; expected 'auto', 'shift' or 'lax'")
    return _depthwise(x, w.astype(x.dtype), int(stride), padding)
