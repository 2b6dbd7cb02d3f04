"""bias_act, conv2d_resample, the modulated convolutions and filtered_lrelu: cross-checks between
formulations, gradients, dtypes and argument errors (golden parity lives in test_golden.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from conftest import check_grads  # float64 gradient check

from gigajax import ops
from gigajax.ops.upfirdn2d import naive_upfirdn2d


RNG = np.random.RandomState(1)
F1331 = ops.setup_filter([1, 3, 3, 1])


def _a(*shape):
    return jnp.asarray(RNG.randn(*shape).astype(np.float32))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _dense(x, w, stride=1, flip_weight=True, groups=1):
    if not flip_weight:
        w = w[::-1, ::-1]
    return lax.conv_general_dilated(x, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    feature_group_count=groups)


@pytest.mark.parametrize("act", sorted(ops.ACTIVATIONS))
def test_bias_act_gradients(act):
    x, b = _a(2, 3, 3, 4), _a(4)
    check_grads(jax.jit(lambda x, b: ops.bias_act(x + 0.05, b, act=act)), (x, b), order=1, modes=["rev"])


def test_bias_act_defaults_and_clamp():
    x = _a(5, 6)
    np.testing.assert_allclose(ops.bias_act(x, act="lrelu"), jnp.where(x >= 0, x, 0.2 * x) * np.sqrt(2), rtol=1e-6)
    assert float(jnp.max(jnp.abs(ops.bias_act(x * 10, act="relu", clamp=0.5)))) == 0.5
    with pytest.raises(ValueError, match=r"act='gelu'"):
        ops.bias_act(x, act="gelu")
    with pytest.raises(ValueError, match=r"b\.shape=\(5,\): expected \[6\]"):
        ops.bias_act(x, _a(5))
    with pytest.raises(ValueError, match=r"clamp=-1"):
        ops.bias_act(x, clamp=-1)


@pytest.mark.parametrize("up,down,k,padding,flip_weight,groups", [
    (2, 1, 3, 1, False, 1), (2, 1, 3, 1, True, 2), (2, 1, 1, 0, True, 1), (1, 2, 3, 1, True, 1),
    (1, 2, 1, 0, True, 1), (1, 1, 3, [2, 0, 1, 1], False, 1), (2, 2, 3, 1, True, 1), (4, 1, 3, 0, True, 1)])
def test_conv2d_resample_matches_general_form(up, down, k, padding, flip_weight, groups):
    # The official fallback path: upfirdn (zero-stuff + pad + filter) -> valid conv -> filter + subsample.
    x, w = _a(2, 6, 5, 4), _a(k, k, 4 // groups, 6)
    f = F1331 if up > 1 or down > 1 else None
    got = jax.jit(lambda x, w: ops.conv2d_resample(x, w, f, up=up, down=down, padding=padding, groups=groups,
                                                   flip_weight=flip_weight))(x, w)
    fw = 4 if f is not None else 1
    px0, px1, py0, py1 = (padding,) * 4 if isinstance(padding, int) else padding
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fw + up - 1) // 2, py1 + (fw - up) // 2
    if down > 1:
        px0, px1, py0, py1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fw - down + 1) // 2, py1 + (fw - down) // 2
    y = naive_upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up ** 2)
    if down > 1 and up == 1:
        y = naive_upfirdn2d(y, f)
        want = _dense(y, w, stride=down, flip_weight=flip_weight, groups=groups)
    else:
        y = _dense(y, w, flip_weight=flip_weight, groups=groups)
        want = naive_upfirdn2d(y, f, down=down) if down > 1 else y
    assert got.shape == want.shape
    assert _rel(got, want) < 1e-5


def test_conv2d_resample_gradients_and_errors():
    x, w = _a(1, 5, 5, 2), _a(3, 3, 2, 3)
    check_grads(jax.jit(lambda x, w: ops.conv2d_resample(x, w, F1331, up=2, padding=1)), (x, w), order=1, modes=["rev"])
    check_grads(jax.jit(lambda x, w: ops.conv2d_resample(x, w, F1331, down=2, padding=1)), (x, w), order=1, modes=["rev"])
    with pytest.raises(ValueError, match=r"w\.shape=\(3, 3, 4, 3\)"):
        ops.conv2d_resample(x, _a(3, 3, 4, 3))
    with pytest.raises(ValueError, match=r"up=0"):
        ops.conv2d_resample(x, w, F1331, up=0)
    with pytest.raises(ValueError, match=r"w\.shape=\(3, 3\)"):
        ops.conv2d_resample(x, _a(3, 3))


@pytest.mark.parametrize("up,demodulate", [(1, True), (2, True), (1, False)])
def test_modulated_conv2d_fused_equals_unfused(up, demodulate):
    x, w, s, noise = _a(3, 5, 5, 4), _a(3, 3, 4, 6), _a(3, 4), _a(3, 5 * up, 5 * up, 1)
    kw = dict(noise=noise, up=up, padding=1, resample_filter=F1331 if up > 1 else None, demodulate=demodulate,
              flip_weight=up == 1)
    fused = ops.modulated_conv2d(x, w, s, fused_modconv=True, **kw)
    unfused = ops.modulated_conv2d(x, w, s, fused_modconv=False, **kw)
    assert _rel(fused, unfused) < 1e-5


def test_modulated_conv2d_demodulation_normalises():
    # With unit-variance input and demodulation, every output channel has about unit variance.
    x, w, s = _a(16, 16, 16, 32), _a(3, 3, 32, 8), _a(16, 32) * 3
    y = ops.modulated_conv2d(x, w, s, padding=1, fused_modconv=False)
    assert abs(float(jnp.std(y[:, 2:-2, 2:-2])) - 1) < 0.1


def test_modulated_conv2d_gradients_and_errors():
    x, w, s = _a(2, 4, 4, 3), _a(3, 3, 3, 2), _a(2, 3)
    for fused in (True, False):
        check_grads(jax.jit(lambda x, w, s: ops.modulated_conv2d(x, w, s, padding=1, fused_modconv=fused)),
                    (x, w, s), order=1, modes=["rev"])
    check_grads(jax.jit(lambda x, w, s: ops.modulated_conv2d_sg3(x, w, s, padding=1, input_gain=jnp.float32(0.7))),
                (x, w, s), order=1, modes=["rev"])
    with pytest.raises(ValueError, match=r"styles\.shape=\(2, 4\): expected \[2, 3\]"):
        ops.modulated_conv2d(x, w, _a(2, 4))
    with pytest.raises(ValueError, match=r"input_gain\.shape=\(5,\)"):
        ops.modulated_conv2d_sg3(x, w, s, input_gain=_a(5))


def test_modulated_conv2d_bf16():
    x, w, s = _a(2, 8, 8, 16), _a(3, 3, 16, 16), _a(2, 16)
    ref = ops.modulated_conv2d(x, w, s, padding=1)
    y = ops.modulated_conv2d(x.astype(jnp.bfloat16), w, s, padding=1)
    assert y.dtype == jnp.bfloat16
    assert _rel(y.astype(jnp.float32), ref) < 2e-2


def _flrelu_reference(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    y = naive_upfirdn2d(x + b, fu, up=up, padding=padding, gain=up ** 2)
    y = jnp.where(y >= 0, y, y * slope) * gain
    y = jnp.clip(y, -clamp, clamp) if clamp is not None else y
    return naive_upfirdn2d(y, fd, down=down)


@pytest.mark.parametrize("up,down,radial", [(2, 2, False), (1, 2, False), (2, 1, False), (2, 2, True), (4, 2, False)])
def test_filtered_lrelu_matches_reference(up, down, radial):
    x, b = _a(2, 10, 10, 3), _a(3)
    fu = ops.design_lowpass_filter(6 * up, 2.0, 6.5, 16 * up) if up > 1 else None
    fd = ops.design_lowpass_filter(6 * down, 3.0, 4.3, 16 * up, radial=radial) if down > 1 else None
    kw = dict(up=up, down=down, padding=[5, 4, 5, 4], gain=np.sqrt(2), slope=0.2, clamp=0.8)
    got = jax.jit(lambda x, b: ops.filtered_lrelu(x, fu, fd, b, **kw))(x, b)
    want = _flrelu_reference(x, fu, fd, b, **kw)
    assert got.shape == want.shape
    assert _rel(got, want) < 1e-5


def test_filtered_lrelu_gradients_and_errors():
    x, b = _a(1, 6, 6, 2), _a(2)
    fu = ops.design_lowpass_filter(12, 2.0, 6.5, 16)
    fd = ops.design_lowpass_filter(12, 3.0, 4.3, 16)
    fn = jax.jit(lambda x, b: ops.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=10))
    check_grads(fn, (x, b), order=1, modes=["rev"])
    with pytest.raises(ValueError, match=r"down=0"):
        ops.filtered_lrelu(x, fu, fd, b, up=2, down=0)
    with pytest.raises(ValueError, match=r"gain=0"):
        ops.filtered_lrelu(x, gain=0)
    with pytest.raises(ValueError, match=r"padding"):
        ops.filtered_lrelu(x, fu, fd, up=2, down=2, padding=-4)


def test_design_lowpass_filter():
    assert ops.design_lowpass_filter(1, 2.0, 1.0, 8) is None
    f = ops.design_lowpass_filter(12, 2.0, 6.5, 16)
    assert f.shape == (12,) and abs(f.sum() - 1) < 1e-5
    r = ops.design_lowpass_filter(13, 3.2, 5.1, 32, radial=True)  # odd: the jinc's r=0 limit
    assert r.shape == (13, 13) and np.isfinite(r).all() and abs(r.sum() - 1) < 1e-5
    with pytest.raises(ValueError, match="numtaps=0"):
        ops.design_lowpass_filter(0, 2.0, 1.0, 8)
