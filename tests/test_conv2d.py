"""gigajax.ops.conv2d against lax.conv_general_dilated: values, gradients and second derivatives.

The module rewrites padding, crops and input dilation (same-shaped convolutions, polyphase
transposed convolutions); these tests pin that the rewrite is the same function to float64
rounding, and so are its first and second derivatives."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gigajax.ops.conv2d import conv2d, conv2d_dilated, conv2d_strided

_DN = ("NHWC", "HWIO", "NHWC")


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _ref(x, w, stride=1, pad=((0, 0), (0, 0)), up=1):
    return lax.conv_general_dilated(x, w, (stride, stride), pad, lhs_dilation=(up, up), dimension_numbers=_DN)


@pytest.mark.parametrize("kh,kw", [(1, 1), (2, 3), (3, 3)])
def test_dilated_and_strided_match_lax(kh, kw):
    rng = np.random.default_rng(kh * 10 + kw)
    checked = 0
    for (h, wd), up, p in itertools.product([(5, 7), (6, 4)], [1, 2, 3], [(0, 0), (1, 2), (-1, 1)]):
        x = jnp.asarray(rng.normal(size=(2, h, wd, 3)))
        w = jnp.asarray(rng.normal(size=(kh, kw, 3, 4)))
        pad = (p, p[::-1])
        ref = _ref(x, w, pad=pad, up=up)
        if min(ref.shape[1:3]) < 1:
            continue
        out = conv2d_dilated(x, w, up, pad)
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
        for s in ((1, 2, 3) if p == (0, 0) else ()):
            np.testing.assert_allclose(conv2d_strided(x, w, s), _ref(x, w, stride=s), rtol=0, atol=1e-12)
        checked += 1
    assert checked > 10


@pytest.mark.parametrize("case", ["valid", "pad", "stride", "up"])
def test_first_and_second_derivatives_match_lax(case):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 6, 5, 3)))
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 4)))
    ours, ref = {
        "valid": (conv2d, _ref),
        "pad": (lambda x, w: conv2d(x, w, ((1, 2), (2, 1))), lambda x, w: _ref(x, w, pad=((1, 2), (2, 1)))),
        "stride": (lambda x, w: conv2d_strided(x, w, 2), lambda x, w: _ref(x, w, stride=2)),
        "up": (lambda x, w: conv2d_dilated(x, w, 2, ((2, 1), (1, 2))), lambda x, w: _ref(x, w, pad=((2, 1), (1, 2)), up=2)),
    }[case]

    def loss(fn):
        return lambda x, w: jnp.sum(jnp.sin(fn(x, w)))

    def penalty(fn):   # an R1-like gradient of a gradient, w.r.t. both arguments
        return lambda x, w: jnp.sum(jax.grad(loss(fn))(x, w) ** 2) + jnp.sum(jnp.cos(jax.grad(loss(fn), 1)(x, w)))

    for f in (loss, penalty):
        for a, b in zip(jax.grad(f(ours), (0, 1))(x, w), jax.grad(f(ref), (0, 1))(x, w)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_low_precision_keeps_dtypes():
    x = jnp.ones((1, 4, 4, 2), jnp.bfloat16)
    w = jnp.ones((3, 3, 2, 5), jnp.float32)
    y, (dx, dw) = conv2d(x, w), jax.grad(lambda x, w: jnp.sum(conv2d(x, w).astype(jnp.float32)), (0, 1))(x, w)
    assert y.dtype == jnp.bfloat16 and dx.dtype == jnp.bfloat16 and dw.dtype == jnp.float32
