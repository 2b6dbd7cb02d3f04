"""The fused Pallas filtered_lrelu (interpret mode on CPU) against the XLA path: values over the
StyleGAN3 up/down factors and filter kinds, gradients, jit, the impl dispatcher and the golden cases."""

import functools
import importlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_grads  # float64 gradient check

from gigajax import ops
from gigajax.compat import golden
from gigajax.compat.ops_kinds import _nchw_case
from gigajax.ops.filtered_lrelu import IMPL_ENV, resolve_impl
from gigajax.ops.filtered_lrelu_pallas import filtered_lrelu_pallas, make_plan

RNG = np.random.RandomState(2)
# The package exports the function under the module's name, so fetch the module itself.
MODULE = importlib.import_module("gigajax.ops.filtered_lrelu_pallas")
GOLDEN = Path(__file__).parent / "golden"
K12 = ops.design_lowpass_filter(12, 2.0, 6.5, 32)
K24 = ops.design_lowpass_filter(24, 2.0, 6.5, 64)
K6 = ops.design_lowpass_filter(6, 3.0, 4.3, 16)
RADIAL12 = ops.design_lowpass_filter(12, 3.0, 4.3, 32, radial=True)
RADIAL6 = ops.design_lowpass_filter(6, 3.0, 4.3, 16, radial=True)
# Asymmetric filters: the designed low-pass filters are symmetric, which would hide a missing flip.
ASYM9 = (RNG.rand(9) + 0.2).astype(np.float32)
ASYM_OUTER = np.outer(RNG.rand(5) + 0.1, RNG.rand(4) + 0.1).astype(np.float32)
ASYM_2D = (RNG.rand(3, 5) + 0.1).astype(np.float32)


def _a(*shape):
    return jnp.asarray(RNG.randn(*shape).astype(np.float32))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# (x shape, fu, fd, bias, kwargs, block): every (up, down) of StyleGAN3 plus up=3 / down=3 (tiles
