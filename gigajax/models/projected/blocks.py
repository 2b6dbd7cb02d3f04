"""Layers of the projected discriminator (Sauer et al. 2021, "Projected GANs Converge Faster";
StyleGAN-XL's `pg_modules/blocks.py`): spectrally normalised convolutions, batch norm on the
statistics of the current call, and the strided down block. NHWC activations, HWIO kernels.

Initialisation follows PyTorch's defaults (the official layers keep them): a conv weight and
bias are U(-b, b) with b = 1 / sqrt(fan_in), fan_in = in_channels * k * k.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from gigajax.models.torch_init import torch_default_uniform


def _l2_normalize(x, eps=1e-12):
    return x / jnp.maximum(jnp.linalg.norm(x), eps)


class SNConv2d(nn.Module):
    """Conv2d whose weight is divided by its largest singular value, estimated by one power
    iteration per call (torch.nn.utils.spectral_norm in training mode, n_power_iterations=1).

    The kernel [k, k, in, out] is viewed as the matrix W [out, k*k*in] (the official [out, in*k*k]
    up to a column permutation, which changes neither sigma nor u). Each call:
        v = normalize(W^T u),  u <- normalize(W v),  sigma = u . W v   (u, v without gradient)
    and convolves with kernel / sigma. `u` [out] lives in the 'spectral' collection, initialised
    to a normalised N(0, I) draw, and is updated on every call made with mutable=['spectral'];
    the official discriminator is always in training mode, so it updates on every forward.

    Call: x [N, H, W, in] -> [N, H', W', out] with H' = (H + 2 * padding - k) // stride + 1.
    """
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        fan_in = self.in_channels * k * k
        kernel = self.param("kernel", torch_default_uniform(fan_in), (k, k, self.in_channels, self.out_channels))
        u_var = self.variable("spectral", "u",
                              lambda: _l2_normalize(jax.random.normal(self.make_rng("params"), (self.out_channels,))))
        w = kernel.reshape(-1, self.out_channels).T                       # [out, k*k*in]
        w_ng = lax.stop_gradient(w)
        v = _l2_normalize(w_ng.T @ u_var.value)
        u = _l2_normalize(w_ng @ v)
        if not self.is_initializing() and self.is_mutable_collection("spectral"):
            u_var.value = u
        sigma = jnp.dot(u, w @ v)
        p = self.padding
        y = lax.conv_general_dilated(x, (kernel / sigma).astype(x.dtype), (self.stride, self.stride), ((p, p), (p, p)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", torch_default_uniform(fan_in), (self.out_channels,)).astype(y.dtype)
        return y


class BatchStatNorm(nn.Module):
    """BatchNorm2d as the official discriminator uses it, always in training mode: normalise with
    the mean and (biased) variance over N, H, W of this call's batch, eps 1e-5, then a learned
    per-channel scale (init 1) and bias (init 0). The running averages the official layer also
    keeps are never read during training, so they are not kept. x [N, H, W, C] -> same."""
    features: int
    eps: float = 1e-5

    @nn.compact
    def __call__(self, x):
        mean = jnp.mean(x, axis=(0, 1, 2))
        var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
        y = (x - mean) * lax.rsqrt(var + self.eps)
        return y * self.param("scale", nn.initializers.ones, (self.features,)) \
            + self.param("bias", nn.initializers.zeros, (self.features,))


class DownBlock(nn.Module):
    """SN-Conv 4x4 stride 2 padding 1 (with bias) -> BatchStatNorm -> LeakyReLU(0.2):
    x [N, H, W, in] -> [N, H/2, W/2, out]."""
    in_channels: int
    out_channels: int

    @nn.compact
    def __call__(self, x):
        x = SNConv2d(self.in_channels, self.out_channels, 4, stride=2, padding=1, name="conv")(x)
        x = BatchStatNorm(self.out_channels, name="norm")(x)
        return nn.leaky_relu(x, 0.2)
