"""One StyleGAN3 synthesis layer: modulated conv -> filtered leaky ReLU (or the linear ToRGB).

Unlike StyleGAN2 there is no per-pixel noise and no explicit up/downsampling conv: every change
of sampling rate happens inside `filtered_lrelu`, with low-pass filters designed per layer
(`gigajax.models.stylegan3.design`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

from gigajax import ops
from gigajax.models.stylegan2.layers import FullyConnectedLayer, resolve_dtype, torch_lerp
from gigajax.models.stylegan3.design import LayerDesign
from gigajax.ops._args import fail

NOISE_MODES = ("random", "const", "none")


class SynthesisLayer(nn.Module):
    """x `[N, in_H, in_W, in_channels]`, w `[N, w_dim]` -> `[N, out_H, out_W, out_channels]`.

    `design` holds the static shape and filter constants (see `layer_design`). Params: `affine`
    (w -> styles, bias init 1), `weight` `[k, k, in, out]` (HWIO), `bias` `[out]`. Buffer:
    `magnitude_ema` `[]`, the running mean of x^2; its rsqrt normalises the input so that the
    layer's scale stays stable without per-pixel normalisation. It is updated (before use, as in
    the official code) only with `update_emas=True` and `mutable=['buffers']`.
    """
    w_dim: int
    design: LayerDesign
    conv_clamp: Any = 256
    magnitude_ema_beta: float = 0.999
    compute_dtype: Any = None
    filtered_lrelu_impl: str = "auto"

    @nn.compact
    def __call__(self, x, w, noise_mode="random", force_fp32=False, update_emas=False):
        d = self.design
        if noise_mode not in NOISE_MODES:
            fail("noise_mode", noise_mode, f"one of {NOISE_MODES}")  # StyleGAN3 has no noise; checked for parity
        want = (d.in_size[1], d.in_size[0], d.in_channels)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            fail("x.shape", tuple(x.shape), f"[N, {want[0]}, {want[1]}, in_channels={want[2]}]")
        if w.ndim != 2 or w.shape != (x.shape[0], self.w_dim):
            fail("w.shape", tuple(w.shape), f"[N={x.shape[0]}, w_dim={self.w_dim}]")

        ema = self.variable("buffers", "magnitude_ema", lambda: jnp.ones((), jnp.float32))
        if update_emas and not self.is_initializing():
            cur = jnp.mean(jnp.square(lax.stop_gradient(x).astype(jnp.float32)))
            ema.value = torch_lerp(cur, ema.value, self.magnitude_ema_beta)
        input_gain = lax.rsqrt(ema.value)

        k = d.conv_kernel
        styles = FullyConnectedLayer(self.w_dim, d.in_channels, bias_init=1, name="affine")(w)
        if d.is_torgb:
            styles = styles * (1 / np.sqrt(d.in_channels * k * k))
        weight = self.param("weight", nn.initializers.normal(1.0), (k, k, d.in_channels, d.out_channels))
        bias = self.param("bias", nn.initializers.zeros, (d.out_channels,))

        dtype = resolve_dtype(d.use_fp16, force_fp32, self.compute_dtype)
        x = ops.modulated_conv2d_sg3(x.astype(dtype), weight, styles, demodulate=not d.is_torgb,
                                     padding=k - 1, input_gain=input_gain)
        x = ops.filtered_lrelu(x, d.up_filter, d.down_filter, b=bias.astype(x.dtype), up=d.up_factor,
                               down=d.down_factor, padding=d.padding, gain=1 if d.is_torgb else np.sqrt(2),
                               slope=1 if d.is_torgb else 0.2, clamp=self.conv_clamp,
                               **_impl_kwargs(self.filtered_lrelu_impl))
        return x.astype(dtype)


def _impl_kwargs(impl):
    # Only pass `impl` when it differs from the default, so the layer works with any filtered_lrelu.
    return {} if impl == "auto" else {"impl": impl}
