"""PyTorch's default parameter initialisation, for ported layers whose official weights stay at
it (frozen random projections and readouts) or start from it."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def torch_default_uniform(fan_in: int):
    """PyTorch's default init of Conv/Linear weights and biases: kaiming_uniform_(a=sqrt(5)) on
    the weight is U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + 5)), i.e.
    b = 1 / sqrt(fan_in); the bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too. `fan_in` must be
    PyTorch's: weight.size(1) * kh * kw (in * k * k for Conv2d, but OUT * k * k for
    ConvTranspose2d, whose weight is [in, out, k, k])."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)
    return init
