"""Pad, upsample, FIR-filter and downsample batches of NHWC images.

Same semantics and argument conventions as NVlabs' `torch_utils/ops/upfirdn2d.py`, in NHWC:
`up`/`down` are an int or `[x, y]`; `padding` is an int, `[x, y]` or `[x0, x1, y0, y1]` and is
given with respect to the upsampled image (negative values crop); `flip_filter=False` means true
convolution. The work happens in `gigajax.ops.fir` (polyphase, strided, separable where possible).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gigajax.ops import _args, fir


def _taps(f, flip_filter):
    """Official convolution flips the filter; `fir` correlates."""
    if f is None:
        return None
    if flip_filter:
        return f
    return f[::-1] if np.ndim(f) == 1 else f[::-1, ::-1]


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Pad, upsample, filter and downsample a batch of images.

    1. upsample by inserting `up - 1` zeros after each pixel;
    2. pad with zeros (negative padding crops);
    3. convolve with `f`, keeping only outputs whose footprint lies inside the padded image;
    4. keep every `down`-th pixel.

    Args:
      x: `[N, H, W, C]`.
      f: `[fh, fw]` (non-separable), `[taps]` (separable, applied along both axes) or None (identity).
      up, down: int or `[x, y]`, each >= 1.
      padding: int, `[x, y]` or `[x0, x1, y0, y1]`, in upsampled pixels.
      flip_filter: False = convolution, True = correlation.
      gain: overall scale of the output.

    Returns:
      `[N, (H*uy + py0 + py1 - fh) // dy + 1, (W*ux + px0 + px1 - fw) // dx + 1, C]`, dtype of x.

    Differentiation: with a concrete filter the VJP is the adjoint upfirdn2d (reverse mode to any
    order, no forward mode, like the official op); a traced filter gets plain autodiff.
    """
    _args.check_rank("x", x, (4,), "[N, H, W, C]")
    upx, upy = _args.parse_scaling("up", up)
    downx, downy = _args.parse_scaling("down", down)
    px0, px1, py0, py1 = _args.parse_padding(padding)
    fw, fh = _args.filter_size(f)
    _, h, w, _ = x.shape
    plan_y = fir.plan_axis(h, fh, upy, downy, py0, py1)
    plan_x = fir.plan_axis(w, fw, upx, downx, px0, px1)
    args = (f, (upx, upy), (downx, downy), (px0, px1, py0, py1), flip_filter, gain, (plan_y, plan_x))
    if f is not None and isinstance(f, jax.core.Tracer):
        return _upfirdn2d(x, *args)  # a traced filter (e.g. a fractional-shift kernel): plain autodiff
    return _adjoint_vjp(x, args)


def _adjoint_vjp(x, args):
    """upfirdn2d whose VJP is another upfirdn2d: the adjoint of pad-upsample-filter-downsample is
    pad-upsample(by down)-filter(flipped)-downsample(by up). Left to autodiff, the transpose of the
    strided, shifted tap reads becomes pad/scatter chains that XLA:CPU runs ~10x slower than the
    forward; the adjoint runs at forward speed. It is itself differentiable (R1's second order)."""
    f, (upx, upy), (downx, downy), (px0, px1, py0, py1), flip_filter, gain, (plan_y, plan_x) = args
    _, h, w, _ = x.shape
    fw, fh = _args.filter_size(f)

    @jax.custom_vjp
    def op(x):
        return _upfirdn2d(x, *args)

    def fwd(x):
        return op(x), None

    def bwd(_, dy):
        # Per axis: dx[i] = sum_j f'[j] dyu[i*up + j - (K-1-p0)], length exactly H (see module tests).
        p = [fw - 1 - px0, w * upx - plan_x.out * downx + px0 - upx + 1,
             fh - 1 - py0, h * upy - plan_y.out * downy + py0 - upy + 1]
        return (upfirdn2d(dy, f, up=(downx, downy), down=(upx, upy), padding=p, flip_filter=not flip_filter,
                          gain=gain),)

    op.defvjp(fwd, bwd)
    return op(x)


def _upfirdn2d(x, f, up, down, padding, flip_filter, gain, plans):
    if f is None:  # pad/crop and zero insertion only: nothing worth keeping out of the consumers
        return _passes(x, f, flip_filter, gain, plans)
    return _materialized(lambda x: _passes(x, f, flip_filter, gain, plans), x)


def _passes(x, f, flip_filter, gain, plans):
    plan_y, plan_x = plans
    _, h, w, _ = x.shape
    g = _taps(f, flip_filter)

    if g is None:
        g = np.ones([1], np.float32)
    if np.ndim(g) == 2:
        factors = fir.separate(g)
        if factors is None:
            return fir.execute(x, (1, 2), (plan_y, plan_x), g, gain)
        gy, gx = factors
    else:
        gy = gx = g
    # Run the shrinking pass first: it leaves less work for the other one.
    if plan_x.out / w <= plan_y.out / h:
        (axis1, plan1, g1, gain1), (axis2, plan2, g2, gain2) = (2, plan_x, gx, 1.0), (1, plan_y, gy, gain)
    else:
        (axis1, plan1, g1, gain1), (axis2, plan2, g2, gain2) = (1, plan_y, gy, gain), (2, plan_x, gx, 1.0)
    # The second pass reads the first one's padded output once per tap: materialise it.
    first = lambda x: fir.pad_input(fir.execute(x, (axis1,), (plan1,), g1, gain1), (axis2,), (plan2,))
    xp = _materialized(first, x) if len(plan2.ops) > 1 else first(x)
    return fir.execute(xp, (axis2,), (plan2,), g2, gain2, padded=True)


