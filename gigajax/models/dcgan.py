"""DCGAN (Radford et al. 2016) generator and discriminator, also the conv G / critic of WGAN and
WGAN-GP (selected with `norm`).

Generator: z -> Dense to 4x4x(ngf * 2^(n-1)) -> BN, ReLU -> (n-1) x [stride-2 transposed conv
4x4 halving the channels, BN, ReLU] -> stride-2 transposed conv 4x4 to img_channels -> tanh, where
n = log2(img_resolution) - 2 (so 32x32 has ngf*4, ngf*2, ngf channels; 64x64 has ngf*8 ... ngf,
the paper's 1024-512-256-128 at ngf=128).
Discriminator: n x [stride-2 conv 4x4, (norm except on the first layer), LeakyReLU(0.2)] doubling
the channels from ndf, then flatten -> Dense -> one logit / critic value per sample.

All conv / dense weights are drawn from N(0, 0.02) and biases are zero (the paper's init);
BatchNorm scales start at 1. BatchNorm uses PyTorch's defaults (running-average momentum 0.1,
i.e. flax momentum 0.9, eps 1e-5); its running statistics live in the 'batch_stats' collection,
updated when the network is applied with train=True and mutable=['batch_stats'].

The stride-2 transposed convolution is written as four 2x2 convolutions, one per output phase
(`conv_transpose_2x`): it is the same function as a 4x4 / stride 2 / padding 1 transposed conv
(PyTorch's ConvTranspose2d(k=4, s=2, p=1), weight [4, 4, in, out] here), without the zero-stuffed
input that makes XLA's lhs-dilated convolution several times slower on CPU. For the same reason
D's stride-2 convolution (`conv_down_2x`) has a custom VJP whose input gradient is that
transposed conv: first-order gradients get faster, and WGAN-GP's gradient penalty (a gradient
of an input gradient) about 5x faster on CPU (a whole WGAN-GP critic step about 2.5x). The
custom VJP means D supports reverse-mode differentiation to any order, but not forward mode
(jax.jvp).

Conditioning (optional, c_dim > 0): the one-hot label is concatenated to z in G, and to the
image as constant feature maps in D.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from gigajax.models.gan import check_images, check_labels, check_latents

dcgan_init = nn.initializers.normal(stddev=0.02)

_NHWC = ("NHWC", "HWIO", "NHWC")
# For output phase p (even / odd rows), the kernel taps that meet input offsets (-1, 0) or (0, +1):
# out[2m]   = x[m-1] w[3] + x[m] w[1]
# out[2m+1] = x[m]   w[2] + x[m+1] w[0]
_PHASE_TAPS = ((3, 1), (2, 0))
_PHASE_PAD = ((1, 0), (0, 1))


def conv_transpose_2x(x, w):
    """Transposed convolution, kernel 4, stride 2, padding 1: x [N, H, W, I], w [4, 4, I, O] ->
    [N, 2H, 2W, O] with out[o] = sum over o = 2i + k - 1 of x[i] w[k] in each spatial axis
    (PyTorch's ConvTranspose2d(I, O, 4, 2, 1) with its weight transposed to [4, 4, I, O])."""
    if w.shape[:2] != (4, 4) or x.shape[-1] != w.shape[2]:
        raise ValueError(f"conv_transpose_2x: expected w [4, 4, {x.shape[-1]}, O] for x {tuple(x.shape)}, "
                         f"got w {tuple(w.shape)}")
    n, h, wd, _ = x.shape
    o = w.shape[-1]
    rows = []
    for py in (0, 1):
        cols = []
        for px in (0, 1):
            k = w[jnp.array(_PHASE_TAPS[py])][:, jnp.array(_PHASE_TAPS[px])]
            cols.append(lax.conv_general_dilated(x, k.astype(x.dtype), (1, 1), (_PHASE_PAD[py], _PHASE_PAD[px]),
                                                 dimension_numbers=_NHWC))
        rows.append(jnp.stack(cols, axis=3))               # [N, H, W, 2 (px), O]
    y = jnp.stack(rows, axis=3)                             # [N, H, W, 2 (py), 2 (px), O]
    return y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * wd, o)


def _conv_down_2x(x, w):
    if x.ndim != 4 or x.shape[1] % 2 or x.shape[2] % 2 or w.shape[:2] != (4, 4) or x.shape[-1] != w.shape[2]:
        raise ValueError(f"conv_down_2x: expected x [N, H, W, I] with even H, W and w [4, 4, I, O]; "
                         f"got x {tuple(x.shape)}, w {tuple(w.shape)}")
    return lax.conv_general_dilated(x, w.astype(x.dtype), (2, 2), ((1, 1), (1, 1)), dimension_numbers=_NHWC)


@jax.custom_vjp
def conv_down_2x(x, w):
    """Convolution, kernel 4, stride 2, padding 1: x [N, H, W, I] (H, W even), w [4, 4, I, O] ->
    [N, H/2, W/2, O] (PyTorch's Conv2d(I, O, 4, 2, 1)). Its input gradient is `conv_transpose_2x`
    with the kernel's in/out axes swapped (see the module doc for why it is custom)."""
    return _conv_down_2x(x, w)


