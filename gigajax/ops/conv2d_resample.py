"""2-D convolution with optional FIR up/downsampling (NVlabs' `conv2d_resample`, NHWC/HWIO).

The convolution that mixes channels is dense and runs through `gigajax.ops.conv2d` (unpadded
convolutions with a custom VJP, fast to differentiate to any order on XLA:CPU; grouped convolutions
use `lax.conv_general_dilated` directly); the FIR part runs through `upfirdn2d`. Upsampling
convolves first with a transposed convolution (polyphase: the kernel never touches the inserted
zeros), then filters; downsampling filters first and convolves with stride, so discarded outputs
are never computed. Padding is applied once, to the (upsampled) input, exactly as in the official op.
"""

from __future__ import annotations

from jax import lax

from gigajax.ops import _args
from gigajax.ops.conv2d import conv2d, conv2d_dilated, conv2d_strided
from gigajax.ops.upfirdn2d import add_padding, downsample_padding, upfirdn2d, upsample_padding

_DN = ("NHWC", "HWIO", "NHWC")


def _conv(x, w, stride=1, padding=((0, 0), (0, 0)), groups=1, flip_weight=True, lhs_dilation=(1, 1)):
    if not flip_weight:  # official flip_weight=False means true convolution
        w = w[::-1, ::-1]
    w = w.astype(x.dtype)
    if groups > 1:  # only the fused modulated convolution (one group per sample) comes here
        return lax.conv_general_dilated(x, w, (stride, stride), padding, lhs_dilation=lhs_dilation,
                                        dimension_numbers=_DN, feature_group_count=groups)
    if lhs_dilation != (1, 1):
        return conv2d_dilated(x, w, lhs_dilation[0], padding)
    if stride > 1:  # callers pad through the FIR first, so a strided conv here is unpadded
        assert padding == ((0, 0), (0, 0)), padding
        return conv2d_strided(x, w, stride)
    return conv2d(x, w, padding)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """Convolve `x` with `w`, upsampling by `up` or downsampling by `down` with the FIR filter `f`.

    Args:
      x: `[N, H, W, C_in]`.
      w: `[kh, kw, C_in // groups, C_out]`.
      f: FIR filter prepared by `setup_filter` (`[fh, fw]` or `[taps]`), or None (identity).
      up, down: integer factors >= 1.
      padding: int, `[x, y]` or `[x0, x1, y0, y1]`, with respect to the upsampled image.
      groups: number of channel groups.
      flip_weight: True = correlation (like torch/lax conv), False = convolution.
      flip_filter: False = convolution with `f`, True = correlation.

    Returns:
      `[N, H_out, W_out, C_out]`.
    """
    _args.check_rank("x", x, (4,), "[N, H, W, C]")
    _args.check_rank("w", w, (4,), "[kh, kw, C_in // groups, C_out]")
    up = _args.as_int("up", up, 1)
    down = _args.as_int("down", down, 1)
    groups = _args.as_int("groups", groups, 1)
    kh, kw, cin_g, cout = w.shape
    if x.shape[3] != cin_g * groups:
        _args.fail("w.shape", tuple(w.shape), f"[kh, kw, C_in // groups, C_out] with C_in // groups = "
                   f"{x.shape[3]} // {groups} for x.shape {tuple(x.shape)}")
    if cout % groups:
        _args.fail("groups", groups, f"a divisor of C_out={cout}")
    fw, fh = _args.filter_size(f)
    pad = list(_args.parse_padding(padding))
    if up > 1:
        pad = add_padding(pad, upsample_padding(fw, fh, up, up))
    if down > 1:
        pad = add_padding(pad, downsample_padding(fw, fh, down, down))
    px0, px1, py0, py1 = pad

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        # Full correlation of the dilated input ((H-1)*up + kh rows), then the FIR with the
        # remaining padding. Rows that the FIR would crop on both sides are not computed at all.
        fx0, fx1, fy0, fy1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        tx = max(min(-fx0, -fx1), 0)
        ty = max(min(-fy0, -fy1), 0)
        x = _conv(x, w, padding=((kh - 1 - ty, kh - 1 - ty), (kw - 1 - tx, kw - 1 - tx)), groups=groups,
                  flip_weight=flip_weight, lhs_dilation=(up, up))
        x = upfirdn2d(x, f, padding=[fx0 + tx, fx1 + tx, fy0 + ty, fy1 + ty], gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=((py0, py0), (px0, px0)), groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=pad)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)
