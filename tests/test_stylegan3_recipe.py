"""The StyleGAN3 training recipe on a tiny model (16x16): finite, differentiable phases; Dmain moves
G's magnitude EMAs and w_avg while Gmain does not; the D blur of config R follows the official
kernel and fade, on the recipe's own image clock; config R's generator; the equivariance split."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gigajax.train import DataSpec
from gigajax.train.recipes.stylegan3 import StyleGAN3Recipe, blur_images, blur_kernel

# Its module fixtures build and compile models: keep the module on one xdist worker (setup.cfg's
# --dist loadgroup) rather than building them once per worker.
pytestmark = pytest.mark.xdist_group("stylegan3_recipe")

B = 4
SMALL = dict(z_dim=8, w_dim=8, cbase=128, cmax=16, mbstd_group=2, batch_size=B, num_layers=3, num_critical=1,
             margin_size=2)


def _setup(**kw):
    r = StyleGAN3Recipe(DataSpec(16, 1, 0), **{**SMALL, **kw})
    img = jnp.asarray(np.random.RandomState(0).rand(B, 16, 16, 1) * 2 - 1, jnp.float32)
    batch = {"image": img, "label": jnp.zeros((B, 0))}
    v = r.init(jax.random.key(0), batch)
    params = {"G": v["G"]["params"], "D": v["D"]["params"]}
    colls = {"G": {k: x for k, x in v["G"].items() if k != "params"},
             "D": {k: x for k, x in v["D"].items() if k != "params"}}
    return r, batch, params, colls


@pytest.fixture(scope="module")
def setup_t():
    return _setup()


@pytest.fixture(scope="module")
def setup_r():
    return _setup(cfg="stylegan3-r", blur_fade_kimg=1.0)


def _run(r, phase, params, colls, batch, aux=None):
    fn = jax.jit(jax.value_and_grad(getattr(r, phase), has_aux=True))
    (loss, (metrics, colls2, aux2)), grads = fn(params, colls, aux or r.init_aux(), batch, jax.random.key(1))
    return float(loss), metrics, colls2, aux2, grads


@pytest.mark.parametrize("phase, module", [("g_main", "G"), ("d_main", "D"), ("d_r1", "D")])
def test_phase_losses_are_finite_with_gradients(setup_t, phase, module):
    r, batch, params, colls = setup_t
    assert [p.name for p in r.phases] == ["Gmain", "Dmain", "Dreg"]   # no path length, as in the official T/R
    loss, metrics, _, _, grads = _run(r, phase, params, colls, batch)
    assert np.isfinite(loss) and all(np.isfinite(float(m)) for m in metrics.values())
    g = jax.tree_util.tree_leaves(grads[module])
    assert all(np.isfinite(np.asarray(x)).all() for x in g) and sum(float(jnp.abs(x).sum()) for x in g) > 0


def test_dmain_moves_magnitude_emas_and_w_avg_and_gmain_does_not(setup_t):
    r, batch, params, colls = setup_t
    _, _, after_d, aux_d, _ = _run(r, "d_main", params, colls, batch)
    _, _, after_g, aux_g, _ = _run(r, "g_main", params, colls, batch)
    before = colls["G"]["buffers"]
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), after_d["G"]["buffers"], before)
    assert moved["mapping"]["w_avg"] and all(moved["synthesis"][d.name]["magnitude_ema"] for d in r.G.design().layers)
    jax.tree.map(np.testing.assert_array_equal, after_g["G"]["buffers"], before)
    assert float(aux_d["cur_nimg"]) == B and float(aux_g["cur_nimg"]) == 0   # Dmain advances the clock


def test_official_defaults():
    r = StyleGAN3Recipe(DataSpec(32, 1, 0), batch_size=32, cbase=256, cmax=16)
    assert r.r1_gamma == pytest.approx(0.0002 * 32 ** 2 / 32)
    assert r.magnitude_ema_beta == pytest.approx(0.5 ** (32 / 20000))
    assert r.blur_init_sigma == 0 and r.style_mixing_prob == 0 and r.pl_weight == 0
    rr = StyleGAN3Recipe(DataSpec(32, 1, 0), cfg="stylegan3-r", batch_size=64, cbase=256, cmax=16)
    assert rr.blur_init_sigma == 10 and rr.blur_fade_kimg == pytest.approx(400)
    d = rr.G.design()
    assert d.layers[0].conv_kernel == 1 and d.layers[0].down_filter.ndim == 2 and d.input_channels == 32
    with pytest.raises(ValueError, match=r"cfg='stylegan3-x'.*\('stylegan3-t', 'stylegan3-r'\)"):
        StyleGAN3Recipe(DataSpec(32, 1, 0), cfg="stylegan3-x")


@pytest.mark.parametrize("sigma", [10.0, 2.5, 0.7, 0.34])
def test_blur_kernel_is_the_official_one(sigma):
    size = int(np.floor(sigma * 3))
    x = np.arange(-size, size + 1, dtype=np.float64)
    want = np.exp2(-np.square(x / sigma))
    want /= want.sum()
    got = np.asarray(blur_kernel(jnp.float32(sigma), 30))
    np.testing.assert_allclose(got[30 - size:30 + size + 1], want, rtol=1e-5)
    assert np.all(got[:30 - size] == 0) and np.all(got[30 + size + 1:] == 0)


def test_blur_images_matches_a_direct_filter_and_skips_below_one_third():
    img = jnp.asarray(np.random.RandomState(2).randn(2, 12, 12, 3), jnp.float32)
    sigma = jnp.float32(1.2)
    f = np.asarray(blur_kernel(sigma, 3))
    ref = np.asarray(img, np.float64)
    pad = np.pad(ref, ((0, 0), (3, 3), (3, 3), (0, 0)))
    want = sum(f[i] * f[j] * pad[:, i:i + 12, j:j + 12] for i in range(7) for j in range(7))
    np.testing.assert_allclose(blur_images(img, sigma, 3), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(blur_images(img, jnp.float32(0.3), 3), img)


def test_config_r_blur_fades_on_the_step_clock(setup_r):
    r, batch, params, colls = setup_r
    assert r.blur_radius == 30
    _, m0, _, aux, _ = _run(r, "d_main", params, colls, batch)
    assert float(m0["blur_sigma"]) == pytest.approx(10.0)
    half = {**r.init_aux(), "cur_nimg": jnp.float32(500)}
    _, m_half, _, _, _ = _run(r, "d_main", params, colls, batch, half)
    assert float(m_half["blur_sigma"]) == pytest.approx(5.0)
    # Dreg runs after Dmain in the same step, so it uses the clock minus one batch: at 454 images it
    # blurs with sigma 5.5, like a recipe whose sigma stays at 5.5. (Not 5: 3 sigma = 15 exactly
    # would make floor(3 sigma) depend on float32 rounding.)
    loss_r, _, _, _, _ = _run(r, "d_r1", params, colls, batch, {**aux, "cur_nimg": jnp.float32(450 + B)})
    const = StyleGAN3Recipe(DataSpec(16, 1, 0), **{**SMALL, "cfg": "stylegan3-r", "blur_init_sigma": 5.5,
                                                   "blur_fade_kimg": 1e12})
    loss_c, _, _, _, _ = _run(const, "d_r1", params, colls, batch, {**aux, "cur_nimg": jnp.float32(B)})
    loss_late, _, _, _, _ = _run(r, "d_r1", params, colls, batch, {**aux, "cur_nimg": jnp.float32(5000)})
    assert loss_r == pytest.approx(loss_c, rel=1e-5) and loss_r != pytest.approx(loss_late, rel=1e-3)


def test_equivariance_split_runs_on_the_recipe(setup_t):
    from gigajax.metrics.equivariance import equivariance_psnr
    r, batch, params, colls = setup_t
    g = {"params": params["G"], **colls["G"]}
    ws = r.mapping(g, jnp.ones((2, 8)), jnp.zeros((2, 0)))
    np.testing.assert_allclose(r.synthesis_t(g, ws, None, jnp.eye(3)),
                               r.generate(g, jnp.ones((2, 8)), jnp.zeros((2, 0)), None), atol=1e-6)
    out = equivariance_psnr(r.mapping, r.synthesis_t, g, num_samples=4, batch_size=2, key=jax.random.key(0),
                            z_dim=8, eqt_int=True, eqr=True)
    assert set(out) == {"eqt_int", "eqr"} and all(np.isfinite(v) and v > 0 for v in out.values())
