"""InfoGAN and BEGAN: network shapes, the mutual-information loss, BEGAN's k_t controller and
convergence measure, the recipes' phases, and InfoGAN's sample-grid layout. Tiny widths."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gigajax.models import began as began_net
from gigajax.models import infogan as info_net
from gigajax.train.recipe import DataSpec
from gigajax.train.recipes.began import BEGANRecipe, convergence_measure, reconstruction_loss, update_k
from gigajax.train.recipes.infogan import InfoGANRecipe, gaussian_nll, mutual_info_loss

RNG = np.random.default_rng(0)
SPEC = DataSpec(resolution=16, channels=1, c_dim=0)
B = 8
TINY_INFO = dict(noise_dim=6, cat_dim=4, cont_dim=2, ch=4, fc_dim=16, q_dim=8)
TINY_BEGAN = dict(z_dim=8, h_dim=8, n=4, base_resolution=4, convs_per_level=1, lr_g=1e-3, lr_d=1e-3, g_out_bias=-0.5)


def _key(seed):
    # RBG keys: XLA compiles their random bits far faster than threefry's on CPU (a threefry
    # normal costs ~1.5 s of compile here), and the recipes only split and fold the keys they get.
    return jax.random.key(seed, impl="rbg")


def _batch(spec=SPEC, b=B):
    x = RNG.uniform(-1, 1, (b, spec.resolution, spec.resolution, spec.channels)).astype(np.float32)
    return {"image": jnp.asarray(x), "label": jnp.zeros((b, 0), jnp.float32)}


def _leaves_equal(a, b):
    return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _run_phase(recipe, variables, phase, aux, batch, key):
    """One optimizer step of `phase` the way the trainer does it: grad w.r.t. params[module] only.
    Jitted as a whole: one compile is much faster than op-by-op dispatch on CPU."""
    def run(variables, aux, batch, key):
        params = {m: variables[m]["params"] for m in ("G", "D")}
        colls = {m: {k: v for k, v in variables[m].items() if k != "params"} for m in ("G", "D")}
        m = phase.module
        loss_fn = lambda p: phase.loss({**params, m: p}, colls, aux, batch, key)
        (loss, (metrics, new_colls, new_aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params[m])
        opt = recipe.optimizers()[m]
        updates, _ = opt.update(grads, opt.init(params[m]), params[m])
        new_params = {**params, m: optax.apply_updates(params[m], updates)}
        return loss, metrics, grads, new_params, params, new_colls, colls, new_aux
    return jax.jit(run)(variables, aux, batch, key)


def _init(recipe):
    return jax.jit(recipe.init)(_key(0), _batch())


# --- InfoGAN -------------------------------------------------------------------------------------

def test_infogan_network_shapes():
    g = info_net.Generator(resolution=16, channels=3, ch=4, fc_dim=16)
    d = info_net.Discriminator(cat_dim=5, cont_dim=3, ch=4, fc_dim=16, q_dim=8)
    z = jnp.asarray(RNG.normal(size=(B, 20)), jnp.float32)
    gv = jax.jit(lambda k, z: g.init(k, z, train=False))(_key(0), z)
    x, _ = jax.jit(lambda v, z: g.apply(v, z, train=True, mutable=["batch_stats"]))(gv, z)
    assert x.shape == (B, 16, 16, 3)
    assert float(jnp.max(jnp.abs(x))) <= 1.0
    dv = jax.jit(lambda k, x: d.init(k, x, train=False))(_key(1), x)
    logit, cat, mean, log_std = jax.jit(lambda v, x: d.apply(v, x, train=False))(dv, x)
    assert logit.shape == (B,) and cat.shape == (B, 5) and mean.shape == (B, 3) and log_std.shape == (B, 3)
    assert float(jnp.min(log_std)) >= info_net.LOG_STD_MIN and float(jnp.max(log_std)) <= info_net.LOG_STD_MAX
    with pytest.raises(ValueError, match="divisible by 4"):
        jax.eval_shape(lambda z: info_net.Generator(resolution=18).init(_key(0), z, train=False), z)


def test_mi_loss_is_minimal_at_exact_prediction():
    cat_dim, cont_dim, n = 10, 2, 16
    idx = jnp.asarray(RNG.integers(0, cat_dim, n))
    cont = jnp.asarray(RNG.uniform(-1, 1, (n, cont_dim)), jnp.float32)
    exact_logits = 50.0 * jax.nn.one_hot(idx, cat_dim)
    zero_std = jnp.zeros((n, cont_dim))
    loss_exact, m_exact = mutual_info_loss(exact_logits, cont, zero_std, idx, cont)
    # exact: CE -> 0 and the unit-std NLL is its constant cont_dim * 0.5 log(2 pi)
    np.testing.assert_allclose(loss_exact, cont_dim * 0.5 * math.log(2 * math.pi), rtol=1e-5)
    np.testing.assert_allclose(m_exact["mi_cat"], math.log(cat_dim), atol=1e-5)
    assert float(m_exact["cat_acc"]) == 1.0
    wrong_logits = 50.0 * jax.nn.one_hot((idx + 1) % cat_dim, cat_dim)
    uniform_logits = jnp.zeros((n, cat_dim))
    for logits, mean in [(wrong_logits, cont), (uniform_logits, cont), (exact_logits, cont + 0.3),
                         (exact_logits, -cont)]:
        loss, m = mutual_info_loss(logits, mean, zero_std, idx, cont)
        assert np.all(np.asarray(loss) >= np.asarray(loss_exact) - 1e-6)
        assert float(jnp.mean(loss)) > float(jnp.mean(loss_exact)) + 1e-3
    _, m_uniform = mutual_info_loss(uniform_logits, cont, zero_std, idx, cont)
    np.testing.assert_allclose(m_uniform["mi_cat"], 0.0, atol=1e-6)   # H(c) - CE = log 10 - log 10
    # the weights scale each part
    l1, _ = mutual_info_loss(uniform_logits, cont + 1.0, zero_std, idx, cont, lambda_cat=1.0, lambda_cont=0.0)
    np.testing.assert_allclose(l1, math.log(cat_dim), rtol=1e-6)
    l2, _ = mutual_info_loss(exact_logits, cont + 1.0, zero_std, idx, cont, lambda_cat=0.0, lambda_cont=0.1)
    np.testing.assert_allclose(l2, 0.1 * cont_dim * (0.5 + 0.5 * math.log(2 * math.pi)), rtol=1e-5)


def test_gaussian_nll_learned_std():
    c = jnp.asarray([[0.5, -1.0]])
    mean = jnp.asarray([[0.0, 0.0]])
    log_std = jnp.log(jnp.asarray([[0.5, 2.0]]))
    want = sum(math.log(s) + 0.5 * ((ci - 0.0) / s) ** 2 + 0.5 * math.log(2 * math.pi)
               for ci, s in [(0.5, 0.5), (-1.0, 2.0)])
    np.testing.assert_allclose(gaussian_nll(c, mean, log_std), [want], rtol=1e-6)
    # with a learned std the exact mean is still the best prediction at any fixed std
    assert float(gaussian_nll(c, c, log_std)[0]) < float(gaussian_nll(c, mean, log_std)[0])


def test_infogan_grid_rows_are_categories_columns_share_noise():
    rec = InfoGANRecipe(SPEC, **TINY_INFO)
    rows, cols = 6, 5   # more rows than categories: they cycle
    z, c = rec.grid_inputs(_key(3), rows, cols)
    assert z.shape == (rows * cols, rec.z_dim) and c.shape == (rows * cols, 0)
    noise, cat, cont = info_net.split_latents(z.reshape(rows, cols, -1), rec.cat_dim, rec.cont_dim)
    np.testing.assert_array_equal(np.argmax(cat, -1), np.repeat(np.arange(rows) % rec.cat_dim, cols).reshape(rows, cols))
    np.testing.assert_array_equal(np.sum(cat, -1), 1.0)
    for r in range(1, rows):   # same noise and continuous codes down every column
        np.testing.assert_array_equal(noise[r], noise[0])
        np.testing.assert_array_equal(cont[r], cont[0])
    assert not np.allclose(noise[0, 0], noise[0, 1])   # columns differ
    assert np.all(np.abs(cont) <= 1.0)
    # generate: rows in the same column differ only through the category
    variables = _init(rec)
    img = np.asarray(jax.jit(rec.generate)(variables["G"], z, c, _key(1))).reshape(rows, cols, 16, 16, 1)
    assert img.shape[-3:] == (16, 16, 1) and np.abs(img).max() <= 1.0
    assert not np.allclose(img[0], img[1])
    np.testing.assert_allclose(img[0], img[rec.cat_dim], atol=1e-6)   # rows 0 and 4 are both category 0


def test_infogan_code_sweep_and_canonical_latents():
    z = info_net.code_sweep(jnp.ones(3), [0, 2], cat_dim=4, cont_dim=2, code_index=1, cols=5)
    noise, cat, cont = info_net.split_latents(z.reshape(2, 5, -1), 4, 2)
    np.testing.assert_allclose(cont[0, :, 1], np.linspace(-2, 2, 5))
    np.testing.assert_allclose(cont[1, :, 1], np.linspace(-2, 2, 5))
    np.testing.assert_array_equal(cont[..., 0], 0.0)
    np.testing.assert_array_equal(np.argmax(cat, -1), [[0] * 5, [2] * 5])
    np.testing.assert_array_equal(noise, 1.0)
    rec = InfoGANRecipe(SPEC, **TINY_INFO)
    zs, _ = rec.sweep_inputs(_key(0), 3, 4, code_index=0)
    assert zs.shape == (12, rec.z_dim)
    # a plain N(0, I) draw becomes a valid one-hot category; one-hot inputs pass through unchanged
    zr = jax.random.normal(_key(1), (64, rec.z_dim))
    zc = rec.canonical_latents(zr)
    _, cat_c, _ = info_net.split_latents(zc, rec.cat_dim, rec.cont_dim)
    np.testing.assert_array_equal(np.sort(np.asarray(cat_c), -1)[:, -1], 1.0)
    np.testing.assert_array_equal(np.sum(cat_c, -1), 1.0)
    np.testing.assert_array_equal(rec.canonical_latents(zc), zc)
    with pytest.raises(ValueError, match="z_dim"):
        rec.canonical_latents(zr[:, :-1])


def test_infogan_phases_update_only_their_module():
    rec = InfoGANRecipe(SPEC, **TINY_INFO)
    assert [(p.name, p.module) for p in rec.phases] == [("Dmain", "D"), ("Gmain", "G")]
    variables = _init(rec)
    batch = _batch()
    for phase in rec.phases:
        loss, metrics, grads, new_params, params, new_colls, colls, new_aux = _run_phase(
            rec, variables, phase, {}, batch, _key(5))
        assert np.isfinite(float(loss))
        assert all(np.isfinite(float(v)) for v in metrics.values())
        assert {"adv", "mi", "mi_cat", "cat_acc"} <= set(metrics)
        assert 0.0 <= float(metrics["cat_acc"]) <= 1.0
        np.testing.assert_allclose(float(loss), float(metrics["adv"]) + float(metrics["mi"]), rtol=1e-5)
        other = "G" if phase.module == "D" else "D"
        assert _leaves_equal(new_params[other], params[other])
        assert not _leaves_equal(new_params[phase.module], params[phase.module])
        # every layer of the trained module gets a gradient: in the D phase that includes the
        # shared trunk, D's output layer and the whole Q head
        flat = jax.tree_util.tree_flatten_with_path(grads)[0]
        dead = [jax.tree_util.keystr(p) for p, g in flat if float(jnp.max(jnp.abs(g))) == 0.0]
        assert not dead, f"{phase.name}: no gradient reaches {dead}"
        # training-mode BN statistics move for both networks; their structure is kept
        assert jax.tree_util.tree_structure(new_colls) == jax.tree_util.tree_structure(colls)
        assert not _leaves_equal(new_colls["G"], colls["G"])
        assert new_aux == {}


# --- BEGAN ---------------------------------------------------------------------------------------

def test_began_network_shapes():
    d = began_net.Discriminator(resolution=32, channels=3, n=4, h_dim=6, base_resolution=8, convs_per_level=1)
    x = jnp.asarray(RNG.uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)
    dv = jax.eval_shape(d.init, _key(0), x)   # shapes only: no compile
    assert jax.eval_shape(d.apply, dv, x).shape == x.shape
    enc = began_net.Encoder(resolution=32, n=4, h_dim=6, base_resolution=8, convs_per_level=1)
    assert jax.eval_shape(enc.apply, {"params": dv["params"]["encoder"]}, x).shape == (2, 6)
    g = began_net.Generator(resolution=32, channels=3, n=4, base_resolution=8, convs_per_level=1)
    gv = jax.eval_shape(g.init, _key(1), jnp.zeros((2, 5)))
    assert jax.eval_shape(g.apply, gv, jnp.ones((2, 5))).shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(began_net.upsample_nearest(jnp.arange(4.0).reshape(1, 2, 2, 1))[0, :, :, 0],
                                  [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    with pytest.raises(ValueError, match="power of 2"):
        jax.eval_shape(began_net.Decoder(resolution=24, base_resolution=8).init, _key(0), jnp.zeros((1, 4)))


def test_began_reconstruction_loss_per_sample():
    v = jnp.zeros((2, 2, 2, 1))
    recon = jnp.stack([jnp.full((2, 2, 1), 0.5), jnp.asarray([[[1.0], [-1.0]], [[0.0], [0.0]]])])
    np.testing.assert_allclose(reconstruction_loss(v, recon), [0.5, 0.5])
    np.testing.assert_allclose(reconstruction_loss(v, recon, eta=2), [0.25, 0.5])


def test_began_k_update_and_clipping():
    gamma, lam = 0.5, 0.001
    np.testing.assert_allclose(update_k(0.3, 0.2, 0.04, gamma, lam), 0.3 + 0.001 * (0.1 - 0.04), rtol=1e-6)
    np.testing.assert_allclose(update_k(0.3, 0.2, 0.16, gamma, lam), 0.3 + 0.001 * (0.1 - 0.16), rtol=1e-6)
    assert float(update_k(0.0, 0.1, 0.5, gamma, lam)) == 0.0        # would go negative
    assert float(update_k(0.9995, 1.0, 0.0, gamma, lam)) == 1.0     # would pass 1
    assert float(update_k(0.5, 0.0, 0.0, gamma, 10.0)) == 0.5        # at equilibrium k stays


def test_began_convergence_measure():
    np.testing.assert_allclose(convergence_measure(0.2, 0.3, 0.5), 0.2 + abs(0.1 - 0.3), rtol=1e-6)
    np.testing.assert_allclose(convergence_measure(0.4, 0.2, 0.5), 0.4, rtol=1e-6)   # at equilibrium M = L(x)
    np.testing.assert_allclose(convergence_measure(0.4, 0.0, 0.7), 0.4 + 0.28, rtol=1e-6)


def test_began_phases_and_k_t():
    rec = BEGANRecipe(SPEC, **TINY_BEGAN)
    assert [(p.name, p.module) for p in rec.phases] == [("Dmain", "D"), ("Gmain", "G")]
    variables = _init(rec)
    dec = variables["G"]["params"]["decoder"]
    last_conv = max((k for k in dec if k.startswith("Conv_")), key=lambda k: int(k.split("_")[1]))
    np.testing.assert_array_equal(dec[last_conv]["bias"], [-0.5])   # g_out_bias: G starts around that value
    assert float(jnp.max(jnp.abs(variables["D"]["params"]["decoder"][last_conv]["bias"]))) == 0.0   # D's not
    batch = _batch()
    aux = {"k_t": jnp.float32(0.25)}
    d_phase, g_phase = rec.phases
    loss, m, grads, new_params, params, _, _, new_aux = _run_phase(rec, variables, d_phase, aux, batch, _key(2))
    assert np.isfinite(float(loss)) and all(np.isfinite(float(v)) for v in m.values())
    np.testing.assert_allclose(float(loss), float(m["L_real"]) - 0.25 * float(m["L_fake"]), rtol=1e-5)
    want_k = np.clip(0.25 + 0.001 * (0.5 * float(m["L_real"]) - float(m["L_fake"])), 0, 1)
    np.testing.assert_allclose(float(new_aux["k_t"]), want_k, rtol=1e-6)
    assert float(new_aux["k_t"]) != 0.25 and new_aux["k_t"].dtype == jnp.float32
    np.testing.assert_allclose(float(m["k_t"]), want_k, rtol=1e-6)
    np.testing.assert_allclose(float(m["M"]), float(m["L_real"]) + abs(0.5 * float(m["L_real"]) - float(m["L_fake"])),
                               rtol=1e-5)
    assert _leaves_equal(new_params["G"], params["G"]) and not _leaves_equal(new_params["D"], params["D"])
    loss, m, grads, new_params, params, _, _, g_aux = _run_phase(rec, variables, g_phase, new_aux, batch,
                                                                 _key(3))
    assert np.isfinite(float(loss))
    assert _leaves_equal(new_params["D"], params["D"]) and not _leaves_equal(new_params["G"], params["G"])
    assert float(g_aux["k_t"]) == float(new_aux["k_t"])   # only D's phase moves k_t
    assert rec.init_aux() == {"k_t": 0.0} and rec.init_aux()["k_t"].dtype == jnp.float32
    # generate: [-1, 1] images; grid z ~ U(-1, 1)
    z, c = rec.grid_inputs(_key(4), 3, 4)
    assert z.shape == (12, rec.z_dim) and c.shape == (12, 0) and float(jnp.max(jnp.abs(z))) <= 1.0
    img = jax.jit(rec.generate)(variables["G"], 5.0 * z, c, _key(0))
    assert img.shape == (12, 16, 16, 1) and float(jnp.max(jnp.abs(img))) <= 1.0
