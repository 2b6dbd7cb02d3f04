"""Dense 2-D correlations (NHWC/HWIO) built from one primitive: the unpadded, unstrided convolution.

Why not call `lax.conv_general_dilated` with padding, stride or input dilation directly? Because of
what XLA:CPU does with their derivatives (benchmarks/RESULTS.md, "StyleGAN2 on CPU"):
- the weight gradient of a convolution whose output is larger than its input (a padded
  transposed convolution) runs 10-20x slower than the same work as an unpadded convolution of an
  explicitly padded input (x [32, 16, 16, 64], 3x3x64x32 up=2: 182 ms against 17 ms);
- second derivatives (R1's and path length's gradients of gradients) differentiate the first
  derivative's convolutions, which autodiff emits with internal padding or dilation, so they are
  slow again (102 ms against 21 ms for a 3x3 layer).

So every convolution here is `conv2d_valid`: an unpadded correlation whose custom VJP expresses
both of its gradients as `conv2d_valid` of (explicitly padded / transposed) arrays. Derivatives of
any order therefore stay on the fast path. Stride and input dilation become polyphase sums of
unpadded convolutions with the kernel's sub-grids (`w[p::s, q::s]`), so no output that a stride
would discard is computed and no inserted zero is multiplied.

The custom VJP means these functions support reverse-mode differentiation to any order, but not
forward mode (`jax.jvp`); nothing in gigajax needs forward mode through a convolution.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")


def _valid(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_DN)


@jax.custom_vjp
def conv2d_valid(x, w):
    """Unpadded correlation: x `[N, H, W, I]`, w `[kh, kw, I, O]` -> `[N, H-kh+1, W-kw+1, O]`."""
    return _valid(x, w.astype(x.dtype))


def _conv2d_valid_fwd(x, w):
    return conv2d_valid(x, w), (x, w)


def _conv2d_valid_bwd(res, g):
    x, w = res
    kh, kw = w.shape[:2]
    # dx: full convolution of g with the kernel, i.e. correlation with the flipped, in/out-swapped
    # kernel over g padded by k - 1 on each side.
    gp = jnp.pad(g, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    dx = conv2d_valid(gp, jnp.swapaxes(w[::-1, ::-1], 2, 3).astype(g.dtype))
    # dw[a, b, i, o] = sum_{n, p, q} x[n, p + a, q + b, i] g[n, p, q, o]: a correlation of x with g
    # as the kernel, with the batch axis playing the role of the channels.
    dw = conv2d_valid(jnp.transpose(x, (3, 1, 2, 0)), jnp.transpose(g, (1, 2, 0, 3)).astype(x.dtype))
    return dx.astype(x.dtype), jnp.transpose(dw, (1, 2, 0, 3)).astype(w.dtype)


conv2d_valid.defvjp(_conv2d_valid_fwd, _conv2d_valid_bwd)


def _pad(x, py, px):
    """Zero-pad (or crop, for negative amounts) the spatial axes: py = (top, bottom), px = (left, right)."""
    if py == (0, 0) and px == (0, 0):
        return x
    return lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (py[0], py[1], 0), (px[0], px[1], 0), (0, 0, 0)))


def conv2d(x, w, padding=((0, 0), (0, 0))):
    """Correlation with zero padding ((top, bottom), (left, right)); negative amounts crop."""
    (py0, py1), (px0, px1) = padding
    return conv2d_valid(_pad(x, (py0, py1), (px0, px1)), w)


def conv2d_strided(x, w, stride):
    """Unpadded correlation with stride s: x `[N, H, W, I]` -> `[N, (H-kh)//s+1, (W-kw)//s+1, O]`.

    y[t] = sum_k w[k] x[s t + k] = sum_p sum_q w[s q + p] x_p[t + q] with x_p[t] = x[s t + p]: one
    unpadded convolution per phase (p_y, p_x) with the kernel's sub-grid, summed.
    """
    s = int(stride)
    if s == 1:
        return conv2d_valid(x, w)
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    ly, lx = (h - kh) // s + 1, (wd - kw) // s + 1
    # Phase split by reshape: XLA:CPU vectorises [.., n, s, ..] indexing better than strided slices.
    hy, hx = -(-h // s) * s, -(-wd // s) * s
    xs = _pad(x, (0, hy - h), (0, hx - wd)).reshape(n, hy // s, s, hx // s, s, c)
    y = None
    for py in range(min(s, kh)):
        for px in range(min(s, kw)):
            wk = w[py::s, px::s]
            part = xs[:, :ly + wk.shape[0] - 1, py, :lx + wk.shape[1] - 1, px]
            term = conv2d_valid(part, wk)
            y = term if y is None else y + term
    return y


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

    Output phase r (o = up t + r) only meets taps k = pad0 - r (mod up), so it is an unpadded
    convolution of the low-resolution x with the sub-kernel w[k0::up]; the phases are interleaved.
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
                part = conv2d_valid(_pad(x, pady, padx), w[ky::up, kx::up])
                part = _pad(part, (0, ty - cy), (0, tx - cx))
            cols.append(part)
        rows.append(jnp.stack(cols, axis=3))            # [N, ty, tx, up_x, O]
    y = jnp.stack(rows, axis=2).reshape(n, ty * up, tx * up, cout)
    return y[:, :ly, :lx]
