"""Dense 2-D correlations (NHWC/HWIO) in the one form XLA:CPU differentiates fast.

Why not call `lax.conv_general_dilated` with whatever padding, stride or input dilation the layer
needs? Because of what XLA:CPU makes of the derivatives (benchmarks/RESULTS.md, "StyleGAN2 on CPU"):
its fast kernels for the weight gradient (a "backward-filter" convolution) apply only when the
convolution's output has the same spatial size as its input. Measured at x [32, 32, 32, 32],
3x3x32x32: weight gradient 7 ms with padding (1, 1), 25 ms for the same sums as an unpadded
convolution of an explicitly padded input; a padded transposed convolution (output larger than
input, x [32, 16, 16, 64]) took 182 ms. Second derivatives (R1, path length) differentiate those
gradients again and inherit the problem.

So a stride-1 convolution here is same-shaped wherever the padding allows: internal padding
(k-1)//2 before and k-1-(k-1)//2 after, so output size = input size; any other padding is an
explicit pad or crop of the input outside it (cheap, and its transpose is a crop or pad). The
gradients of a same-shaped convolution are same-shaped convolutions again, to any order. Input dilation
(transposed convolution) becomes a polyphase sum of same-shaped convolutions with the kernel's
sub-grids (`w[p::up, q::up]`), so no inserted zero is multiplied; stride stays a `lax` stride
(see `conv2d_strided`).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")


def _pad(x, py, px):
    """Zero-pad (or crop, for negative amounts) the spatial axes: py = (top, bottom), px = (left, right)."""
    if py == (0, 0) and px == (0, 0):
        return x
    return lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (py[0], py[1], 0), (px[0], px[1], 0), (0, 0, 0)))


def _split(pad0, pad1, k):
    """(internal, outer) padding of each side for a k-tap correlation padded by (pad0, pad1): the
    internal part makes the convolution same-shaped ((k-1)//2 before, the rest after) as far as
    the requested padding allows; the outer part (a pad, or a crop when negative) is the remainder."""
    a = min((k - 1) // 2, max(pad0, 0))
    b = min(k - 1 - (k - 1) // 2, max(pad1, 0))
    return (a, b), (pad0 - a, pad1 - b)


def conv2d(x, w, padding=((0, 0), (0, 0))):
    """Correlation with zero padding ((top, bottom), (left, right)); negative amounts crop.

    x `[N, H, W, I]`, w `[kh, kw, I, O]` -> `[N, H + top + bottom - kh + 1, W + left + right - kw + 1, O]`.
    """
    kh, kw = w.shape[:2]
    if (kh, kw) == (1, 1):
        # A 1x1 convolution is a matmul, and XLA:CPU runs it as one ~2.3x faster than as a
        # convolution (x [4, 84, 84, 1024], StyleGAN3-R's layers: 898 -> 366 ms); so are its gradients.
        x = _pad(x, tuple(padding[0]), tuple(padding[1]))
        n, h, wd, i = x.shape
        return (x.reshape(n * h * wd, i) @ w[0, 0].astype(x.dtype)).reshape(n, h, wd, w.shape[3])
    inner_y, outer_y = _split(*padding[0], kh)
    inner_x, outer_x = _split(*padding[1], kw)
    x = _pad(x, outer_y, outer_x)
    return lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), (inner_y, inner_x), dimension_numbers=_DN)


def conv2d_strided(x, w, stride):
    """Unpadded correlation with stride s: x `[N, H, W, I]` -> `[N, (H-kh)//s+1, (W-kw)//s+1, O]`.

    A plain strided `lax` convolution. Its weight gradient is fine on XLA:CPU; only its second
    derivatives are slow (R1 through a 3x3 stride-2 layer at [32, 33, 33, 32]: 110 ms against 30-35
    ms for polyphase forms), but polyphase forms pay more in the first derivatives that every step
    needs (input gradient 16 ms against 6 ms, when the input comes from a FIR filter), and R1 runs
    on one step in 16.
    """
    s = int(stride)
    return lax.conv_general_dilated(x, w.astype(x.dtype), (s, s), "VALID", dimension_numbers=_DN)


def _dilated_phases(size, taps, up, pad0, pad1):
    """Per output phase r of a correlation over the up-dilated, padded axis: (first tap, number of
    taps, output count, (pad_lo, pad_hi) of the low-resolution input). See `conv2d_dilated`."""
    length = (size - 1) * up + 1 + pad0 + pad1 - taps + 1
    phases = []
    for r in range(up):
        k0 = (pad0 - r) % up
        ntaps = len(range(k0, taps, up))
        count = max(0, -(-(length - r) // up))
        shift = (r + k0 - pad0) // up   # input index of tap k0 for output phase index 0
        phases.append((k0, ntaps, count, (-shift, shift + count + ntaps - 1 - size)))
    return length, phases


def conv2d_dilated(x, w, up, padding):
    """Correlation over the input dilated by `up` (up - 1 zeros between samples, as
    `lax.conv_general_dilated(lhs_dilation=(up, up))`) and padded by ((top, bottom), (left, right)).

    x `[N, H, W, I]` -> `[N, (H-1)*up + 1 + top + bottom - kh + 1, ..., O]`.

    Output phase r (o = up t + r) only meets taps k = pad0 - r (mod up), so it is a convolution of
    the low-resolution x with the sub-kernel w[k0::up]; the phases are interleaved.
    """
    up = int(up)
    if up == 1:
        return conv2d(x, w, padding)
    n, h, wd, _ = x.shape
    kh, kw = w.shape[:2]
    cout = w.shape[3]
    ly, phy = _dilated_phases(h, kh, up, *padding[0])
    lx, phx = _dilated_phases(wd, kw, up, *padding[1])
    ty, tx = phy[0][2], phx[0][2]   # phase 0 has the most outputs
    rows = []
    for ky, nky, cy, pady in phy:
        cols = []
        for kx, nkx, cx, padx in phx:
            if nky == 0 or nkx == 0 or cy == 0 or cx == 0:
                part = jnp.zeros((n, ty, tx, cout), x.dtype)
            else:
                part = conv2d(x, w[ky::up, kx::up], (pady, padx))
                part = _pad(part, (0, ty - cy), (0, tx - cx))
            cols.append(part)
        rows.append(jnp.stack(cols, axis=3))            # [N, ty, tx, up_x, O]
    y = jnp.stack(rows, axis=2).reshape(n, ty * up, tx * up, cout)
    return y[:, :ly, :lx]
