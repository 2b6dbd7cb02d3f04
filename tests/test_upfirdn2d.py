"""upfirdn2d against an independent formulation, plus gradients, transforms and errors."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_grads  # float64 gradient check

from gigajax import ops
from gigajax.ops import fir
from gigajax.ops.upfirdn2d import naive_upfirdn2d


RNG = np.random.RandomState(0)


def _x(n=2, h=7, w=6, c=3, dtype=np.float32):
    return jnp.asarray(RNG.randn(n, h, w, c).astype(dtype))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ref = np.linalg.norm(b)
    return np.linalg.norm(a - b) / ref if ref > 0 else np.linalg.norm(a)  # all-zero reference: want exact zeros


FILTERS = {
    "none": None,
    "1331_2d": ops.setup_filter([1, 3, 3, 1]),
    "sep5": np.array([0.5, 1.0, 2.0, 0.25, 0.1], np.float32),
    "asym2d": RNG.randn(3, 4).astype(np.float32),  # not rank 1: the 2-D polyphase path
    "sg3_12": ops.design_lowpass_filter(12, 2.0, 6.5, 16),
}
UPDOWN = [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (4, 2), ([2, 1], [1, 3])]
PADDINGS = [0, 2, [1, 3, -1, 2], [5, 4, 6, 3], [7, 6, 5, 8]]
# Every filter meets every up/down pair; paddings and flips rotate through the grid (keeps CI short).
CASES = [(f, ud, PADDINGS[i % len(PADDINGS)], bool(i % 3 == 1))
         for i, (f, ud) in enumerate(itertools.product(FILTERS, UPDOWN))]


@pytest.mark.parametrize("fname,updown,padding,flip", CASES, ids=lambda v: str(v))
def test_matches_zero_stuffed_reference(fname, updown, padding, flip):
    f = FILTERS[fname]
    up, down = updown
    x = _x(h=9, w=8)
    kw = dict(up=up, down=down, padding=padding, flip_filter=flip, gain=1.5)
    want = naive_upfirdn2d(x, f, **kw)
    if 0 in want.shape:  # the padding leaves nothing: we must refuse it by name
        with pytest.raises(ValueError, match="padding"):
            ops.upfirdn2d(x, f, **kw)
        return
    got = jax.jit(lambda x: ops.upfirdn2d(x, f, **kw))(x)
    assert got.shape == want.shape
    assert _rel(got, want) < 1e-5


def test_traced_filter_equals_concrete():
    # Under jit the filter is a tracer: no factorisation, the 2-D polyphase path runs instead.
    x = _x()
    f = ops.setup_filter([1, 3, 3, 1])
    concrete = ops.upsample2d(x, f)
    traced = jax.jit(lambda x, f: ops.upsample2d(x, f))(x, jnp.asarray(f))
    assert _rel(traced, concrete) < 1e-6


def test_separate_detects_rank_one():
    f = ops.setup_filter([1, 3, 3, 1])
    a, b = fir.separate(f)
    np.testing.assert_allclose(np.outer(a, b), f, atol=1e-7)
    assert fir.separate(RNG.randn(3, 3)) is None


@pytest.mark.parametrize("kw", [dict(up=2, padding=1), dict(down=2, padding=[1, 2, 2, 1]), dict(up=2, down=2, padding=2)])
def test_gradients(kw):
    # Reverse mode to second order (R1 through a resampling D). With a concrete filter the VJP is
    # a custom one (the adjoint upfirdn2d), so forward mode is not available, as in the official op.
    x = _x(1, 5, 6, 2)
    for f in (ops.setup_filter([1, 3, 3, 1]), np.array([1.0, 2.0, 1.0], np.float32)):
        check_grads(jax.jit(lambda x: ops.upfirdn2d(x, f, **kw)), (x,), order=2, modes=["rev"])
    # A traced filter takes plain autodiff, forward mode included.
    f = jnp.asarray(ops.setup_filter([1, 3, 3, 1]))
    check_grads(jax.jit(lambda x, f: ops.upfirdn2d(x, f, **kw)), (x, f), order=1, modes=["fwd", "rev"])


@pytest.mark.parametrize("up, down, padding, kind, flip", [
    (1, 1, 0, "sep", False), (2, 1, [3, 1, -1, 2], "2d", False), ([2, 1], [1, 2], 5, "sep", True),
    (4, 2, [7, 6, 7, 6], "sep", False), (1, 2, [-1, 2, 0, 3], "2d", True), (2, 2, 3, "none", False),
    (3, 1, 2, "rank1", False)])
def test_vjp_is_the_exact_adjoint(up, down, padding, kind, flip):
    # The custom VJP (an upfirdn2d with flipped filter, up and down swapped, adjoint padding)
    # equals the transpose of the textbook op, in float64, including crops and asymmetric filters.
    rng = np.random.RandomState(3)
    f = {"sep": rng.rand(5), "2d": rng.rand(4, 3), "none": None, "rank1": np.outer(rng.rand(3), rng.rand(4))}[kind]
    kw = dict(up=up, down=down, padding=padding, flip_filter=flip, gain=1.5)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.randn(2, 7, 9, 3))
        y, vjp = jax.vjp(lambda x: ops.upfirdn2d(x, f, **kw), x)
        y_ref, vjp_ref = jax.vjp(lambda x: naive_upfirdn2d(x, f, **kw), x)
        ct = jnp.asarray(rng.randn(*y.shape))
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(vjp(ct)[0], vjp_ref(ct)[0], rtol=1e-12, atol=1e-12)


def test_jit_vmap_dtype():
    f = ops.setup_filter([1, 3, 3, 1])
    x = _x(2, 6, 6, 3)
    y = jax.jit(lambda x: ops.downsample2d(x, f))(x)
    v = jax.vmap(lambda xi: ops.downsample2d(xi[None], f)[0])(x)
    assert _rel(v, y) < 1e-6
    xb = x.astype(jnp.bfloat16)
    yb = ops.upsample2d(xb, f)
    assert yb.dtype == jnp.bfloat16
    assert _rel(yb.astype(jnp.float32), ops.upsample2d(x, f)) < 1e-2


def test_shapes_of_helpers():
    x = _x(1, 8, 10, 2)
    f = ops.setup_filter([1, 3, 3, 1])
    assert ops.upsample2d(x, f).shape == (1, 16, 20, 2)
    assert ops.downsample2d(x, f).shape == (1, 4, 5, 2)
    assert ops.filter2d(x, f).shape == x.shape
    assert ops.upsample2d(x, f, up=[2, 1]).shape == (1, 8, 20, 2)


@pytest.mark.parametrize("call,match", [
    (lambda x: ops.upfirdn2d(x[0], None), r"x\.shape=\(8, 8, 2\): expected rank 4"),
    (lambda x: ops.upfirdn2d(x, None, up=0), r"up=0: expected integers >= 1"),
    (lambda x: ops.upfirdn2d(x, None, down=[1, 2, 3]), r"down=\[1, 2, 3\]"),
    (lambda x: ops.upfirdn2d(x, None, padding=-5), r"padding=\(-5, -5\): expected padding that leaves a non-empty output"),
    (lambda x: ops.upfirdn2d(x, np.ones((2, 2, 2))), r"f\.shape=\(2, 2, 2\)"),
    (lambda x: ops.upfirdn2d(x, None, padding=[1, 2, 3]), r"padding=\[1, 2, 3\]"),
    (lambda x: ops.upfirdn2d(x, None, up=1.5), r"up=1\.5"),
    (lambda x: ops.setup_filter([1, -1]), r"non-zero sum"),
    (lambda x: ops.setup_filter(np.zeros((1, 1, 1))), r"f\.shape"),
])
def test_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(_x(1, 8, 8, 2))
