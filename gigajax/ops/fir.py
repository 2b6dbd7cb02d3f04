"""The polyphase FIR engine behind `upfirdn2d`, `filtered_lrelu` and the resampling convolutions.

upfirdn along one axis (length H, up u, down d, padding p0/p1, correlation taps g of length K) is

    y[o] = sum_k g[k] * xu[o*d + k - p0],   xu[j] = x[j/u] if u divides j else 0,
    o in [0, L),  L = (H*u + p0 + p1 - K) // d + 1.

Nothing here ever builds the zero-stuffed `xu`. Output phase rho = (o*d - p0) mod u only ever
meets the taps k = -rho (mod u), so each phase is a short correlation of the *low-resolution*
input with every u-th tap (the polyphase form: K/u MACs per output instead of K), and the phases
are interleaved afterwards. Downsampling reads the input with stride d, so outputs that would be
thrown away are never computed.

Each tap is a static shifted slice of the (once-padded) input, scaled and summed; XLA fuses the sum,
the phase interleave and the strided reads of a pass into one loop (the zero padding is its own copy).
A depthwise `lax.conv_general_dilated` computes the same thing, but XLA:CPU runs depthwise
convolutions at about 1 GFLOP/s, 21-30x slower than the fused sum (benchmarks/RESULTS.md); dense
convolutions (the ones that mix channels) stay `lax.conv_general_dilated` everywhere in gigajax.
Upsampling passes are still far from memory bandwidth on XLA:CPU; RESULTS.md says where the time goes.

Strided reads are written as contiguous slice -> reshape [n, stride] -> take phase 0, because XLA:CPU
vectorises that several times better than a strided `lax.slice` on a non-minor axis.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gigajax.ops._args import fail


@dataclasses.dataclass(frozen=True)
class AxisPlan:
    """Static schedule of upfirdn along one axis.

    ops: (phase, tap index k, first input index) per tap read, in unpadded input coordinates.
    length, stride: every read takes `length` samples with this stride.
    up: number of phases interleaved after the sum.
    select: (start, stride) of the final read of the interleaved result, or None.
    out: output length L.
    pad: (left, right) zero padding of the input so that every read stays in range.
    """
    ops: tuple
    length: int
    stride: int
    up: int
    select: tuple | None
    out: int
    pad: tuple


def plan_axis(size, taps, up, down, pad0, pad1, name="padding"):
    """Schedule upfirdn of `size` input samples with a `taps`-tap filter. Shapes only."""
    out = (size * up + pad0 + pad1 - taps) // down + 1
    if out < 1:
        fail(name, (pad0, pad1), f"padding that leaves a non-empty output: input size {size}, up={up}, "
             f"down={down} and a {taps}-tap filter give {out} output samples")
    if up == 1:
        ops = tuple((0, k, k - pad0) for k in range(taps))
        length, stride, select = out, down, None
    else:
        n_lo = -pad0                          # first interleaved index needed
        n_end = -pad0 + (out - 1) * down + 1  # one past the last
        t_lo = n_lo // up
        t_hi = -((-n_end) // up)
        ops = []
        for rho in range(up):
            first = (-rho) % up               # first tap of this phase
            shift = 1 if rho > 0 else 0
            for q, k in enumerate(range(first, taps, up)):
                ops.append((rho, k, t_lo + q + shift))
        ops = tuple(ops)
        length, stride, select = t_hi - t_lo, 1, (n_lo - up * t_lo, down)
    lo = min(start for _, _, start in ops)
    hi = max(start + stride * length for _, _, start in ops)
    return AxisPlan(ops=ops, length=length, stride=stride, up=up, select=select, out=out,
                    pad=(max(0, -lo), max(0, hi - size)))


def _read(x, axis, start, length, stride):
    """x[start : start + length*stride : stride] along `axis`; start and end must be in range."""
    if stride == 1:
        return lax.slice_in_dim(x, start, start + length, axis=axis)
    y = lax.slice_in_dim(x, start, start + length * stride, axis=axis)
    y = y.reshape(y.shape[:axis] + (length, stride) + y.shape[axis + 1:])
    return lax.index_in_dim(y, 0, axis=axis + 1, keepdims=False)


def _interleave(parts, axis):
    """y[..., u*t + r, ...] = parts[r][..., t, ...] along `axis`.

    Written as a select over a broadcast phase index rather than stack/concatenate: XLA fuses the
    select with the producers of `parts` into one loop, while XLA:CPU copies a concatenate
    separately at a fraction of memory bandwidth (10 ms vs 2.5 ms for 2 x 16 MB).
    """
    u = len(parts)
    shape = parts[0].shape[:axis + 1] + (u,) + parts[0].shape[axis + 1:]
    phase = lax.broadcasted_iota(jnp.int32, shape, axis + 1)
    y = jnp.broadcast_to(jnp.expand_dims(parts[0], axis + 1), shape)
    for r in range(1, u):
        y = jnp.where(phase == r, jnp.broadcast_to(jnp.expand_dims(parts[r], axis + 1), shape), y)
    return y.reshape(shape[:axis] + (shape[axis] * u,) + shape[axis + 2:])


def _weight_fn(g, dtype):
    """Tap getter: Python floats for concrete filters (folded into the program), else traced scalars."""
    if isinstance(g, jax.core.Tracer):
        g = g.astype(dtype)
        return lambda ks: g[ks]
    g = np.asarray(g, dtype=np.float64)
    return lambda ks: float(g[ks])


def pad_input(x, axes, plans):
    """x zero-padded as `execute` reads it (`plans[i].pad` along `axes[i]`)."""
    pads = [(0, 0)] * x.ndim
    for axis, p in zip(axes, plans):
        pads[axis] = p.pad
    return jnp.pad(x, pads) if any(p != (0, 0) for p in pads) else x


def execute(x, axes, plans, g, gain=1.0, padded=False):
    """Run upfirdn over one or two axes at once.

    Args:
      x: input array (any rank).
      axes: the axes to resample, e.g. (1,) or (1, 2).
      plans: one AxisPlan per axis.
      g: correlation taps, shape [K_a0] or [K_a0, K_a1] to match `axes`; numpy or jax array.
      gain: scalar folded into the taps.
      padded: x is already `pad_input(x, axes, plans)`.

    Returns:
      the resampled array, same dtype as x.
    """
    weight = _weight_fn(g, x.dtype)
    xp = x if padded else pad_input(x, axes, plans)

    phases = {}
    for combo in itertools.product(*[p.ops for p in plans]):
        term = xp
        for axis, p, (_, _, start) in zip(axes, plans, combo):
            term = _read(term, axis, start + p.pad[0], p.length, p.stride)
        w = weight(tuple(op[1] for op in combo))
        w = w * gain
        if not (isinstance(w, float) and w == 1.0):
            term = term * w
        key = tuple(op[0] for op in combo)
        phases[key] = term if key not in phases else phases[key] + term

    proto = next(iter(phases.values()))

    def interleave(prefix, level):
        if level == len(axes):
            return phases.get(prefix, jnp.zeros_like(proto))
        axis, p = axes[level], plans[level]
        parts = [interleave(prefix + (rho,), level + 1) for rho in range(p.up)]
        return parts[0] if p.up == 1 else _interleave(parts, axis)

    y = interleave((), 0)
    for axis, p in zip(axes, plans):
        if p.select is not None:
            start, stride = p.select
            need = start + stride * p.out
            if need > y.shape[axis]:  # the reshape-based strided read may run past the end
                pads = [(0, 0)] * y.ndim
                pads[axis] = (0, need - y.shape[axis])
                y = jnp.pad(y, pads)
            y = _read(y, axis, start, p.out, stride)
    return y.astype(x.dtype)


def separate(f):
    """Factor a concrete rank-1 2-D filter into (column taps, row taps); None if it is not rank 1
    or not concrete. Lets the common outer-product filters run as two cheap 1-D passes."""
    if isinstance(f, jax.core.Tracer):
        return None
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2:
        return None
    u, s, vt = np.linalg.svd(f)
    if s[0] == 0 or (len(s) > 1 and s[1] > 1e-6 * s[0]):
        return None
    a, b = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
    if a.sum() < 0:
        a, b = -a, -b
    return a, b
