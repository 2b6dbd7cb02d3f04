"""Throughput of the resampling ops at StyleGAN2/3 layer sizes. Prints numbers, asserts nothing.

    python benchmarks/ops.py [--reps 10] [--no-naive]

For each op: ms per call, achieved GFLOP/s from the FLOP count written next to it, and the
speedup over the naive formulation (zero-stuff the image, then one dense depthwise convolution
with the full 2-D filter). For the FIR ops it also times the same polyphase/strided schedule written
as separable depthwise `lax.conv_general_dilated` passes, the form the design card first asked for.

FLOP counts (1 MAC = 2 FLOP) are those of the algorithm gigajax runs, not of the naive one:
  upfirdn pass with up u: (output elements of the pass) * K/u MACs (polyphase: each output meets K/u taps)
  upfirdn pass with down d: (output elements of the pass) * K MACs (strided: dropped outputs are never computed)
  dense conv: N * H_out * W_out * C_in * C_out * kh * kw MACs
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gigajax import ops
from gigajax.ops.upfirdn2d import naive_upfirdn2d

DN = ("NHWC", "HWIO", "NHWC")


def bench(fn, *args, reps=10):
    """Median ms per call of a jitted fn (compile excluded)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def conv_pass(x, taps, axis, up=1, down=1, pad=(0, 0)):
    """One separable FIR pass as a depthwise lax.conv_general_dilated (input dilation = up, stride = down)."""
    c = x.shape[-1]
    k = len(taps)
    shape = (k, 1, 1, c) if axis == 1 else (1, k, 1, c)
    kernel = jnp.broadcast_to(jnp.asarray(taps[::-1], x.dtype).reshape(shape[:2] + (1, 1)), shape)
    dil = (up, 1) if axis == 1 else (1, up)
    stride = (down, 1) if axis == 1 else (1, down)
    # zero-stuffing inserts up-1 zeros after the last pixel too
    p = ((pad[0], pad[1] + up - 1), (0, 0)) if axis == 1 else ((0, 0), (pad[0], pad[1] + up - 1))
    return lax.conv_general_dilated(x, kernel, stride, p, lhs_dilation=dil, dimension_numbers=DN,
                                    feature_group_count=c)


