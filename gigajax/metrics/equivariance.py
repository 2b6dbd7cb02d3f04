"""StyleGAN3's equivariance metrics (Karras et al. 2021, "Alias-Free GAN", appendix E.3), as
NVlabs' `metrics/equivariance.py` defines them: EQ-T (integer translation), EQ-T_frac (fractional
translation) and EQ-R (rotation), each a PSNR in dB between a transformed image of the generator
and the same transform applied to its untransformed image, over the pixels both define.

The generator is given as two functions:
  mapping(params, z [B, z_dim], c [B, c_dim]) -> w   (whatever synthesis_t consumes, e.g. ws);
  synthesis_t(params, w, c, transform [3, 3]) -> images float [B, H, W, C] in [-1, 1], noise 'const'.
`transform` has the meaning of the official `G.synthesis.input.transform` buffer: it maps output
image coordinates to the coordinates where StyleGAN3's input Fourier features are evaluated,
    image(p) = g(A p + b),   transform = [[A, b], [0, 0, 1]],
with p in units of the image width, (0, 0) at the image centre, x to the right and y down (the pixel
centres of an H x W image lie at ((j + 0.5) / W - 0.5, (i + 0.5) / H - 0.5)). So transform
M[:2, 2] = -t draws the content moved by +t, and rotation_matrix(-angle) draws it turned by
`angle` from +x towards -y, i.e. counterclockwise on screen -- the same motions as
integer_translation / fractional_translation(t) and fractional_rotation(angle).

Per batch (one transform for the whole batch, as the official loop):
  ref = synthesis_t(w, I);
  EQ-T:      t ~ U[-translate_max, translate_max]^2 rounded to whole pixels; M = I, M[:2, 2] = -t;
             compare synthesis_t(w, M) with integer_translation(ref, t) under its mask;
  EQ-T_frac: the same without rounding, against fractional_translation (Lanczos, a = 3);
  EQ-R:      angle ~ U[-rotate_max pi, rotate_max pi]; compare fractional_rotation(ref, angle) with
             fractional_pseudo_rotation(synthesis_t(w, rotation_matrix(-angle)), angle) under the
             product of their masks;
PSNR = 20 log10(2) - 10 log10(sum(mask * err^2) / sum(mask)) over all samples (the peak-to-peak
range of [-1, 1] images is 2).

The image operators below take NHWC float images, are jit-able (their angles and offsets may be
traced) and return (image, mask) with the mask broadcast to the image's shape, like the official
NCHW ones.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gigajax.ops.upfirdn2d import filter2d

_HIGHEST = lax.Precision.HIGHEST


# --- small helpers ---------------------------------------------------------------------------------

def sinc(x):
    """Normalised sinc, sin(pi x) / (pi x), 1 at 0."""
    y = jnp.abs(x * np.pi)
    return jnp.where(y < 1e-30, jnp.ones_like(y), jnp.sin(y) / jnp.maximum(y, 1e-30))


def lanczos_window(x, a):
    """sinc(x / a) inside |x| < a, 0 outside."""
    u = jnp.abs(x) / a
    return jnp.where(u < 1, sinc(u), jnp.zeros_like(u))


def rotation_matrix(angle) -> jax.Array:
    """[3, 3] float32 [[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]] (the official helper's layout:
    used as a synthesis transform, rotation_matrix(-angle) turns the image by +angle,
    counterclockwise on screen)."""
    angle = jnp.asarray(angle, jnp.float32)
    c, s = jnp.cos(angle), jnp.sin(angle)
    one, zero = jnp.ones_like(c), jnp.zeros_like(c)
    return jnp.stack([jnp.stack([c, s, zero]), jnp.stack([-s, c, zero]), jnp.stack([zero, zero, one])])


def translation_matrix(tx, ty) -> jax.Array:
    """[3, 3] float32 identity with [0, 2] = tx, [1, 2] = ty (units of the image width / height).
    As a synthesis transform, translation_matrix(-tx, -ty) moves the content by +(tx, ty)."""
    tx, ty = jnp.asarray(tx, jnp.float32), jnp.asarray(ty, jnp.float32)
    return jnp.eye(3, dtype=jnp.float32).at[0, 2].set(tx).at[1, 2].set(ty)


def _range_mask(n, lo, hi):
    """[n] float32: 1 where lo <= i < hi."""
    i = jnp.arange(n)
    return ((i >= lo) & (i < hi)).astype(jnp.float32)


def _box_mask(shape, y0, y1, x0, x1):
    """Mask of shape `shape` (NHWC): 1 on rows [y0, y1) and columns [x0, x1)."""
    _, h, w, _ = shape
    m = _range_mask(h, y0, y1)[:, None] * _range_mask(w, x0, x1)[None, :]
    return jnp.broadcast_to(m[None, :, :, None], shape)


def _shifted(y, off_y, off_x, h, w):
    """z[i, j] = y[i + off_y, j + off_x] where that is inside y, else 0; z is [N, h, w, C]."""
    hy, wy = y.shape[1:3]
    ri = jnp.arange(h) + off_y
    ci = jnp.arange(w) + off_x
    vr = ((ri >= 0) & (ri < hy)).astype(y.dtype)
    vc = ((ci >= 0) & (ci < wy)).astype(y.dtype)
    z = jnp.take(y, jnp.clip(ri, 0, hy - 1), axis=1)
    z = jnp.take(z, jnp.clip(ci, 0, wy - 1), axis=2)
    return z * (vr[:, None] * vc[None, :])[None, :, :, None]


def _fir_dense(x, f, up, pad0, pad1, gain=1.0):
    """upfirdn2d (official semantics: true convolution) of NHWC x with a 2-D, possibly traced
    filter f, upsampling `up` and the same padding [pad0, pad1] on both axes, as one
    single-channel convolution (channels folded into the batch). The tap-by-tap engine of
    gigajax.ops.upfirdn2d would unroll the 47 x 47 rotation filters into thousands of terms."""
    n, h, w, c = x.shape
    xt = jnp.transpose(x, (0, 3, 1, 2)).reshape(n * c, h, w, 1)
    k = (jnp.asarray(f, x.dtype)[::-1, ::-1] * gain)[:, :, None, None]
    pads = [(pad0, pad1 + up - 1)] * 2     # zero-stuffing leaves up - 1 zeros after the last pixel
    y = lax.conv_general_dilated(xt, k, window_strides=(1, 1), padding=pads, lhs_dilation=(up, up),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HIGHEST)
    ho, wo = y.shape[1:3]
    return jnp.transpose(y.reshape(n, c, ho, wo), (0, 2, 3, 1))


# --- translations (appendix E.1, E.2) --------------------------------------------------------------

def integer_translation(x, tx, ty):
    """Move NHWC images by (tx * W, ty * H) pixels, each rounded to the nearest integer (half to
    even). -> (z, mask): z[i + iy, j + ix] = x[i, j]; mask 1 where z came from x, 0 elsewhere."""
    _, h, w, _ = x.shape
    ix = jnp.round(jnp.asarray(tx, jnp.float32) * w).astype(jnp.int32)
    iy = jnp.round(jnp.asarray(ty, jnp.float32) * h).astype(jnp.int32)
    z = _shifted(x, -iy, -ix, h, w)
    return z, _box_mask(x.shape, iy, h + iy, ix, w + ix)


def _lanczos_shift_taps(frac, a):
    """Normalised 2a-tap Lanczos kernel for taps -(a-1) .. a, centred on `frac`."""
    taps = jnp.arange(2 * a, dtype=jnp.float32) - (a - 1)
    f = sinc(taps - frac) * sinc((taps - frac) / a)
    return f / jnp.sum(f)


def fractional_translation(x, tx, ty, a=3):
    """Move NHWC images by (tx * W, ty * H) pixels, band-limited: separable Lanczos-windowed sinc
    (a lobes) interpolation of the fractional part. -> (z, mask); the mask leaves out the border
    pixels whose kernel reaches outside the image (and those moved in from outside)."""
    _, h, w, _ = x.shape
    tx = jnp.asarray(tx, jnp.float32) * w
    ty = jnp.asarray(ty, jnp.float32) * h
    ix = jnp.floor(tx).astype(jnp.int32)
    iy = jnp.floor(ty).astype(jnp.int32)
    b = a - 1
    fx = _lanczos_shift_taps(tx - ix, a)
    fy = _lanczos_shift_taps(ty - iy, a)
    y = filter2d(x, fx[None, :], padding=[b, a, 0, 0])       # [N, H, W + b + a, C]
    y = filter2d(y, fy[:, None], padding=[0, 0, b, a])       # [N, H + b + a, W + b + a, C]
    z = _shifted(y, b - iy, b - ix, h, w)
    mask = _box_mask(x.shape, jnp.maximum(iy + a, 0), jnp.minimum(iy - b, 0) + h,
                     jnp.maximum(ix + a, 0), jnp.minimum(ix - b, 0) + w)
    return z, mask


# --- rotations (appendix E.3) ----------------------------------------------------------------------

def construct_affine_bandlimit_filter(mat, a=3, amax=16, aflt=64, up=4, cutoff_in=1, cutoff_out=1):
    """Low-pass FIR filter [2 amax up - 1]^2 (float32) for resampling under the affine map `mat`
    ([3, 3]; its 2x2 part matters): the convolution of a sinc band limit in input coordinates with
    one in output coordinates (x_o = A x_i), windowed by the likewise convolved Lanczos windows
    (a lobes), designed on a (2 aflt up - 1)^2 grid with spacing 1 / up, cropped to +-amax and
    normalised so that each of the up x up polyphase components sums to 1 / up^2."""
    if not a <= amax < aflt:
        raise ValueError(f"construct_affine_bandlimit_filter: need a <= amax < aflt, "
                         f"got a={a}, amax={amax}, aflt={aflt}")
    mat = jnp.asarray(mat, jnp.float32)
    n = aflt * up * 2 - 1
    # Tap positions in FFT order: 0, 1/up, ..., aflt - 1/up, -(aflt - 1/up), ..., -1/up.
    taps = jnp.roll((jnp.arange(n, dtype=jnp.float32) + 1) / up - aflt, 1 - aflt * up)
    yi, xi = jnp.meshgrid(taps, taps, indexing="ij")
    xo = xi * mat[0, 0] + yi * mat[0, 1]
    yo = xi * mat[1, 0] + yi * mat[1, 1]

    def cconv(p, q):       # circular 2-D convolution
        return jnp.real(jnp.fft.ifft2(jnp.fft.fft2(p) * jnp.fft.fft2(q)))

    f = cconv(sinc(xi * cutoff_in) * sinc(yi * cutoff_in), sinc(xo * cutoff_out) * sinc(yo * cutoff_out))
    wnd = cconv(lanczos_window(xi, a) * lanczos_window(yi, a), lanczos_window(xo, a) * lanczos_window(yo, a))
    f = f * wnd
    c = (aflt - amax) * up
    f = jnp.roll(f, (aflt * up - 1, aflt * up - 1), axis=(0, 1))[c:-c, c:-c]   # centre tap at the middle
    f = jnp.pad(f, ((0, 1), (0, 1))).reshape(amax * 2, up, amax * 2, up)
    f = f / jnp.sum(f, axis=(0, 2), keepdims=True) / (up ** 2)
    return f.reshape(amax * 2 * up, amax * 2 * up)[:-1, :-1].astype(jnp.float32)


def _affine_grid(theta, h, w):
    """torch.nn.functional.affine_grid(theta[None], [1, C, h, w], align_corners=False)[0]:
    normalised source coordinates (gx, gy), each [h, w], of the output pixel centres
    ((2j + 1) / w - 1, (2i + 1) / h - 1) under theta [2, 3]."""
    xs = (2 * jnp.arange(w, dtype=jnp.float32) + 1) / w - 1
    ys = (2 * jnp.arange(h, dtype=jnp.float32) + 1) / h - 1
    gx = theta[0, 0] * xs[None, :] + theta[0, 1] * ys[:, None] + theta[0, 2]
    gy = theta[1, 0] * xs[None, :] + theta[1, 1] * ys[:, None] + theta[1, 2]
    return gx, gy


def _unnormalize(g, size):
    """grid_sample's align_corners=False map from [-1, 1] (pixel edges) to pixel indices."""
    return ((g + 1) * size - 1) / 2


