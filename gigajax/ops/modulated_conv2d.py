"""Style-modulated convolutions: StyleGAN2's `modulated_conv2d` and StyleGAN3's variant (NHWC/HWIO).

Modulating the weights per sample (w'_{n,o,i} = w_{o,i} * s_{n,i}) and demodulating them
(w''_{n,o} = w'_{n,o} / ||w'_{n,o}||) is the same linear map as scaling the activations by s
before a shared-weight convolution and by the demodulation coefficient after it. The second form
runs one dense convolution for the whole batch; the first needs a grouped convolution with
batch-many groups, which XLA:CPU runs about 8x slower (benchmarks/RESULTS.md). StyleGAN2's
`fused_modconv` flag picks the form, as in the official code; StyleGAN3's op always uses the
activation-scaling form, which computes the official result up to float rounding.

The demodulation coefficient only needs sum_{kh,kw,i} (w s)^2 = sum_i s_i^2 sum_{kh,kw} w^2, so the
modulated weight tensor [N, kh, kw, I, O] is never built unless the fused form asks for it.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from gigajax.ops import _args
from gigajax.ops.conv2d import conv2d
from gigajax.ops.conv2d_resample import conv2d_resample


def _check(x, weight, styles, noise=None):
    _args.check_rank("x", x, (4,), "[N, H, W, C_in]")
    _args.check_rank("weight", weight, (4,), "[kh, kw, C_in, C_out]")
    n, _, _, cin = x.shape
    if weight.shape[2] != cin:
        _args.fail("weight.shape", tuple(weight.shape), f"[kh, kw, {cin}, C_out] for x.shape {tuple(x.shape)}")
    if tuple(jnp.shape(styles)) != (n, cin):
        _args.fail("styles.shape", tuple(jnp.shape(styles)), f"[{n}, {cin}] (batch, input channels)")


def _demod_coefs(weight, styles):
    """1 / ||w * s|| over (kh, kw, C_in) for each sample and output channel: [N, C_out]."""
    dtype = jnp.result_type(weight.dtype, styles.dtype, jnp.float32)  # at least float32
    wsq = jnp.sum(jnp.square(weight.astype(dtype)), axis=(0, 1))  # [I, O]
    return lax.rsqrt(jnp.square(styles.astype(dtype)) @ wsq + 1e-8)


def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True):
    """StyleGAN2 modulated convolution.

    Args:
      x: `[N, H, W, C_in]`.
      weight: `[kh, kw, C_in, C_out]`.
      styles: `[N, C_in]` modulation coefficients.
      noise: optional, broadcastable to the output `[N, H_out, W_out, C_out]` (usually `[N, H_out, W_out, 1]`).
      up, down, padding, resample_filter, flip_weight: as in `conv2d_resample`.
      demodulate: normalise each output channel's modulated weights to unit norm.
      fused_modconv: True = per-sample weights through one grouped convolution (official
        semantics of the flag); False = scale activations around a shared convolution.

    Returns:
      `[N, H_out, W_out, C_out]`.
    """
    _check(x, weight, styles)
    n, _, _, cin = x.shape
    kh, kw, _, cout = weight.shape
    if demodulate and x.dtype in (jnp.float16, jnp.bfloat16):
        # Pre-normalise so that low-precision activations cannot overflow; demodulation undoes it.
        weight = weight * (1 / jnp.sqrt(cin * kh * kw) / jnp.max(jnp.abs(weight), axis=(0, 1, 2), keepdims=True))
        styles = styles / jnp.max(jnp.abs(styles), axis=1, keepdims=True)
    dcoefs = _demod_coefs(weight, styles) if demodulate else None
    resample = dict(f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)

    if not fused_modconv:
        x = x * styles.astype(x.dtype)[:, None, None, :]
        x = conv2d_resample(x, weight.astype(x.dtype), **resample)
        if demodulate:
            x = x * dcoefs.astype(x.dtype)[:, None, None, :]
        if noise is not None:
            x = x + noise.astype(x.dtype)
        return x

    w = weight[None] * styles[:, None, None, :, None]  # [N, kh, kw, I, O]
    if demodulate:
        w = w * dcoefs[:, None, None, None, :]
    w = jnp.transpose(w, (1, 2, 3, 0, 4)).reshape(kh, kw, cin, n * cout)
    xg = jnp.transpose(x, (1, 2, 0, 3)).reshape(1, x.shape[1], x.shape[2], n * cin)
    y = conv2d_resample(xg, w.astype(x.dtype), groups=n, **resample)
    y = jnp.transpose(y.reshape(y.shape[1], y.shape[2], n, cout), (2, 0, 1, 3))
    if noise is not None:
        y = y + noise.astype(y.dtype)
    return y


def modulated_conv2d_sg3(x, w, s, demodulate=True, padding=0, input_gain=None):
    """StyleGAN3 modulated convolution (`networks_stylegan3.modulated_conv2d`).

    Differs from StyleGAN2's: with demodulation, `w` is first normalised to unit RMS per output
    channel and `s` to unit RMS over the whole batch; an optional `input_gain` scales the input
    channels after demodulation; there is no resampling.

    Args:
      x: `[N, H, W, C_in]`.
      w: `[kh, kw, C_in, C_out]`.
      s: `[N, C_in]` styles.
      demodulate: as above.
      padding: int or `[pad_h, pad_w]`, symmetric zero padding.
      input_gain: None, `[]`, `[C_in]` or `[N, C_in]`.

    Returns:
      `[N, H + 2*pad_h - kh + 1, W + 2*pad_w - kw + 1, C_out]`.
    """
    _check(x, w, s)
    n, _, _, cin = x.shape
    if isinstance(padding, (list, tuple)):
        if len(padding) != 2:
            _args.fail("padding", padding, "an int or [pad_h, pad_w]")
        ph, pw = (_args.as_int("padding", p) for p in padding)
    else:
        ph = pw = _args.as_int("padding", padding)
    dtype = jnp.result_type(w.dtype, s.dtype, jnp.float32)  # float32 as in the official code, float64 if given
    w = w.astype(dtype)
    s = s.astype(dtype)
    if demodulate:
        w = w * lax.rsqrt(jnp.mean(jnp.square(w), axis=(0, 1, 2), keepdims=True))
        s = s * lax.rsqrt(jnp.mean(jnp.square(s)))
    scale = s
    dcoefs = _demod_coefs(w, s) if demodulate else None
    if input_gain is not None:
        g = jnp.asarray(input_gain, dtype)
        if g.ndim > 2 or (g.ndim >= 1 and g.shape[-1] != cin) or (g.ndim == 2 and g.shape[0] != n):
            _args.fail("input_gain.shape", tuple(g.shape), f"[], [{cin}] or [{n}, {cin}]")
        scale = scale * jnp.broadcast_to(g, (n, cin))
    x = x * scale.astype(x.dtype)[:, None, None, :]
    # StyleGAN3 pads by k-1 (a "full" convolution); conv2d keeps it same-shaped inside, which is
    # what XLA:CPU differentiates fast (gigajax.ops.conv2d).
    y = conv2d(x, w.astype(x.dtype), ((ph, ph), (pw, pw)))
    if demodulate:
        y = y * dcoefs.astype(y.dtype)[:, None, None, :]
    return y
