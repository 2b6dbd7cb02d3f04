"""Filtered leaky ReLU (StyleGAN3): upsample -> bias -> leaky ReLU with gain -> clamp -> downsample.

The nonlinearity runs at the upsampled rate so that the harmonics it creates stay below the
Nyquist limit of the output after the low-pass downsampling filter (alias-free GAN, sec. 3.2).
This is the XLA path: two polyphase `upfirdn2d` passes with the activation fused between them.
`impl` (or the GIGAJAX_FILTERED_LRELU environment variable) switches to the fused Pallas kernel,
`gigajax.ops.filtered_lrelu_pallas`.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from gigajax.ops import _args
from gigajax.ops.bias_act import bias_act
from gigajax.ops.upfirdn2d import upfirdn2d


IMPLS = ("auto", "xla", "pallas")
IMPL_ENV = "GIGAJAX_FILTERED_LRELU"
# Backends where 'auto' picks the Pallas kernels. Only the Triton (GPU) lowering is checked; on TPU
# the kernels do not lower yet (Mosaic wants 128-lane channel blocks, among others), so 'auto'
# stays on XLA there until they do; impl='pallas' still tries.
PALLAS_BACKENDS = ("gpu",)


def resolve_impl(impl="auto", fu=None, fd=None):
    """'xla' or 'pallas' for a call with this `impl` argument and these filters.

    An explicit 'xla'/'pallas' wins. 'auto' defers to the GIGAJAX_FILTERED_LRELU environment variable
    (xla | pallas | auto, read on every call so that a config can force one process-wide), and
    otherwise picks Pallas on the backends in `PALLAS_BACKENDS` (GPU) and XLA elsewhere (CPU, TPU).
    'auto' also stays on XLA when a filter is traced: the Pallas kernels bake their filters into the
    program at trace time.
    """
    if impl not in IMPLS:
        _args.fail("impl", impl, f"one of {list(IMPLS)}")
    if impl == "auto":
        env = os.environ.get(IMPL_ENV, "")
        impl = env.strip().lower() or "auto"
        if impl not in IMPLS:
            _args.fail(IMPL_ENV, env, f"one of {list(IMPLS)} (environment variable)")
    if impl == "auto":
        traced = any(isinstance(f, jax.core.Tracer) for f in (fu, fd))
        impl = "pallas" if jax.default_backend() in PALLAS_BACKENDS and not traced else "xla"
    return impl


def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=np.sqrt(2), slope=0.2,
                   clamp=None, flip_filter=False, impl="auto"):
    """Filtered leaky ReLU for a batch of NHWC images (official argument semantics).

    1. add the per-channel bias `b`;
    2. upsample by `up` (zero insertion), pad by `padding`, convolve with `fu` (gain up**2);
    3. leaky ReLU with `slope`, multiply by `gain`, clamp to [-clamp, clamp];
    4. convolve with `fd` and keep every `down`-th pixel.

    Args:
      x: `[N, H, W, C]`.
      fu, fd: up/down FIR filters, `[taps]`, `[fh, fw]` or None (identity).
      b: optional bias `[C]`.
      up, down: integer factors >= 1.
      padding: int, `[x, y]` or `[x0, x1, y0, y1]`, with respect to the upsampled image.
      gain, slope, clamp: activation parameters (clamp None disables).
      flip_filter: False = convolution, True = correlation.
      impl: 'auto' | 'xla' | 'pallas' (see `resolve_impl`); 'pallas' runs
        `gigajax.ops.filtered_lrelu_pallas.filtered_lrelu_pallas` (same semantics, fused kernel).

    Returns:
      `[N, (H*up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + down - 1) // down, ..., C]`.
    """
    if resolve_impl(impl, fu, fd) == "pallas":
        from gigajax.ops.filtered_lrelu_pallas import filtered_lrelu_pallas  # keeps pallas off the import path
        return filtered_lrelu_pallas(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain, slope=slope,
                                     clamp=clamp, flip_filter=flip_filter)
    _args.check_rank("x", x, (4,), "[N, H, W, C]")
    up = _args.as_int("up", up, 1)
    down = _args.as_int("down", down, 1)
    if not gain > 0:
        _args.fail("gain", gain, "a value > 0")
    if not slope >= 0:
        _args.fail("slope", slope, "a value >= 0")
    if b is not None:
        x = bias_act(x, b, dim=3)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up ** 2, flip_filter=flip_filter)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)