def _grid_sample_bilinear(y, gx, gy):
    """torch grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False) of NHWC y at
    the normalised coordinates gx, gy [h, w] (the same for the whole batch) -> [N, h, w, C]."""
    hy, wy = y.shape[1:3]
    ix, iy = _unnormalize(gx, wy), _unnormalize(gy, hy)
    x0, y0 = jnp.floor(ix), jnp.floor(iy)
    out = 0
    for dy in (0, 1):
        for dx in (0, 1):
            xc, yc = x0 + dx, y0 + dy
            wgt = (1 - jnp.abs(ix - xc)) * (1 - jnp.abs(iy - yc))
            valid = (xc >= 0) & (xc < wy) & (yc >= 0) & (yc < hy)
            xi = jnp.clip(xc, 0, wy - 1).astype(jnp.int32)
            yi = jnp.clip(yc, 0, hy - 1).astype(jnp.int32)
            wgt = jnp.where(valid, wgt, 0).astype(y.dtype)
            out = out + y[:, yi, xi, :] * wgt[None, :, :, None]
    return out


def affine_transformation(x, mat, up=4, **filter_kwargs):
    """Resample NHWC images under the affine map `mat` [3, 3] (translation in units of the image
    size; the output at p shows the input at mat^-1 p): upsample `up` x with
    `construct_affine_bandlimit_filter(mat, up=up, **filter_kwargs)`, then bilinear sampling with
    torch affine_grid / grid_sample(align_corners=False, zeros) semantics. -> (z, mask); the mask
    is 1 where the nearest sample of the upsampled image lies more than the filter's support
    (2 p + 1 upsampled pixels) inside its border."""
    _, h, w, _ = x.shape
    mat = jnp.asarray(mat, jnp.float32)
    f = construct_affine_bandlimit_filter(mat, up=up, **filter_kwargs)
    p = f.shape[0] // 2

    theta = jnp.linalg.inv(mat)
    row0 = theta[0].at[2].multiply(2).at[2].add(1 / up / w) * (w / (w + p / up * 2))
    row1 = theta[1].at[2].multiply(2).at[2].add(1 / up / h) * (h / (h + p / up * 2))
    gx, gy = _affine_grid(jnp.stack([row0, row1]), h, w)

    fw = f.shape[0]
    y = _fir_dense(x, f, up, p + (fw + up - 1) // 2, p + (fw - up) // 2, gain=up * up)   # upsample2d, padding p
    z = _grid_sample_bilinear(y, gx, gy)

    hy, wy = y.shape[1:3]
    c = p * 2 + 1
    nx, ny = jnp.round(_unnormalize(gx, wy)), jnp.round(_unnormalize(gy, hy))   # nearest: half to even
    m = ((nx >= c) & (nx < wy - c) & (ny >= c) & (ny < hy - c)).astype(x.dtype)
    return z, jnp.broadcast_to(m[None, :, :, None], z.shape)


def fractional_rotation(x, angle, a=3, **filter_kwargs):
    """Turn NHWC images by `angle` radians about their centre, from +x towards -y (counterclockwise
    on screen, rows counting down), band-limited (operator R_alpha of appendix E.3). -> (z, mask)."""
    return affine_transformation(x, rotation_matrix(angle), a=a, amax=a * 2, **filter_kwargs)


def fractional_pseudo_rotation(x, angle, a=3, **filter_kwargs):
    """Give NHWC images the band limit they would have after `fractional_rotation` by `angle`,
    without turning them (operator R*_alpha of appendix E.3). -> (z, mask); the mask leaves out
    the border the filter reaches across."""
    f = construct_affine_bandlimit_filter(rotation_matrix(-jnp.asarray(angle, jnp.float32)), a=a,
                                          amax=a * 2, up=1, **filter_kwargs)
    c = f.shape[0] // 2
    y = _fir_dense(x, f, 1, c, c)                                 # filter2d: same size output
    h, w = x.shape[1:3]
    return y, _box_mask(y.shape, c, h - c, c, w - c)


# --- the metric ------------------------------------------------------------------------------------

EQ_KINDS = ("eqt_int", "eqt_frac", "eqr")


def make_equivariance_sampler(mapping: Callable, synthesis_t: Callable, *, batch_size: int, z_dim: int,
                              c_dim: int = 0, translate_max: float = 0.125, rotate_max: float = 1.0,
                              eqt_int: bool = False, eqt_frac: bool = False, eqr: bool = False,
                              resolution: int | None = None, sample_z: Callable | None = None):
    """-> jitted batch(params, key, class_logits) -> {kind: (sq_err [B], mask [B])}: per-image
    sums of mask * (reference - transformed)^2 and of the mask, for the requested kinds."""
    if not (eqt_int or eqt_frac or eqr):
        raise ValueError("equivariance: request at least one of eqt_int, eqt_frac, eqr")
    if sample_z is None:
        sample_z = lambda key, n: jax.random.normal(key, (n, z_dim), jnp.float32)   # noqa: E731
    eye = jnp.eye(3, dtype=jnp.float32)

    def sums(ref, img, mask):
        err = jnp.square(ref - img) * mask
        return jnp.sum(err, axis=(1, 2, 3)), jnp.sum(mask, axis=(1, 2, 3))

    def batch(params, key, class_logits):
        kz, kc, k_int, k_frac, k_rot = jax.random.split(key, 5)
        B = batch_size
        z = sample_z(kz, B)
        if c_dim:
            c = jax.nn.one_hot(jax.random.categorical(kc, class_logits, shape=(B,)), c_dim, dtype=jnp.float32)
        else:
            c = jnp.zeros((B, 0), jnp.float32)
        w = mapping(params, z, c)
        orig = synthesis_t(params, w, c, eye).astype(jnp.float32)
        res = resolution or orig.shape[2]
        out = {}
        if eqt_int:
            t = jax.random.uniform(k_int, (2,), jnp.float32, -1.0, 1.0) * translate_max
            t = jnp.round(t * res) / res
            img = synthesis_t(params, w, c, eye.at[:2, 2].set(-t)).astype(jnp.float32)
            ref, mask = integer_translation(orig, t[0], t[1])
            out["eqt_int"] = sums(ref, img, mask)
        if eqt_frac:
            t = jax.random.uniform(k_frac, (2,), jnp.float32, -1.0, 1.0) * translate_max
            img = synthesis_t(params, w, c, eye.at[:2, 2].set(-t)).astype(jnp.float32)
            ref, mask = fractional_translation(orig, t[0], t[1])
            out["eqt_frac"] = sums(ref, img, mask)
        if eqr:
            angle = jax.random.uniform(k_rot, (), jnp.float32, -1.0, 1.0) * (rotate_max * np.pi)
            img = synthesis_t(params, w, c, rotation_matrix(-angle)).astype(jnp.float32)
            ref, ref_mask = fractional_rotation(orig, angle)
            pseudo, pseudo_mask = fractional_pseudo_rotation(img, angle)
            out["eqr"] = sums(ref, pseudo, ref_mask * pseudo_mask)
        return out

    return jax.jit(batch)


def psnr_from_sums(sq_err: float, mask: float) -> float:
    """PSNR in dB of [-1, 1] images from the accumulated masked squared error and mask sums."""
    if mask <= 0:
        return float("nan")
    mse = sq_err / mask
    return float("inf") if mse == 0 else float(20 * np.log10(2.0) - 10 * np.log10(mse))


def equivariance_psnr(mapping: Callable, synthesis_t: Callable, params, *, num_samples: int,
                      batch_size: int = 4, key: jax.Array | None = None, z_dim: int, c_dim: int = 0,
                      class_probs=None, translate_max: float = 0.125, rotate_max: float = 1.0,
                      eqt_int: bool = False, eqt_frac: bool = False, eqr: bool = False,
                      resolution: int | None = None, sample_z: Callable | None = None,
                      progress: bool = False) -> dict[str, float]:
    """EQ-T / EQ-T_frac / EQ-R PSNRs in dB (module doc) over `num_samples` latents ->
    {'eqt_int': .., 'eqt_frac': .., 'eqr': ..} for the requested ones.

    key: PRNG key (default jax.random.key(0)); batch b uses fold_in(key, b), so results are
      deterministic given key and batch_size (the transforms are drawn once per batch).
    resolution: the pixel grid EQ-T rounds to (G.img_resolution); default the image width.
    class_probs: label distribution for conditional generators (default uniform).
    sample_z: (key, n) -> [n, z_dim] latent prior (default N(0, I)).
    The last batch's surplus samples are dropped, so exactly num_samples images count.
    """
    if num_samples < 1:
        raise ValueError(f"equivariance: num_samples={num_samples} must be at least 1")
    if mapping is None or synthesis_t is None:
        raise ValueError("equivariance: the generator does not support user-specified image transformations "
                         "(it needs mapping and synthesis_t)")
    from gigajax.metrics.features import class_logits
    batch = make_equivariance_sampler(mapping, synthesis_t, batch_size=batch_size, z_dim=z_dim, c_dim=c_dim,
                                      translate_max=translate_max, rotate_max=rotate_max, eqt_int=eqt_int,
                                      eqt_frac=eqt_frac, eqr=eqr, resolution=resolution, sample_z=sample_z)
    logits = class_logits(class_probs, c_dim)
    key = jax.random.key(0) if key is None else key
    from tqdm.auto import tqdm
    totals: dict[str, np.ndarray] = {}
    steps = -(-num_samples // batch_size)
    pending = None
    for s in tqdm(range(steps + 1), desc="equivariance", disable=not progress, leave=False):
        out = batch(params, jax.random.fold_in(key, s), logits) if s < steps else None
        if pending is not None:                     # fetch the previous batch while this one runs
            n = min(batch_size, num_samples - (s - 1) * batch_size)
            for kind, (err, msk) in jax.device_get(pending).items():
                acc = np.array([np.asarray(err, np.float64)[:n].sum(), np.asarray(msk, np.float64)[:n].sum()])
                totals[kind] = totals.get(kind, 0) + acc
        pending = out
    return {kind: psnr_from_sums(*totals[kind]) for kind in EQ_KINDS if kind in totals}