def row(name, ms, flops, base_ms=None, conv_ms=None):
    gf = flops / ms / 1e6
    extra = ""
    if conv_ms is not None:
        extra += f"  depthwise-conv form {conv_ms:9.2f} ms ({conv_ms / ms:5.1f}x slower)"
    if base_ms is not None:
        extra += f"  naive {base_ms:9.2f} ms (speedup {base_ms / ms:6.1f}x)"
    print(f"{name:<44} {ms:9.2f} ms {gf:8.1f} GFLOP/s{extra}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--no-naive", action="store_true", help="skip the (slow) naive baselines")
    args = ap.parse_args()
    rng = np.random.RandomState(0)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.devices()[0].device_kind}), "
          f"{os.cpu_count()} CPU threads")

    # Machine reference: a dense 3x3 conv, 512 -> 512 channels, 32x32, batch 8.
    x = jnp.asarray(rng.randn(8, 32, 32, 512).astype(np.float32))
    w = jnp.asarray(rng.randn(3, 3, 512, 512).astype(np.float32) / 48)
    ms = bench(jax.jit(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)), x, w,
               reps=args.reps)
    row("reference: dense conv 3x3 512->512 32x32 b8", ms, 2 * 8 * 32 * 32 * 512 * 512 * 9)

    # filtered_lrelu, StyleGAN3 layer: 256 channels, 64x64, up 2 / down 2, 12-tap Kaiser filters.
    n, h, c, up, down, k = 4, 64, 256, 2, 2, 12
    fu = fd = ops.design_lowpass_filter(12, cutoff=24.0, width=16.0, fs=128)  # values do not affect timing
    pad = [11, 10, 11, 10]  # 64x64 in -> 64x64 out
    x = jnp.asarray(rng.randn(n, h, h, c).astype(np.float32))
    b = jnp.asarray(rng.randn(c).astype(np.float32))
    fl = jax.jit(lambda x, b: ops.filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=pad, clamp=256.0))
    ms = bench(fl, x, b, reps=args.reps)
    hu = h * up + pad[0] + pad[1] - k + 1   # 128: upsampled size
    ho = (hu - k) // down + 1               # 64
    macs = n * c * (h * hu * k // up + hu * hu * k // up + hu * ho * k + ho * ho * k)
    flops = 2 * macs

    def fl_conv(x, b):
        y = conv_pass(conv_pass(x + b, fu * 2, 2, up=up, pad=pad[:2]), fu, 1, up=up, pad=pad[2:])
        y = jnp.clip(jnp.where(y >= 0, y, 0.2 * y) * np.sqrt(2), -256, 256)
        return conv_pass(conv_pass(y, fd, 2, down=down), fd, 1, down=down)

    conv_ms = bench(jax.jit(fl_conv), x, b, reps=max(2, args.reps // 5))
    base = None
    if not args.no_naive:
        def fl_naive(x, b):
            y = naive_upfirdn2d(x + b, fu, up=up, padding=pad, gain=up ** 2)
            y = jnp.clip(jnp.where(y >= 0, y, 0.2 * y) * np.sqrt(2), -256, 256)
            return naive_upfirdn2d(y, fd, down=down)
        base = bench(jax.jit(fl_naive), x, b, reps=2)
    row(f"filtered_lrelu 256ch 64x64 up2/down2 b{n}", ms, flops, base, conv_ms)
    print(f"    FLOP count {flops / 1e9:.3f} GFLOP; at 100 GFLOP/s that is {flops / 1e8:.2f} ms, "
          f"so this run takes {ms / (flops / 1e8):.1f}x the FLOP-bound time (target <= 3x)")

    # upsample2d / downsample2d: 512 channels, 32x32, [1,3,3,1] (4x4 outer product, run separably).
    n, h, c = 8, 32, 512
    f = ops.setup_filter([1, 3, 3, 1])
    f1 = np.array([1, 3, 3, 1], np.float32) / 8
    x = jnp.asarray(rng.randn(n, h, h, c).astype(np.float32))
    ms = bench(jax.jit(lambda x: ops.upsample2d(x, f)), x, reps=args.reps)
    flops = 2 * n * c * (h * 2 * h * 2 + 2 * h * 2 * h * 2)
    conv_ms = bench(jax.jit(lambda x: conv_pass(conv_pass(x, f1 * 2, 2, up=2, pad=(2, 1)), f1 * 2, 1, up=2, pad=(2, 1))),
                    x, reps=max(2, args.reps // 5))
    base = None if args.no_naive else bench(jax.jit(lambda x: naive_upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4)),
                                            x, reps=3)
    row(f"upsample2d 512ch 32x32 -> 64x64 b{n}", ms, flops, base, conv_ms)

    ms = bench(jax.jit(lambda x: ops.downsample2d(x, f)), x, reps=args.reps)
    flops = 2 * n * c * (h * h // 2 * 4 + (h // 2) ** 2 * 4)
    conv_ms = bench(jax.jit(lambda x: conv_pass(conv_pass(x, f1, 2, down=2, pad=(1, 1)), f1, 1, down=2, pad=(1, 1))),
                    x, reps=max(2, args.reps // 5))
    base = None if args.no_naive else bench(jax.jit(lambda x: naive_upfirdn2d(x, f, down=2, padding=1)), x, reps=3)
    row(f"downsample2d 512ch 32x32 -> 16x16 b{n}", ms, flops, base, conv_ms)

    # modulated_conv2d: 3x3, 512 -> 512 channels, 32x32, batch 8.
    n, h, c = 8, 32, 512
    x = jnp.asarray(rng.randn(n, h, h, c).astype(np.float32))
    w = jnp.asarray(rng.randn(3, 3, c, c).astype(np.float32))
    s = jnp.asarray(rng.randn(n, c).astype(np.float32))
    flops = 2 * n * h * h * c * c * 9
    unfused = bench(jax.jit(lambda x, w, s: ops.modulated_conv2d(x, w, s, padding=1, fused_modconv=False)), x, w, s,
                    reps=args.reps)
    fused = bench(jax.jit(lambda x, w, s: ops.modulated_conv2d(x, w, s, padding=1, fused_modconv=True)), x, w, s,
                  reps=max(2, args.reps // 5))
    row(f"modulated_conv2d 3x3 512ch 32x32 b{n} (unfused)", unfused, flops)
    row(f"modulated_conv2d 3x3 512ch 32x32 b{n} (fused)", fused, flops)

    # The StyleGAN2 upsampling layer: modulated 3x3 conv, 512ch, 16x16 -> 32x32 (transposed conv + FIR).
    x = x[:, :16, :16]
    flops = 2 * n * 16 * 16 * c * c * 9  # the transposed conv's real MACs; the FIR adds about 1 % and is left out
    ms = bench(jax.jit(lambda x, w, s: ops.modulated_conv2d(x, w, s, up=2, padding=1, resample_filter=f,
                                                          fused_modconv=False)), x, w, s, reps=args.reps)
    base = None
    if not args.no_naive:
        def up_naive(x, w, s):
            y = naive_upfirdn2d(x * s[:, None, None, :], f, up=2, padding=[2, 2, 2, 2], gain=4)
            return lax.conv_general_dilated(y, w, (1, 1), "VALID", dimension_numbers=DN)
        base = bench(jax.jit(up_naive), x, w, s, reps=3)
    row(f"modulated_conv2d up2 3x3 512ch 16->32 b{n}", ms, flops, base)


if __name__ == "__main__":
    main()