# that start at different zero-stuffing phases in the forward / backward); separable, radial and
# anisotropic 2-D filters, None; clamp, slope 0, flip_filter, asymmetric and negative padding;
# small blocks force several row/column tiles and channel blocks.
CASES = {
    "up1_down1_identity": ((2, 5, 6, 3), None, None, True, dict(), None),
    "up2_down2_sep12_clamp": ((2, 9, 8, 5), K12, K12, True, dict(up=2, down=2, padding=[11, 10, 9, 12], clamp=0.7),
                              (4, 4, 2)),
    "up4_down2_sep24_radial_flip": ((1, 7, 6, 3), K24, RADIAL12, True,
                                    dict(up=4, down=2, padding=[21, 20, 19, 22], clamp=1.0, flip_filter=True),
                                    (4, 8, 2)),
    "up2_down1_outer_slope0": ((2, 6, 7, 2), ASYM_OUTER, None, False,
                               dict(up=2, down=1, padding=[3, 2, 2, 3], slope=0.0), (8, 4, 2)),
    "up1_down2_radial_crop": ((1, 12, 11, 4), None, RADIAL6, True,
                              dict(down=2, padding=[-1, 2, 1, -2], slope=0.0, clamp=0.5), (4, 4, 4)),
    "up2_down2_radial_up_aniso_down": ((1, 8, 9, 3), RADIAL6, ASYM_2D, True,
                                       dict(up=2, down=2, padding=[4, 3, 2, 5], gain=1.3, slope=0.3), (4, 4, 2)),
    "up3_down2_phases": ((1, 7, 8, 2), ASYM9, K6, True, dict(up=3, down=2, padding=[2, 3, 4, 1], clamp=0.6), (4, 4, 2)),
    "up2_down3_phases": ((1, 9, 8, 2), K6, ASYM9, True, dict(up=2, down=3, padding=[4, 1, 2, 3], flip_filter=True),
                         (2, 2, 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_xla(name):
    shape, fu, fd, with_bias, kw, block = CASES[name]
    x = _a(*shape)
    b = _a(shape[-1]) if with_bias else None
    want = ops.filtered_lrelu(x, fu, fd, b, impl="xla", **kw)
    got = jax.jit(lambda x, b: filtered_lrelu_pallas(x, fu, fd, b, block=block, **kw))(x, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert _rel(got, want) < 1e-6


def test_tiling():
    # Odd factors: tile starts meet the zero-stuffed grid at different phases (forward for up=3,
    # backward for down=3), and the cases above cover several tiles along both axes.
    for name, fwd in (("up3_down2_phases", True), ("up2_down3_phases", False)):
        shape, fu, fd, _, kw, block = CASES[name]
        plan = make_plan(shape, fu, fd, kw["up"], kw["down"], kw["padding"], 1.0, 0.2, None, False, True, block)
        assert plan.h.x.static_phase != fwd and plan.h.bdy.static_phase == fwd
        assert min(plan.h.tiles, plan.w.tiles, plan.h.btiles, plan.w.btiles) > 1
    # Default blocks at a StyleGAN3 layer: powers of two, spans of 32 pre-activation rows.
    plan = make_plan((4, 36, 36, 512), K12, K12, 2, 2, [11, 10, 11, 10], 1.0, 0.2, None, False, True)
    assert (plan.h.tile, plan.h.mid_tile, plan.h.x.length, plan.h.btile, plan.h.bmid_tile) == (8, 32, 32, 8, 32)
    assert plan.h.out == 36 and plan.cblock == 8 and plan.bcblock == 4


def _grads(fn, x, b, wy):
    return jax.jit(jax.grad(lambda x, b: jnp.sum(fn(x, b) * wy), argnums=(0, 1)))(x, b)


@pytest.mark.parametrize("name", ["up2_down2_sep12_clamp", "up4_down2_sep24_radial_flip", "up2_down1_outer_slope0",
                                  "up1_down2_radial_crop", "up2_down2_radial_up_aniso_down", "up3_down2_phases",
                                  "up2_down3_phases"])
def test_gradients_match_xla(name):
    # Includes clamped pixels (zero gradient there), slope 0, flip_filter and cropping padding.
    shape, fu, fd, _, kw, block = CASES[name]
    x, b = _a(*shape), _a(shape[-1])
    y = ops.filtered_lrelu(x, fu, fd, b, impl="xla", **kw)
    wy = _a(*y.shape)
    want = _grads(lambda x, b: ops.filtered_lrelu(x, fu, fd, b, impl="xla", **kw), x, b, wy)
    got = _grads(lambda x, b: filtered_lrelu_pallas(x, fu, fd, b, block=block, **kw), x, b, wy)
    for g, w in zip(got, want):
        assert g.shape == w.shape and _rel(g, w) < 1e-5


def test_xla_backward_option():
    shape, fu, fd, _, kw, block = CASES["up2_down2_radial_up_aniso_down"]
    x, b = _a(*shape), _a(shape[-1])
    wy = _a(*ops.filtered_lrelu(x, fu, fd, b, impl="xla", **kw).shape)
    fused, xla = (_grads(lambda x, b: filtered_lrelu_pallas(x, fu, fd, b, block=block, backward=bwd, **kw), x, b, wy)
                  for bwd in ("pallas", "xla"))
    for g, w in zip(fused, xla):
        assert _rel(g, w) < 1e-5
    with pytest.raises(ValueError, match=r"backward='cuda'"):
        filtered_lrelu_pallas(x, backward="cuda")


def test_gradients_numerically():
    # Independent of the XLA path: float64 finite differences through the custom VJP.
    x, b = _a(1, 5, 5, 2), _a(2)
    fn = jax.jit(lambda x, b: filtered_lrelu_pallas(x, K6, K6, b, up=2, down=2, padding=3, slope=0.1, block=(4, 4, 2)))
    check_grads(fn, (x, b), order=1, modes=["rev"])


def test_bf16_and_vmap():
    x, b = _a(2, 6, 6, 4), _a(4)
    kw = dict(up=2, down=2, padding=5, clamp=1.0)
    want = ops.filtered_lrelu(x, K6, K6, b, impl="xla", **kw)
    got = filtered_lrelu_pallas(x.astype(jnp.bfloat16), K6, K6, b, **kw)
    assert got.dtype == jnp.bfloat16 and _rel(got.astype(jnp.float32), want) < 2e-2
    stacked = jax.vmap(lambda x: filtered_lrelu_pallas(x, K6, K6, b, **kw))(x[:, None])
    assert _rel(stacked[:, 0], want) < 1e-6


def test_dispatcher(monkeypatch):
    monkeypatch.delenv(IMPL_ENV, raising=False)
    assert jax.default_backend() == "cpu" and resolve_impl() == "xla"
    assert resolve_impl("pallas") == "pallas"
    monkeypatch.setenv(IMPL_ENV, "pallas")
    assert resolve_impl() == "pallas" and resolve_impl("xla") == "xla"  # an explicit argument wins
    monkeypatch.setenv(IMPL_ENV, "XLA")
    assert resolve_impl("auto") == "xla"
    monkeypatch.setenv(IMPL_ENV, "cuda")
    with pytest.raises(ValueError, match=r"GIGAJAX_FILTERED_LRELU='cuda': expected one of \['auto', 'xla', 'pallas'\]"):
        ops.filtered_lrelu(_a(1, 4, 4, 1))
    monkeypatch.delenv(IMPL_ENV)
    with pytest.raises(ValueError, match=r"impl='triton': expected one of \['auto', 'xla', 'pallas'\]"):
        ops.filtered_lrelu(_a(1, 4, 4, 1), impl="triton")

    # The env override reaches the Pallas path, read at call time (inside an already-defined function).
    calls = []
    monkeypatch.setattr(MODULE, "filtered_lrelu_pallas", lambda *a, **k: calls.append(k) or "pallas")
    fn = functools.partial(ops.filtered_lrelu, _a(1, 4, 4, 1), K6, K6, up=2, down=2, padding=5, clamp=0.5)
    assert not isinstance(fn(), str) and not calls
    monkeypatch.setenv(IMPL_ENV, "pallas")
    assert fn() == "pallas" and calls[0]["clamp"] == 0.5 and calls[0]["padding"] == 5


def test_auto_picks_pallas_on_gpu_unless_filters_are_traced(monkeypatch):
    monkeypatch.delenv(IMPL_ENV, raising=False)
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    assert resolve_impl("auto", K6, None) == "xla"  # the kernels do not lower with Mosaic TPU yet
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert resolve_impl("auto", K6, None) == "pallas"
    picked = []
    jax.make_jaxpr(lambda f: picked.append(resolve_impl("auto", f, None)) or f)(K6)
    assert picked == ["xla"]
    with pytest.raises(ValueError, match=r"fu=.*expected a concrete filter"):
        jax.make_jaxpr(lambda f: filtered_lrelu_pallas(_a(1, 4, 4, 1), f, None, up=2, interpret=True))(K6)


def test_errors():
    x, b = _a(1, 6, 6, 2), _a(2)
    with pytest.raises(ValueError, match=r"down=0"):
        filtered_lrelu_pallas(x, K6, K6, b, up=2, down=0)
    with pytest.raises(ValueError, match=r"gain=0"):
        filtered_lrelu_pallas(x, gain=0)
    with pytest.raises(ValueError, match=r"slope=-1"):
        filtered_lrelu_pallas(x, slope=-1)
    with pytest.raises(ValueError, match=r"padding"):
        filtered_lrelu_pallas(x, K6, K6, up=2, down=2, padding=-4)
    with pytest.raises(ValueError, match=r"b\.shape=\(3,\)"):
        filtered_lrelu_pallas(x, b=_a(3))
    with pytest.raises(ValueError, match=r"x\.shape=\(6, 6, 2\)"):
        filtered_lrelu_pallas(x[0])
    with pytest.raises(ValueError, match=r"block=\(3, 4, 2\)"):
        filtered_lrelu_pallas(x, block=(3, 4, 2))
    with pytest.raises(ValueError, match=r"interpret=False"):
        filtered_lrelu_pallas(x, interpret=False)


def test_lowers_to_triton():
    # Without a GPU, lowering for CUDA still runs Pallas' Triton lowering of both kernels: it rejects
    # any op or block shape Triton cannot take (value slicing, unsupported primitives, ...).
    plan = make_plan((2, 36, 36, 64), K12, RADIAL12, 2, 2, [11, 10, 11, 10], 1.4, 0.2, 256.0, False, False)
    x = jax.ShapeDtypeStruct((2, 36, 36, 64), jnp.float32)
    dy = jax.ShapeDtypeStruct((2, plan.h.out, plan.w.out, 64), jnp.float32)
    for fn, args in ((MODULE._forward, (x,)), (MODULE._backward_pallas, (x, dy))):
        text = jax.jit(functools.partial(fn, plan)).trace(*args).lower(lowering_platforms=("cuda",)).as_text()
        assert "__gpu$xla.gpu.triton" in text


GOLDEN_CASES = sorted(p for p in GOLDEN.glob("ops_filtered_lrelu_*.npz"))


@pytest.mark.parametrize("path", GOLDEN_CASES, ids=lambda p: p.stem)
def test_golden_through_pallas(path):
    case = golden.load(path)
    assert case.kind == "ops.filtered_lrelu"
    run = _nchw_case(functools.partial(ops.filtered_lrelu, impl="pallas"), filters=("fu", "fd", "b"))
    for name, got in run(case).items():
        assert golden.rel_l2(got, case.outputs[name]) <= case.tolerance


def test_golden_cases_exist():
    assert len(GOLDEN_CASES) >= 7
