"""ops.depthwise_conv2d: the shift-and-add form against lax's grouped convolution (values,
gradients, second derivatives), over strides, odd sizes and TF-SAME asymmetric padding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gigajax import ops

CASES = [((2, 9, 7, 5), 3, 1, ((1, 1), (1, 1))),
         ((2, 8, 8, 4), 3, 2, ((0, 1), (0, 1))),
         ((1, 11, 10, 3), 5, 2, ((1, 2), (2, 2))),
         ((2, 6, 6, 2), 5, 1, ((2, 2), (2, 2))),
         ((1, 7, 9, 3), 3, 2, ((0, 0), (0, 0))),
         ((2, 8, 6, 3), (5, 1), 1, ((2, 2), (0, 0))),
         ((1, 9, 8, 2), (1, 3), 2, ((0, 0), (1, 1)))]


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("shape,k,stride,padding", CASES)
def test_matches_lax(shape, k, stride, padding):
    x = jax.random.normal(jax.random.PRNGKey(0), shape, jnp.float64)
    kh, kw = (k, k) if isinstance(k, int) else k
    w = jax.random.normal(jax.random.PRNGKey(1), (kh, kw, shape[3]), jnp.float64)
    ref = lambda x, w: ops.depthwise_conv2d(x, w, stride, padding, impl="lax")
    got = lambda x, w: ops.depthwise_conv2d(x, w, stride, padding, impl="shift")
    np.testing.assert_allclose(got(x, w), ref(x, w), rtol=1e-12, atol=1e-12)
    loss = lambda f: (lambda x, w: jnp.sum(jnp.sin(f(x, w)) * jnp.arange(f(x, w).size).reshape(f(x, w).shape)))
    for a, b in zip(jax.grad(loss(got), (0, 1))(x, w), jax.grad(loss(ref), (0, 1))(x, w)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    # The VJP is itself differentiable (a penalty on input gradients differentiates it again).
    pen = lambda f: (lambda w: jnp.sum(jnp.square(jax.grad(lambda x: jnp.sum(jnp.tanh(f(x, w))))(x))))
    np.testing.assert_allclose(jax.grad(pen(got))(w), jax.grad(pen(ref))(w), rtol=1e-9, atol=1e-9)


def test_hwio_weight_and_errors():
    x = jnp.ones((1, 5, 5, 3))
    w = jnp.ones((3, 3, 1, 3))
    assert ops.depthwise_conv2d(x, w, 1, ((1, 1), (1, 1))).shape == (1, 5, 5, 3)
    with pytest.raises(ValueError, match="I == 1"):
        ops.depthwise_conv2d(x, jnp.ones((3, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"w \[kh, kw, C\]"):
        ops.depthwise_conv2d(x, jnp.ones((3, 3, 4)))
    with pytest.raises(ValueError, match="impl"):
        ops.depthwise_conv2d(x, jnp.ones((3, 3, 3)), impl="cuda")
