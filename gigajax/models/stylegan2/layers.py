"""Building blocks shared by StyleGAN2's generator and discriminator: equalized-learning-rate
fully connected and convolution layers, and the second-moment normalisation of latents.

Equalized learning rate: parameters are stored with unit-variance initialisation (divided by
`lr_multiplier` for the weights) and scaled by a constant gain at run time. The optimizer then
sees every weight on the same scale, which is what makes per-layer learning rates
(`lr_multiplier`) behave as advertised. Stored values therefore equal the official state_dict
values one for one (up to a layout transpose), so converted checkpoints need no rescaling.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gigajax import ops
from gigajax.ops._args import fail

DEFAULT_FILTER = (1, 3, 3, 1)


def filter_taps(resample_filter) -> np.ndarray:
    """Prepared (normalised, 2-D) FIR filter of a layer: a trace-time numpy constant."""
    return ops.setup_filter(np.asarray(resample_filter, np.float32))


def normalize_2nd_moment(x, axis=1, eps=1e-8):
    """x / sqrt(mean(x^2) + eps) along `axis` (so that every latent lies near the unit sphere
    scaled by sqrt(dim), whatever the prior's scale)."""
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps)


def torch_lerp(start, end, weight):
    """`torch.lerp` bit for bit: the two-sided formula keeps weight=0 -> start and weight=1 -> end exact."""
    weight = jnp.asarray(weight, jnp.result_type(start, end))
    diff = end - start
    return jnp.where(jnp.abs(weight) < 0.5, start + weight * diff, end - diff * (1 - weight))


def act_gain(activation: str) -> float:
    if activation not in ops.ACTIVATIONS:
        fail("activation", activation, f"one of {sorted(ops.ACTIVATIONS)}")
    return ops.ACTIVATIONS[activation].def_gain


def _normal(scale=1.0):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.normal(key, shape, dtype) * scale
    return init


def _frozen(x, trainable):
    # Official frozen layers hold their weights as buffers. Keeping them in 'params' behind a
    # stop_gradient gives zero gradients (so Adam never moves them) while checkpoints keep one layout.
    return x if trainable else lax.stop_gradient(x)


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (weight * lr_multiplier / sqrt(in_features)) + bias * lr_multiplier).

    Params: `weight` `[in_features, out_features]` (official `[out, in]`, transposed), init
    N(0, 1) * weight_init / lr_multiplier; `bias` `[out_features]`, init `bias_init` (a number,
    or a sequence of out_features numbers as StyleGAN3's input affine uses).

    Call: x `[..., in_features]` -> `[..., out_features]`.
    """
    in_features: int
    out_features: int
    bias: bool = True
    activation: str = "linear"
    lr_multiplier: float = 1
    bias_init: Any = 0
    weight_init: float = 1

    @nn.compact
    def __call__(self, x):
        if x.shape[-1] != self.in_features:
            fail("x.shape", tuple(x.shape), f"[..., in_features={self.in_features}]")
        act_gain(self.activation)  # validates the name before any parameter is created
        gain = self.lr_multiplier / math.sqrt(self.in_features)
        weight = self.param("weight", _normal(self.weight_init / self.lr_multiplier),
                            (self.in_features, self.out_features))
        w = weight.astype(x.dtype) * gain
        x = x @ w
        b = None
        if self.bias:
            bias_init = np.broadcast_to(np.asarray(self.bias_init, np.float32), (self.out_features,))
            b = self.param("bias", lambda key, shape: jnp.asarray(bias_init), (self.out_features,))
            b = b.astype(x.dtype)
            if self.lr_multiplier != 1:
                b = b * self.lr_multiplier
        if self.activation == "linear":
            return x if b is None else x + b
        return ops.bias_act(x, b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Equalized-lr convolution with optional FIR up/downsampling, bias, activation and clamp.

    Params: `weight` `[k, k, in_channels, out_channels]` (HWIO), init N(0, 1); `bias`
    `[out_channels]`, init 0. `trainable=False` (Freeze-D) stops their gradients.

    Call: `(x [N, H, W, in_channels], gain=1)` -> `[N, H * up / down, W * up / down, out_channels]`.
    `gain` scales the activation's gain and the clamp (resnet branches use sqrt(0.5)).
    """
    in_channels: int
    out_channels: int
    kernel_size: int
    bias: bool = True
    activation: str = "linear"
    up: int = 1
    down: int = 1
    resample_filter: Sequence[float] = DEFAULT_FILTER
    conv_clamp: Optional[float] = None
    channels_last: bool = False  # layout hint of the official code; NHWC is the only layout here
    trainable: bool = True

    @nn.compact
    def __call__(self, x, gain=1):
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            fail("x.shape", tuple(x.shape), f"[N, H, W, in_channels={self.in_channels}]")
        k = self.kernel_size
        weight = self.param("weight", _normal(), (k, k, self.in_channels, self.out_channels))
        w = _frozen(weight, self.trainable) * (1 / math.sqrt(self.in_channels * k * k))
        b = None
        if self.bias:
            b = _frozen(self.param("bias", nn.initializers.zeros, (self.out_channels,)), self.trainable)
            b = b.astype(x.dtype)
        # The official layer correlates when up == 1 but convolves (flipped kernel) when upsampling, to
        # save a flip in its transposed-conv path; trained kernels depend on that, so it is kept.
        x = ops.conv2d_resample(x, w.astype(x.dtype), filter_taps(self.resample_filter), up=self.up,
                                down=self.down, padding=k // 2, flip_weight=(self.up == 1))
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return ops.bias_act(x, b, act=self.activation, gain=act_gain(self.activation) * gain, clamp=clamp)


def resolve_dtype(use_fp16: bool, force_fp32: bool, compute_dtype: Any):
    """Official blocks run in float16 when `use_fp16` and not `force_fp32`; here the reduced
    precision is `compute_dtype` (None = float32 everywhere, which is also what the official
    code does off-GPU)."""
    if use_fp16 and not force_fp32 and compute_dtype is not None:
        return jnp.dtype(compute_dtype)
    return jnp.dtype(jnp.float32)