# Materialisation on XLA:CPU. XLA:CPU's fusion pass copies cheap elementwise producers into every
# consumer loop that reads them (up to 15 reads of each element, InstructionFusion's
# kAllowedCodeDuplication), and a FIR pass is nothing but multiplies and adds read through one
# shifted slice per tap. Left alone it (1) recomputes the first pass of a separable upfirdn2d once
# per tap of the second (12 x 12 multiply-adds per output for 12 taps) and (2) recomputes the
# whole filter inside the consumers of the result. The worst consumer is the layout-changing copy
# that XLA:CPU puts in front of a convolution's weight gradient (x transposed to [C, H, W, N], batch
# minor), where the recomputation becomes a strided, unvectorised loop: in the gradient of two
# chained StyleGAN3 synthesis layers (x [32, 24, 24, 64], 12-tap up 2 / down 2 filtered_lrelu) that
# copy took 360 ms, against 6 ms when its input is a buffer, and the gradient with respect to the
# second layer's parameters 440 ms against 170 ms for that layer alone. `optimization_barrier`
# cannot prevent it (XLA:CPU removes barriers before fusion). What XLA:CPU (jax 0.10.2) does keep
# whole is a concatenate of separately computed parts: it becomes the root of the loop that
# computes the parts, and its consumers read the result from memory. So on CPU a FIR result that
# is read again (the op's output, and the padded intermediate of a separable filter) is built as
# the concatenation of two channel halves, each computed on its own: channels are independent, so
# this is the same arithmetic as the unsplit op. Elsewhere XLA is left to decide.
_MIN_ROW_BYTES = 64      # no split below 64 bytes of channels per pixel (16 float32 channels)
_MIN_TOTAL_BYTES = 2048  # ... or for tiny tensors


def _materialized(fn, x):
    """fn(x) for a channel-wise fn ([N, H, W, C] -> [N, H', W', C]), as a buffer on XLA:CPU."""
    c = x.shape[3]
    row = c * jnp.dtype(x.dtype).itemsize
    if c < 2 or row < _MIN_ROW_BYTES or x.size * jnp.dtype(x.dtype).itemsize < _MIN_TOTAL_BYTES \
            or jax.default_backend() != "cpu":
        return fn(x)
    half = c // 2
    return jnp.concatenate([fn(x[..., :half]), fn(x[..., half:])], axis=3)


def filter2d(x, f, padding=0, flip_filter=False, gain=1):
    """Filter with `f`; by default the output has the input's shape (extra padding on top)."""
    px0, px1, py0, py1 = _args.parse_padding(padding)
    fw, fh = _args.filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample_padding(fw, fh, upx, upy):
    """Extra [x0, x1, y0, y1] padding that makes upsampling with an fw x fh filter give exactly up x the input."""
    return [(fw + upx - 1) // 2, (fw - upx) // 2, (fh + upy - 1) // 2, (fh - upy) // 2]


def downsample_padding(fw, fh, downx, downy):
    """Extra [x0, x1, y0, y1] padding that makes downsampling with an fw x fh filter give exactly 1/down of the input."""
    return [(fw - downx + 1) // 2, (fw - downx) // 2, (fh - downy + 1) // 2, (fh - downy) // 2]


def add_padding(padding, extra):
    """padding (any official form) + extra [x0, x1, y0, y1] -> [x0, x1, y0, y1]."""
    return [p + e for p, e in zip(_args.parse_padding(padding), extra)]


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1):
    """Upsample by `up` with filter `f`; by default the output is exactly `up` times the input."""
    upx, upy = _args.parse_scaling("up", up)
    p = add_padding(padding, upsample_padding(*_args.filter_size(f), upx, upy))
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1):
    """Downsample by `down` with filter `f`; by default the output is exactly 1/`down` of the input."""
    downx, downy = _args.parse_scaling("down", down)
    p = add_padding(padding, downsample_padding(*_args.filter_size(f), downx, downy))
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain)


def naive_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """The textbook formulation: zero-stuff, pad, one dense depthwise convolution, then subsample.

    Slow on purpose. It exists as an independent cross-check for tests and as the baseline that
    benchmarks/ops.py measures the real path against; nothing in gigajax calls it on a hot path.
    """
    _args.check_rank("x", x, (4,), "[N, H, W, C]")
    upx, upy = _args.parse_scaling("up", up)
    downx, downy = _args.parse_scaling("down", down)
    px0, px1, py0, py1 = _args.parse_padding(padding)
    n, h, w, c = x.shape
    f = jnp.ones([1, 1], x.dtype) if f is None else jnp.asarray(f, x.dtype)
    if f.ndim == 1:
        f = f[:, None] * f[None, :]
    k = f if flip_filter else f[::-1, ::-1]
    xu = jnp.zeros([n, h, upy, w, upx, c], x.dtype).at[:, :, 0, :, 0, :].set(x)
    xu = xu.reshape(n, h * upy, w * upx, c)
    xu = lax.pad(xu, jnp.zeros((), x.dtype), [(0, 0, 0), (py0, py1, 0), (px0, px1, 0), (0, 0, 0)])
    kernel = jnp.tile((k * gain)[:, :, None, None], (1, 1, 1, c))
    y = lax.conv_general_dilated(xu, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                 feature_group_count=c)
    return y[:, ::downy, ::downx, :]
