"""Filtered leaky ReLU (StyleGAN3) as one fused Pallas kernel, with a fused Pallas backward.

Same arguments and semantics as the XLA path `gigajax.ops.filtered_lrelu` (NHWC, official
conventions). What differs is where the upsampled intermediate lives: the XLA path writes it to
memory between its two `upfirdn2d` passes (up**2 times the input, and again in the backward),
while these kernels keep it on chip and only read their inputs and write their outputs.

Kernel design
-------------
Along one axis every step of the op is linear except the activation, and over one output tile
each linear step is a small banded matrix:

    pre-activation rows   t = A x    A[i, r] = up * gu[up*r - i - phase]   (zero-stuff, pad, fu)
    output rows           y = D a    D[o, i] = gd[i - down*o]              (fd, keep every down-th)

`gu`/`gd` are the correlation taps, `x` the input rows the tile reads (filter halo included) and
`phase` where the tile's first pre-activation row falls in the zero-stuffed grid. The matrices are
the same for every tile of an axis except for that phase, which takes at most `up` values (one
for power-of-two factors), so they are built once with numpy at trace time. One grid step
(batch item and channel block, output row tile, output column tile) then runs

    X [RH, RW, CB]  --A_h-->  [TMh, RW, CB]  --A_w-->  T [TMw, TMh, CB]  --lrelu*gain, clamp-->
                    --D_w-->  [TOw, TMh, CB] --D_h-->  Y [TOh, TOw, CB]

as four 2-D matmuls (the axis being filtered leads, channels ride along in the trailing
dimension) and two transposes. Only X is read and only Y written: the upsampled pre-activation `T`
exists in registers and shared memory only. A 2-D (non-separable, e.g. radial) filter is split
by SVD into rank-1 terms `sum_r a_r b_r^T` (4 above float32 resolution for StyleGAN3's 12-tap
radial filter); the kernel runs one separable pass per term and sums them.

The backward is the same machinery run on transposed matrices. With t = Up(x) and
y = Down(act(t)), dx = Up^T(act'(t) * Down^T(dy)); per input-gradient tile the kernel recomputes
`t` from x (the `A` matmuls), expands dy with Down^T (an up-type matrix of the reversed fd taps),
multiplies by the activation's derivative and contracts with Up^T (a down-type matrix of the
reversed fu taps). Nothing of the upsampled size touches memory in either direction.

Dense banded matmuls do more multiply-adds than a polyphase loop (the band is K/up taps inside
RH columns); in exchange the kernels use only what Triton lowers: static power-of-two block
shapes, 2-D `dot`, reshapes and transposes of whole blocks, elementwise ops, loads at dynamic
offsets. No value slicing, strided access, gathers or scratch memory. The wrapper adds the bias,
pads the inputs (halo, channel blocks) and crops the outputs, so no load or store needs a mask.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from gigajax.ops import _args, fir
from gigajax.ops.bias_act import bias_act
from gigajax.ops.upfirdn2d import _taps, upfirdn2d

# Per-step budget of the live blocks, in elements. Compiled for sm_90 (Triton 3.9, `ptxas -v`), 8K
# float32 per step with 8 warps takes about 100-200 registers per thread and spills nothing at
# the StyleGAN3 layer shapes; 16K spills with 4 or 8 warps.
_TILE_BUDGET = 8192
_MAX_CHANNEL_BLOCK = 32
# Singular values below this fraction of the largest are under float32 resolution.
_RANK_TOL = 2.0 ** -26
_TILES = (32, 16, 8, 4, 2)


def _pow2(n):
    """Smallest power of two >= n."""
    return 1 << max(0, int(n) - 1).bit_length()


# ----------------------------------------------------------------------------------------------
# Tiling.


@dataclasses.dataclass(frozen=True)
class Read:
    """How the tiles of one axis read one kernel input.

    Tile t needs the zero-stuffed input (`factor - 1` zeros after every sample) from position
    `offset + t*step` on. It reads `length` samples from sample `first + (phase0 + t*step) // factor`
    of the unpadded input (`offset = first*factor + phase0`), and `phase = (phase0 + t*step) % factor`
    is where that position falls between two samples. lead/trail: zeros the wrapper pads the input
    with so that every read stays in range.
    """
    length: int
    first: int
    phase0: int
    step: int
    factor: int
    lead: int
    trail: int

    def origin(self, t):
        """(first sample read, in unpadded coordinates; phase) of tile t, a Python int."""
        n = self.phase0 + t * self.step
        return self.first + n // self.factor, n % self.factor

    @property
    def static_phase(self):
        """Every tile has the same phase (always so for power-of-two factors and tiles)."""
        return self.step % self.factor == 0

    @property
    def phases(self):
        """The phases the matrices are built for, indexed by `start`'s second result."""
        return [self.phase0] if self.static_phase else list(range(self.factor))

    def start(self, t):
        """(row of the padded input where tile t starts, index into `phases`); t may be traced."""
        if self.static_phase:
            return self.first + self.lead + t * (self.step // self.factor), 0
        n = self.phase0 + t * self.step
        phase = n % self.factor
        return self.first + self.lead + (n - phase) // self.factor, phase


def make_read(size, tiles, offset, step, factor, rows, taps):
    """Plan the reads of an input of `size` samples by `tiles` tiles.

    Each tile filters `rows` positions of the zero-stuffed input with `taps` taps, from position
    `offset + t*step` on.
    """
    # Tile inputs are the samples r with factor*r in [phase, phase + rows - 1 + taps - 1], worst phase.
    length = _pow2((factor - 1 + rows - 1 + taps - 1) // factor + 1)
    read = Read(length, offset // factor, offset % factor, step, factor, 0, 0)
    last = read.origin(tiles - 1)[0]
    return dataclasses.replace(read, lead=max(0, -read.first), trail=max(0, last + length - size))


@dataclasses.dataclass(frozen=True)
class AxisPlan:
    """Static tiling of one spatial axis, for the forward and the backward kernel.

    size: input length; up, down, pad0, pad1: the op's arguments for this axis; ku, kd: filter taps.
    mid: length of the pre-activation signal (after zero-stuff, pad and fu); out: output length.
    tile, tiles, mid_tile: forward output samples per tile, number of tiles (the last may stick
      out), pre-activation samples per tile ((tile-1)*down + kd, rounded up to a power of two).
    x: how forward tiles read the input.
    btile, btiles, bmid_tile: the same for the backward, whose tiles are input-gradient tiles.
    bx, bdy: how backward tiles read the input (to recompute the pre-activation) and the output gradient.
    """
    size: int
    up: int
    down: int
    pad0: int
    pad1: int
    ku: int
    kd: int
    mid: int
    out: int
    tile: int
    tiles: int
    mid_tile: int
    x: Read
    btile: int
    btiles: int
    bmid_tile: int
    bx: Read
    bdy: Read


def _best_tile(useful, span, cap):
    """Tile size from `_TILES` (at most `cap`, at least 2).

    useful(t): samples of its span that tile t needs; span(t): samples it computes (a power of two).
    Among tiles whose span fits 32 (else those of the smallest span), the one that wastes the least
    of its span, then the largest.
    """
    cands = [t for t in _TILES if t <= max(cap, 2)]
    fits = [t for t in cands if span(t) <= 32] or [t for t in cands if span(t) == min(map(span, cands))]
    return max(fits, key=lambda t: (useful(t) / span(t), t))


def plan_axis(size, up, down, pad0, pad1, ku, kd, tile=None):
    """Tile one axis: `size` inputs, `ku`/`kd`-tap up/down filters, official padding."""
    mid = fir.plan_axis(size, ku, up, 1, pad0, pad1).out      # validates, as the XLA path does
    out = fir.plan_axis(mid, kd, 1, down, 0, 0).out

    def fspan(t):
        return _pow2((t - 1) * down + kd)

    def bspan(t):
        return _pow2((t - 1) * up + ku)

    ftile = tile or _best_tile(lambda t: t * down, fspan, _pow2(out))
    tiles = -(-out // ftile)
    x = make_read(size, tiles, -pad0, ftile * down, up, fspan(ftile), ku)
    # Backward tile t covers inputs [t*bt, (t+1)*bt), which meet pre-activation positions from
    # up*t*bt + pad0 - (ku - 1) on (upsampled coordinates: offsets are relative to input sample 0).
    btile = tile or _best_tile(lambda t: t * up, bspan, _pow2(size))
    btiles = -(-size // btile)
    bx = make_read(size, btiles, 1 - ku, btile * up, up, bspan(btile), ku)
    bdy = make_read(out, btiles, pad0 - ku - kd + 2, btile * up, down, bspan(btile), kd)
    return AxisPlan(size, up, down, pad0, pad1, ku, kd, mid, out, ftile, tiles, fspan(ftile), x,
                    btile, btiles, bspan(btile), bx, bdy)


# ----------------------------------------------------------------------------------------------
# Resampling matrices.


def _rank1_terms(f, flip_filter):
    """Filter -> tuple of (H taps, W taps) correlation pairs whose outer products sum to it.

    A 1-D filter is one term (the same taps along both axes); a 2-D filter is split by SVD and
    keeps the terms above float32 resolution (one for a separable filter, a few for radial ones).
    """
    if f is None:
        return ((np.ones(1), np.ones(1)),)
    g = np.asarray(_taps(np.asarray(f, np.float64), flip_filter), np.float64)
    if g.ndim == 1:
        return ((g, g),)
    u, s, vt = np.linalg.svd(g)
    if s[0] == 0:
        return ((np.zeros(g.shape[0]), np.zeros(g.shape[1])),)
    return tuple((u[:, r] * np.sqrt(s[r]), vt[r] * np.sqrt(s[r])) for r in range(len(s)) if s[r] > s[0] * _RANK_TOL)


def up_matrix(taps, up, phase, rows, cols):
    """`[rows, cols]` A with A[i, r] = taps[up*r - i - phase] (0 outside the filter).

    Row i of a tile's output = sum_r A[i, r] * (input row r of the tile): the zero-stuffed,
    FIR-filtered signal without ever forming the zeros.
    """
    k = up * np.arange(cols)[None, :] - np.arange(rows)[:, None] - phase
    inside = (k >= 0) & (k < len(taps))
    return np.where(inside, np.asarray(taps)[np.clip(k, 0, len(taps) - 1)], 0.0)


def down_matrix(taps, down, rows, cols):
    """`[rows, cols]` D with D[o, i] = taps[i - down*o]: filter, then keep every down-th sample."""
    k = np.arange(cols)[None, :] - down * np.arange(rows)[:, None]
    inside = (k >= 0) & (k < len(taps))
    return np.where(inside, np.asarray(taps)[np.clip(k, 0, len(taps) - 1)], 0.0)


def _read_matrix(terms, read, rows, gain, axis):
    """Up-type matrices of a read `[phases, R, rows, length]`, from the taps of `axis` (0 = H, 1 = W)
    of each rank term."""
    return np.stack([np.stack([up_matrix(g[axis] * gain, read.factor, p, rows, read.length) for g in terms])
                     for p in read.phases])


def _contract_matrix(terms, factor, rows, mid, gain, axis):
    """Down-type matrices `[R, rows, mid]` from the taps of `axis` (0 = H, 1 = W) of each rank term."""
    return np.stack([down_matrix(g[axis] * gain, factor, rows, mid) for g in terms])


# ----------------------------------------------------------------------------------------------
# Plan.


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything static about one call: tiling, filters (as tuples, so the plan is hashable), activation."""
    h: AxisPlan
    w: AxisPlan
    channels: int
    cblock: int
    bcblock: int
    fu: tuple | None
    fd: tuple | None
    flip_filter: bool
    gain: float
    slope: float
    clamp: float | None
    interpret: bool
    backward: str

    @property
    def padding(self):
        return [self.w.pad0, self.w.pad1, self.h.pad0, self.h.pad1]

    @property
    def up_identity(self):
        """The up pass is the identity (up 1, no fu): the kernels skip its matmuls."""
        return self.h.up == 1 and self.fu is None

    @property
    def down_identity(self):
        """The down pass is the identity (down 1, no fd): the kernels skip its matmuls."""
        return self.h.down == 1 and self.fd is None

    def filter(self, name):
        f = getattr(self, name)
        return None if f is None else np.asarray(f, np.float32)

    def forward_matrices(self, dtype):
        """ah `[phases, R, TMh, RH]`, aw `[phases, R, TMw, RW]` (read the input), dw `[Rd, TOw, TMw]`,
        dh `[Rd, TOh, TMh]` (contract to the output tile); R, Rd: rank terms of fu, fd."""
        h, w = self.h, self.w
        up = _rank1_terms(self.filter("fu"), self.flip_filter)
        down = _rank1_terms(self.filter("fd"), self.flip_filter)
        mats = (_read_matrix(up, h.x, h.mid_tile, h.up, 0), _read_matrix(up, w.x, w.mid_tile, w.up, 1),
                _contract_matrix(down, w.down, w.tile, w.mid_tile, 1.0, 1),
                _contract_matrix(down, h.down, h.tile, h.mid_tile, 1.0, 0))
        return tuple(np.asarray(m, dtype) for m in mats)

    def backward_matrices(self, dtype):
        """ah, aw (recompute the pre-activation), eh, ew (Down^T of dy), vw, vh (Up^T); layouts as
        `forward_matrices`.

        Transposing a resampling reverses its taps: Down^T reads dy like an upsampling by `down`
        with the reversed fd, and Up^T contracts like a downsampling by `up` with the reversed fu.
        """
        h, w = self.h, self.w
        up = _rank1_terms(self.filter("fu"), self.flip_filter)
        down = _rank1_terms(self.filter("fd"), self.flip_filter)
        up_t = tuple((gy[::-1], gx[::-1]) for gy, gx in up)
        down_t = tuple((gy[::-1], gx[::-1]) for gy, gx in down)
        mats = (_read_matrix(up, h.bx, h.bmid_tile, h.up, 0), _read_matrix(up, w.bx, w.bmid_tile, w.up, 1),
                _read_matrix(down_t, h.bdy, h.bmid_tile, 1.0, 0), _read_matrix(down_t, w.bdy, w.bmid_tile, 1.0, 1),
                _contract_matrix(up_t, w.up, w.btile, w.bmid_tile, w.up, 1),
                _contract_matrix(up_t, h.up, h.btile, h.bmid_tile, h.up, 0))
        return tuple(np.asarray(m, dtype) for m in mats)


def _as_tuple(f):
    return None if f is None else tuple(np.asarray(f, np.float64).tolist())


def _concrete_filter(name, f):
    """Filters become matrices at trace time, so they must be concrete (numpy, or a jax array outside jit)."""
    if f is None:
        return None
    if isinstance(f, jax.core.Tracer):
        _args.fail(name, f, "a concrete filter (numpy array or None) for the Pallas path; use impl='xla' "
                   "for filters that are traced")
    f = np.asarray(f, np.float32)
    _args.filter_size(f, name)
    return f


def _channel_block(c, spans, live):
    """Largest power-of-two channel block (<= 32, <= next_pow2(c)) whose `live` largest blocks fit the budget."""
    cb = max(1, min(_pow2(c), _MAX_CHANNEL_BLOCK, _TILE_BUDGET // (live * max(spans))))
    return 1 << (cb.bit_length() - 1)


def make_plan(x_shape, fu, fd, up, down, padding, gain, slope, clamp, flip_filter, interpret, block=None,
              backward="pallas"):
    """Validate the arguments (same checks and messages as the XLA path) and tile the problem.

    block: None for the default tiling, or (rows, columns, channels) of the tile each grid step
      writes (output tile in the forward, input-gradient tile in the backward), powers of two.
    backward: 'pallas' (fused kernel) or 'xla' (`upfirdn2d` passes) for the VJP.
    """
    up = _args.as_int("up", up, 1)
    down = _args.as_int("down", down, 1)
    if not gain > 0:
        _args.fail("gain", gain, "a value > 0")
    if not slope >= 0:
        _args.fail("slope", slope, "a value >= 0")
    if clamp is not None and clamp < 0:
        _args.fail("clamp", clamp, "None or a value >= 0")
    if backward not in ("pallas", "xla"):
        _args.fail("backward", backward, "'pallas' or 'xla'")
    fu = _concrete_filter("fu", fu)
    fd = _concrete_filter("fd", fd)
    px0, px1, py0, py1 = _args.parse_padding(padding)
    fuw, fuh = _args.filter_size(fu, "fu")
    fdw, fdh = _args.filter_size(fd, "fd")
    if block is not None:
        if not (isinstance(block, (tuple, list)) and len(block) == 3 and
                all(isinstance(v, int) and v >= 1 and v & (v - 1) == 0 for v in block)):
            _args.fail("block", block, "None or (rows, columns, channels), each a power of two")
    th, tw, cb = block if block is not None else (None, None, None)
    _, h, w, c = x_shape
    ph = plan_axis(h, up, down, py0, py1, fuh, fdh, th)
    pw = plan_axis(w, up, down, px0, px1, fuw, fdw, tw)
    fcb = cb or _channel_block(c, [ph.mid_tile * pw.mid_tile, ph.x.length * pw.x.length, ph.tile * pw.tile], 1)
    # The backward holds the recomputed pre-activation and the expanded gradient at once.
    bcb = cb or _channel_block(c, [ph.bmid_tile * pw.bmid_tile, ph.bx.length * pw.bx.length,
                                   ph.bdy.length * pw.bdy.length], 2)
    return Plan(ph, pw, c, fcb, bcb, _as_tuple(fu), _as_tuple(fd), bool(flip_filter), float(gain), float(slope),
                None if clamp is None else float(clamp), bool(interpret), backward)


# ----------------------------------------------------------------------------------------------
# Kernels.


def activation(t, gain, slope, clamp):
    """The op's nonlinearity, written as `bias_act` computes it: lrelu, times gain, clamp."""
    t = jnp.where(t >= 0, t, t * slope)
    if gain != 1:
        t = t * gain
    if clamp is not None:
        t = jnp.clip(t, -clamp, clamp)
    return t


def _swap_leading(v, a, b, c):
    """`[a, b*c]` (read as [a, b, c]) -> `[b, a*c]`: brings the next axis to filter to the front."""
    return jnp.transpose(v.reshape(a, b, c), (1, 0, 2)).reshape(b, a * c)


def _dot(a, b):
    return jnp.dot(a.astype(b.dtype), b, precision=jax.lax.Precision.HIGHEST, preferred_element_type=b.dtype)


def _sum_terms(count, term):
    """sum_r term(r) over the rank terms of a filter.

    A loop rather than one wider matmul, so that only one term's blocks are live at a time (and the
    matrices are loaded where they are used): stacking 4 radial terms spilled heavily on sm_90.
    """
    if count == 1:
        return term(0)
    return jax.lax.fori_loop(1, count, lambda r, acc: acc + term(r), term(0))


def _expand(v, ah_ref, aw_ref, ph, pw, rows_h, rows_w, cols_w, cb, identity):
    """Up-type pass over a tile: `[RH, RW*CB]` -> W-major `[rows_w, rows_h*CB]`.

    ah_ref `[phases, R, rows_h, RH]`, aw_ref `[phases, R, rows_w, RW]` (RW = cols_w), used at phases
    ph and pw; identity skips the matmuls (then rows_h = RH and rows_w = RW).
    """
    if identity:
        return _swap_leading(v, rows_h, cols_w, cb)

    def term(r):
        u = _dot(ah_ref[ph, r], v)                           # [rows_h, RW*CB]
        u = _swap_leading(u, rows_h, cols_w, cb)             # [RW, rows_h*CB]
        return _dot(aw_ref[pw, r], u)                        # [rows_w, rows_h*CB]
    return _sum_terms(ah_ref.shape[1], term)


def _contract(v, dw_ref, dh_ref, rows_h, rows_w, mid_h, cb, identity):
    """Down-type pass over a W-major tile: `[TMw, mid_h*CB]` -> `[rows_h, rows_w*CB]`.

    dw_ref `[R, rows_w, TMw]`, dh_ref `[R, rows_h, mid_h]`; identity skips the matmuls.
    """
    if identity:
        return _swap_leading(v, rows_w, mid_h, cb)

    def term(r):
        u = _dot(dw_ref[r], v)                               # [rows_w, mid_h*CB]
        u = _swap_leading(u, rows_w, mid_h, cb)              # [mid_h, rows_w*CB]
        return _dot(dh_ref[r], u)                            # [rows_h, rows_w*CB]
    return _sum_terms(dw_ref.shape[0], term)


def _load(ref, read_h, read_w, dtype):
    """The `[RH, RW*CB]` input tile of this grid step and its phase indices (h, w)."""
    from jax.experimental import pallas as pl

    row, phase_h = read_h.start(pl.program_id(1))
    col, phase_w = read_w.start(pl.program_id(2))
    v = ref[pl.ds(row, read_h.length), pl.ds(col, read_w.length), :].astype(dtype)
    return v.reshape(read_h.length, read_w.length * v.shape[-1]), phase_h, phase_w


def _forward_kernel(x_ref, ah_ref, aw_ref, dw_ref, dh_ref, y_ref, *, plan, dtype):
    """One (batch item and channel block, output row tile, output column tile) step of the forward.

    x_ref: `[Hp, Wp, CB]` padded, biased input of this batch item and channel block (read in part).
    ah_ref, aw_ref, dw_ref, dh_ref: `plan.forward_matrices`.  y_ref: `[TOh, TOw, CB]` output tile.
    """
    h, w, cb = plan.h, plan.w, plan.cblock
    x, ph, pw = _load(x_ref, h.x, w.x, dtype)
    t = _expand(x, ah_ref, aw_ref, ph, pw, h.mid_tile, w.mid_tile, w.x.length, cb, plan.up_identity)
    a = activation(t, plan.gain, plan.slope, plan.clamp)
    y = _contract(a, dw_ref, dh_ref, h.tile, w.tile, h.mid_tile, cb, plan.down_identity)
    y_ref[...] = y.reshape(h.tile, w.tile, cb).astype(y_ref.dtype)


def _backward_kernel(x_ref, g_ref, ah_ref, aw_ref, eh_ref, ew_ref, vw_ref, vh_ref, dx_ref, *, plan, dtype):
    """One (batch item and channel block, input row tile, input column tile) step of the backward.

    x_ref: `[Hp, Wp, CB]` padded, biased input; g_ref: `[Lp, Kp, CB]` padded output gradient.
    The matrices are `plan.backward_matrices`.  dx_ref: `[TIh, TIw, CB]` input-gradient tile.
    """
    h, w, cb = plan.h, plan.w, plan.bcblock
    g, ph, pw = _load(g_ref, h.bdy, w.bdy, dtype)
    da = _expand(g, eh_ref, ew_ref, ph, pw, h.bmid_tile, w.bmid_tile, w.bdy.length, cb, plan.down_identity)
    x, ph, pw = _load(x_ref, h.bx, w.bx, dtype)
    t = _expand(x, ah_ref, aw_ref, ph, pw, h.bmid_tile, w.bmid_tile, w.bx.length, cb, plan.up_identity)
    # The derivative of the very expression the forward evaluates (so clamp ties match XLA's).
    _, act_vjp = jax.vjp(lambda t: activation(t, plan.gain, plan.slope, plan.clamp), t)
    (dt,) = act_vjp(da)
    dx = _contract(dt, vw_ref, vh_ref, h.btile, w.btile, h.bmid_tile, cb, plan.up_identity)
    dx_ref[...] = dx.reshape(h.btile, w.btile, cb).astype(dx_ref.dtype)


# ----------------------------------------------------------------------------------------------
# Wrappers.


def _compute_dtype(dtype):
    """float32 for float32 and narrower inputs (bf16/fp16 accumulate in float32), float64 for float64."""
    return jnp.promote_types(dtype, jnp.float32)


def _compiler_params(plan, live):
    """Triton settings for a compiled GPU kernel (pallas_call's default GPU backend may be Mosaic GPU,
    which lacks the dot and transposes these kernels need); None in interpret mode and on TPU."""
    if plan.interpret or jax.default_backend() == "tpu":
        return None
    from jax.experimental.pallas import triton as pltriton
    return pltriton.CompilerParams(num_warps=8 if live > _TILE_BUDGET // 4 else 4, num_stages=1)


def _pad_input(v, read_h, read_w, channels):
    """Zero-pad `[N, H, W, C]` for `read_h`/`read_w` and to `channels` channels."""
    c = v.shape[-1]
    return jnp.pad(v, [(0, 0), (read_h.lead, read_h.trail), (read_w.lead, read_w.trail), (0, channels - c)])


def _call(kernel, plan, inputs, mats, n, cb, tiles, tile, dtype, live, name):
    """pallas_call over (batch x channel blocks, row tiles, column tiles).

    inputs: padded `[N, Hp, Wp, Cp]` arrays, each a per-(batch item, channel block) block read in
    part by the kernel; mats: whole-array matrices; tile: (rows, columns) the kernel writes.
    """
    from jax.experimental import pallas as pl

    cblocks = inputs[0].shape[-1] // cb

    def image(v):
        return pl.BlockSpec((None, v.shape[1], v.shape[2], cb), lambda i, j, k: (i // cblocks, 0, 0, i % cblocks))

    def whole(m):
        return pl.BlockSpec(m.shape, lambda i, j, k: (0,) * m.ndim)

    return pl.pallas_call(
        kernel,
        grid=(n * cblocks, tiles[0], tiles[1]),
        in_specs=[image(v) for v in inputs] + [whole(m) for m in mats],
        out_specs=pl.BlockSpec((None, tile[0], tile[1], cb), lambda i, j, k: (i // cblocks, j, k, i % cblocks)),
        out_shape=jax.ShapeDtypeStruct((n, tiles[0] * tile[0], tiles[1] * tile[1], cblocks * cb), dtype),
        interpret=plan.interpret,
        compiler_params=_compiler_params(plan, live),
        name=name,
    )(*inputs, *(jnp.asarray(m) for m in mats))


def _forward(plan, xb):
    """The fused forward on a biased input `xb` `[N, H, W, C]` -> `[N, out_h, out_w, C]`."""
    h, w, cb = plan.h, plan.w, plan.cblock
    n, _, _, c = xb.shape
    dtype = _compute_dtype(xb.dtype)
    xp = _pad_input(xb, h.x, w.x, -(-c // cb) * cb)
    live = max(h.mid_tile * w.mid_tile, h.x.length * w.x.length) * cb
    y = _call(functools.partial(_forward_kernel, plan=plan, dtype=dtype), plan, [xp], plan.forward_matrices(dtype),
              n, cb, (h.tiles, w.tiles), (h.tile, w.tile), xb.dtype, live, "filtered_lrelu")
    return y[:, :h.out, :w.out, :c]


def _backward_pallas(plan, xb, dy):
    """d(loss)/d(xb) `[N, H, W, C]` from dy `[N, out_h, out_w, C]`, fused (see the module docstring)."""
    h, w, cb = plan.h, plan.w, plan.bcblock
    n, hh, ww, c = xb.shape
    dtype = _compute_dtype(jnp.promote_types(xb.dtype, dy.dtype))
    cp = -(-c // cb) * cb
    xp = _pad_input(xb, h.bx, w.bx, cp)
    gp = _pad_input(dy, h.bdy, w.bdy, cp)
    live = 2 * h.bmid_tile * w.bmid_tile * cb
    dx = _call(functools.partial(_backward_kernel, plan=plan, dtype=dtype), plan, [xp, gp],
               plan.backward_matrices(dtype), n, cb, (h.btiles, w.btiles), (h.btile, w.btile), xb.dtype, live,
               "filtered_lrelu_backward")
    return dx[:, :hh, :ww, :c]


def _backward_xla(plan, xb, dy):
    """The same gradient with `upfirdn2d` passes (the pre-activation round-trips through memory).

    y = Down(act(Up(xb))), so dxb = Up^T(act'(t) * Down^T(dy)) with t = Up(xb). Down^T is an upfirdn
    that upsamples by `down` with the flipped fd; Up^T one that filters with the flipped fu and keeps
    every `up`-th sample, with the padding mirrored so that it lands back on the input grid.
    """
    h, w = plan.h, plan.w
    fu, fd = plan.filter("fu"), plan.filter("fd")
    t = upfirdn2d(xb, fu, up=h.up, padding=plan.padding, gain=h.up ** 2, flip_filter=plan.flip_filter)
    _, act_vjp = jax.vjp(lambda t: bias_act(t, act="lrelu", alpha=plan.slope, gain=plan.gain, clamp=plan.clamp), t)
    da = upfirdn2d(dy, fd, up=h.down, flip_filter=not plan.flip_filter,
                   padding=[w.kd - 1, w.mid - w.out * w.down, h.kd - 1, h.mid - h.out * h.down])
    (dt,) = act_vjp(da.astype(t.dtype))
    return upfirdn2d(dt, fu, down=h.up, gain=h.up ** 2, flip_filter=not plan.flip_filter,
                     padding=[w.ku - 1 - w.pad0, w.ku - 1 - w.pad1, h.ku - 1 - h.pad0, h.ku - 1 - h.pad1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused(plan, xb):
    return _forward(plan, xb)


def _fused_fwd(plan, xb):
    return _forward(plan, xb), xb


def _fused_bwd(plan, xb, dy):
    backward = _backward_pallas if plan.backward == "pallas" else _backward_xla
    return (backward(plan, xb, dy).astype(xb.dtype),)


_fused.defvjp(_fused_fwd, _fused_bwd)


def filtered_lrelu_pallas(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=np.sqrt(2), slope=0.2,
                          clamp=None, flip_filter=False, *, interpret=None, block=None, backward="pallas"):
    """Filtered leaky ReLU for a batch of NHWC images, as one fused Pallas kernel.

    Same semantics as `gigajax.ops.filtered_lrelu` (official arguments):

    1. add the per-channel bias `b`;
    2. upsample by `up` (zero insertion), pad by `padding`, convolve with `fu` (gain up**2);
    3. leaky ReLU with `slope`, multiply by `gain`, clamp to [-clamp, clamp];
    4. convolve with `fd` and keep every `down`-th pixel.

    Args:
      x: `[N, H, W, C]`, float32 (bf16/fp16 compute in float32, float64 in float64).
      fu, fd: up/down FIR filters, `[taps]`, `[fh, fw]` or None (identity); concrete (numpy),
        because they become the kernels' resampling matrices at trace time.
      b: optional bias `[C]`.
      up, down: integer factors >= 1.
      padding: int, `[x, y]` or `[x0, x1, y0, y1]`, with respect to the upsampled image.
      gain, slope, clamp: activation parameters (clamp None disables).
      flip_filter: False = convolution, True = correlation.
      interpret: run the kernels in Pallas interpret mode; None = when the default backend is CPU.
      block: None, or (rows, columns, channels) of the tile one grid step writes, powers of two
        (tuning; the forward's output tile and the backward's input-gradient tile).
      backward: 'pallas' (fused backward kernel) or 'xla' (`upfirdn2d` passes).

    Returns:
      `[N, (H*up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + down - 1) // down, ..., C]`, dtype of x.
      Differentiable with respect to x and b (custom VJP); the filters are constants.
    """
    _args.check_rank("x", x, (4,), "[N, H, W, C]")
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    elif not interpret and jax.default_backend() == "cpu":
        _args.fail("interpret", interpret, "True or None on a CPU backend (Pallas compiles only for GPU/TPU)")
    plan = make_plan(np.shape(x), fu, fd, up, down, padding, gain, slope, clamp, flip_filter, interpret, block,
                     backward)
    x = jnp.asarray(x)
    if b is not None:
        x = bias_act(x, b, dim=3)  # same check and rounding as the XLA path; its gradient gives db
    return _fused(plan, x)