def _conv_down_2x_fwd(x, w):
    return _conv_down_2x(x, w), (x, w)


def _conv_down_2x_bwd(res, g):
    x, w = res
    dx = conv_transpose_2x(g, jnp.swapaxes(w, 2, 3).astype(g.dtype)).astype(x.dtype)
    dw = jax.vjp(lambda v: _conv_down_2x(x, v), w)[1](g)[0]
    return dx, dw


conv_down_2x.defvjp(_conv_down_2x_fwd, _conv_down_2x_bwd)


class _Conv4x4Resample(nn.Module):
    """A learned 4x4 kernel [4, 4, in, features] applied by `resample` (`conv_down_2x` or
    `conv_transpose_2x`), plus an optional bias."""
    features: int
    resample: Callable
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = dcgan_init

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features), jnp.float32)
        y = self.resample(x, w)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return y


# The layers D and G use: halve or double H and W.
ConvDown2x = functools.partial(_Conv4x4Resample, resample=conv_down_2x)
ConvTranspose2x = functools.partial(_Conv4x4Resample, resample=conv_transpose_2x)


def _num_blocks(img_resolution: int, who: str) -> int:
    n = int(round(math.log2(img_resolution))) - 2 if img_resolution > 0 else -1
    if n < 1 or 2 ** (n + 2) != img_resolution:
        raise ValueError(f"{who}: img_resolution must be a power of two >= 8, got {img_resolution}")
    return n


def _batch_norm(train: bool, name: str):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


class Generator(nn.Module):
    """z [N, z_dim] (+ one-hot c [N, c_dim]) -> images [N, R, R, C] in [-1, 1].
    norm: 'batch' (DCGAN) or 'none'."""
    z_dim: int = 100
    c_dim: int = 0
    img_resolution: int = 32
    img_channels: int = 3
    ngf: int = 64
    norm: str = "batch"

    @nn.compact
    def __call__(self, z, c=None, train: bool = False):
        if self.norm not in ("batch", "none"):
            raise ValueError(f"Generator: norm must be 'batch' or 'none', got {self.norm!r}")
        n = _num_blocks(self.img_resolution, "Generator")
        check_latents(z, self.z_dim, "Generator")
        c = check_labels(c, self.c_dim, z.shape[0], "Generator")
        x = z.astype(jnp.float32) if c is None else jnp.concatenate([z.astype(jnp.float32), c], axis=-1)
        bn = self.norm == "batch"
        ch = self.ngf * 2 ** (n - 1)
        x = nn.Dense(4 * 4 * ch, use_bias=not bn, kernel_init=dcgan_init, name="project")(x)
        x = x.reshape(x.shape[0], 4, 4, ch)
        if bn:
            x = _batch_norm(train, "project_bn")(x)
        x = nn.relu(x)
        for i in range(n - 1):
            ch //= 2
            x = ConvTranspose2x(ch, use_bias=not bn, name=f"up{i}")(x)
            if bn:
                x = _batch_norm(train, f"up{i}_bn")(x)
            x = nn.relu(x)
        x = ConvTranspose2x(self.img_channels, name="to_img")(x)
        return jnp.tanh(x)


class Discriminator(nn.Module):
    """images [N, R, R, C] (+ one-hot c [N, c_dim]) -> [N] logits (DCGAN) or critic values (WGAN).
    norm: 'batch' (DCGAN, WGAN), 'layer' (over H, W, C per sample; WGAN-GP) or 'none'."""
    c_dim: int = 0
    img_resolution: int = 32
    img_channels: int = 3
    ndf: int = 64
    norm: str = "batch"
    negative_slope: float = 0.2

    @nn.compact
    def __call__(self, x, c=None, train: bool = False):
        if self.norm not in ("batch", "layer", "none"):
            raise ValueError(f"Discriminator: norm must be 'batch', 'layer' or 'none', got {self.norm!r}")
        n = _num_blocks(self.img_resolution, "Discriminator")
        check_images(x, self.img_resolution, self.img_channels, "Discriminator")
        c = check_labels(c, self.c_dim, x.shape[0], "Discriminator")
        x = x.astype(jnp.float32)
        if c is not None:
            maps = jnp.broadcast_to(c[:, None, None, :], x.shape[:3] + (self.c_dim,))
            x = jnp.concatenate([x, maps], axis=-1)
        ch = self.ndf
        for i in range(n):
            normed = i > 0 and self.norm != "none"
            x = ConvDown2x(ch, use_bias=not normed, name=f"conv{i}")(x)
            if normed and self.norm == "batch":
                x = _batch_norm(train, f"conv{i}_bn")(x)
            elif normed:
                x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(-3, -2, -1), feature_axes=-1, name=f"conv{i}_ln")(x)
            x = nn.leaky_relu(x, self.negative_slope)
            ch *= 2
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(1, kernel_init=dcgan_init, name="out")(x)[:, 0]

