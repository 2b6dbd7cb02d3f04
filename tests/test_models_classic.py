"""The classic GANs: MLP GAN, cGAN, DCGAN, WGAN, WGAN-GP (networks, recipes, latent ops).

Tiny shapes (8x8 / 16x16, a handful of channels) keep every compiled function small."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from gigajax.losses import gradient_penalty
from gigajax.models import latent_ops
from gigajax.models.dcgan import Discriminator, Generator, conv_down_2x, conv_transpose_2x
from gigajax.models.gan import MLPDiscriminator, MLPGenerator
from gigajax.train.recipe import DataSpec
from gigajax.train.recipes.cgan import CGANRecipe
from gigajax.train.recipes.dcgan import DCGANRecipe
from gigajax.train.recipes.gan import VanillaGANRecipe
from gigajax.train.recipes.wgan import WGANRecipe
from gigajax.train.recipes.wgan_gp import WGANGPRecipe
from conftest import check_grads  # float64 gradient check

RNG = np.random.default_rng(0)
B = 4
TINY_CONV = dict(z_dim=8, ngf=4, ndf=4)
TINY_MLP = dict(z_dim=8, g_hidden=(16,), d_hidden=(16,))


def _batch(res, ch, c_dim, n=B):
    image = RNG.uniform(-1, 1, (n, res, res, ch)).astype(np.float32)
    label = np.eye(c_dim, dtype=np.float32)[RNG.integers(0, c_dim, n)] if c_dim else np.zeros((n, 0), np.float32)
    return {"image": jnp.asarray(image), "label": jnp.asarray(label)}


def _split(variables):
    params, colls = {}, {}
    for m in ("G", "D"):
        v = dict(variables[m])
        params[m] = v.pop("params")
        colls[m] = v
    return params, colls


def _max_abs_diff(a, b):
    leaves = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in leaves)


# --- the recipes, each built once -------------------------------------------------------------

RECIPES = {
    "gan": lambda: VanillaGANRecipe(DataSpec(8, 1, 0), d_dropout=0.5, **TINY_MLP),
    "cgan": lambda: CGANRecipe(DataSpec(8, 1, 3), **TINY_MLP),
    "dcgan": lambda: DCGANRecipe(DataSpec(16, 1, 0), **TINY_CONV),
    # 8x8: one D block (so no norm layer) keeps the compiles small; the norms are covered by
    # dcgan here and by test_dcgan_networks_shapes.
    "wgan": lambda: WGANRecipe(DataSpec(8, 1, 0), lr=0.1, **TINY_CONV),   # big steps: clipping must act
    "wgan_gp": lambda: WGANGPRecipe(DataSpec(8, 3, 0), **TINY_CONV),
}


@functools.lru_cache(maxsize=None)
def _setup(name):
    """(recipe, variables, batch, {phase name: jitted one-phase update}) for a recipe."""
    recipe = RECIPES[name]()
    batch = _batch(recipe.spec.resolution, recipe.spec.channels, recipe.spec.c_dim)
    variables = jax.jit(recipe.init)(jax.random.key(1), batch)
    opts = recipe.optimizers()
    updates = {}
    for phase in recipe.phases:
        def update(params, colls, key, phase=phase):
            m = phase.module
            # Gradients for both modules in one pass: the other module's must be exactly zero in
            # D phases (fakes are detached); the trainer only ever applies params[m]'s.
            (loss, (metrics, new_colls, _)), all_grads = jax.value_and_grad(
                lambda p: phase.loss(p, colls, {}, batch, key), has_aux=True)(params)
            grads, other_grads = all_grads[m], all_grads["D" if m == "G" else "G"]
            upd, _ = opts[m].update(grads, opts[m].init(params[m]), params[m])
            raw = optax.apply_updates(params[m], upd)
            new_p = phase.post_update(raw) if phase.post_update is not None else raw
            return loss, metrics, {**params, m: new_p}, new_colls, raw, other_grads
        updates[phase.name] = jax.jit(update)
    updates["generate"] = jax.jit(recipe.generate)
    return recipe, variables, batch, updates


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_phases_update_only_their_module(name):
    recipe, variables, batch, updates = _setup(name)
    params, colls = _split(variables)
    assert [p.name for p in recipe.phases] == ["Dmain", "Gmain"]   # critic first
    for phase in recipe.phases:
        loss, metrics, new_params, _, _, other_grads = updates[phase.name](params, colls, jax.random.key(2))
        assert np.isfinite(float(loss)), (name, phase.name)
        assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
        assert {"loss", "fake_score"} <= set(metrics)
        m = phase.module
        other = "D" if m == "G" else "G"
        assert _max_abs_diff(new_params[m], params[m]) > 0, f"{name}/{phase.name} did not change {m}"
        assert _max_abs_diff(new_params[other], params[other]) == 0
        if m == "D":
            assert "real_score" in metrics
            assert _max_abs_diff(other_grads, jax.tree_util.tree_map(jnp.zeros_like, other_grads)) == 0, \
                f"{name}: the D loss leaks gradient into G"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_generate_shape_range_and_grid(name):
    recipe, variables, _, fns = _setup(name)
    z, c = recipe.grid_inputs(jax.random.key(3), 2, 3)
    assert z.shape == (6, recipe.z_dim) and c.shape == (6, recipe.c_dim)
    img = fns["generate"](variables["G"], z, c, jax.random.key(4))
    s = recipe.spec
    assert img.shape == (6, s.resolution, s.resolution, s.channels)
    assert float(jnp.min(img)) >= -1 and float(jnp.max(img)) <= 1
    assert float(jnp.std(img)) > 0


def test_cgan_labels_change_the_samples_and_are_required():
    recipe, variables, batch, fns = _setup("cgan")
    z = jnp.tile(jax.random.normal(jax.random.key(0), (1, recipe.z_dim)), (6, 1))
    img = fns["generate"](variables["G"], z, jnp.tile(jnp.eye(3), (2, 1)), jax.random.key(0))
    assert float(jnp.max(jnp.abs(img[0] - img[1]))) > 1e-4
    with pytest.raises(ValueError, match="use_labels"):
        CGANRecipe(DataSpec(8, 1, 0), **TINY_MLP)
    with pytest.raises(ValueError, match="label"):
        recipe.d_loss(*_split(variables), {}, {"image": batch["image"], "label": jnp.zeros((B, 0))}, jax.random.key(0))


def test_gan_g_losses_follow_their_formulas():
    ns, variables, batch, _ = _setup("gan")
    mm = VanillaGANRecipe(DataSpec(8, 1, 0), g_loss="minimax", d_dropout=0.5, **TINY_MLP)
    params, colls = _split(variables)

    @jax.jit
    def losses(params, colls, key):
        return (ns.g_scores(params, colls, batch, key)[0], ns.g_loss(params, colls, {}, batch, key)[0],
                mm.g_loss(params, colls, {}, batch, key)[0])

    logits, l_ns, l_mm = losses(params, colls, jax.random.key(5))
    np.testing.assert_allclose(l_ns, jnp.mean(jax.nn.softplus(-logits)), rtol=1e-6)
    np.testing.assert_allclose(l_mm, -jnp.mean(jax.nn.softplus(logits)), rtol=1e-6)
    with pytest.raises(ValueError, match="g_loss"):
        VanillaGANRecipe(DataSpec(8, 1, 0), g_loss="hinge")


def test_dcgan_loss_updates_batch_stats_and_generate_uses_running_stats():
    recipe, variables, _, fns = _setup("dcgan")
    params, colls = _split(variables)
    assert set(colls["G"]) == {"batch_stats"} and set(colls["D"]) == {"batch_stats"}
    for phase in ("Dmain", "Gmain"):
        new_colls = fns[phase](params, colls, jax.random.key(6))[3]
        assert _max_abs_diff(new_colls["G"], colls["G"]) > 0, phase   # G ran in train mode
        assert _max_abs_diff(new_colls["D"], colls["D"]) > 0, phase
        assert jax.tree_util.tree_structure(new_colls) == jax.tree_util.tree_structure(colls)
    # Inference mode: a sample does not depend on the rest of its batch.
    z = jax.random.normal(jax.random.key(7), (6, recipe.z_dim))
    none = jnp.zeros((6, 0))
    full = fns["generate"](variables["G"], z, none, None)
    swapped = fns["generate"](variables["G"], z.at[1:].set(-z[1:]), none, None)
    np.testing.assert_allclose(full[0], swapped[0], atol=1e-5)
    assert float(jnp.max(jnp.abs(full[1] - swapped[1]))) > 1e-4


def test_wgan_clipping_keeps_critic_in_box():
    recipe, variables, _, fns = _setup("wgan")   # lr=0.1: the unclipped update leaves the box
    c = recipe.clip
    params, colls = _split(variables)
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(params["D"])) <= c
    _, _, new_params, _, raw, _ = fns["Dmain"](params, colls, jax.random.key(8))
    clipped = new_params["D"]
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(raw)) > c
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(clipped)) <= c
    assert recipe.phases[0].interval == 1 and recipe.phases[1].interval == 5
    assert recipe.phases[1].post_update is None


def test_wgan_gp_config_and_metrics():
    recipe, variables, _, fns = _setup("wgan_gp")
    assert recipe.phases[0].post_update is None and recipe.phases[1].interval == 5
    metrics = fns["Dmain"](*_split(variables), jax.random.key(9))[1]
    assert float(metrics["gp"]) > 0 and float(metrics["drift"]) >= 0
    with pytest.raises(ValueError, match="d_norm='batch'"):
        WGANGPRecipe(DataSpec(16, 1, 0), d_norm="batch", **TINY_CONV)


def test_gradient_penalty_linear_critic():
    x = jnp.asarray(RNG.normal(size=(6, 4, 4, 2)), jnp.float32)
    y = jnp.asarray(RNG.normal(size=(6, 4, 4, 2)), jnp.float32)
    w = jnp.asarray(RNG.normal(size=(4, 4, 2)), jnp.float32)
    unit = w / jnp.linalg.norm(w)
    linear = lambda v, w: jnp.sum(v * w, axis=(1, 2, 3))
    gp1 = gradient_penalty(lambda v: linear(v, unit), x, y, jax.random.key(0))
    assert gp1.shape == (6,) and float(jnp.max(gp1)) < 1e-6
    gp2 = gradient_penalty(lambda v: linear(v, 2.0 * unit), x, y, jax.random.key(0))
    np.testing.assert_allclose(gp2, 1.0, rtol=1e-4)   # (||2u|| - 1)^2
    gp3 = gradient_penalty(lambda v: jnp.sum(v ** 2, axis=(1, 2, 3)), x, y, jax.random.key(0))
    assert float(jnp.min(gp3)) > 0


# --- networks ---------------------------------------------------------------------------------

def test_conv_transpose_2x_matches_lhs_dilated_conv():
    x = jnp.asarray(RNG.normal(size=(2, 5, 3, 4)), jnp.float32)
    w = jnp.asarray(RNG.normal(size=(4, 4, 4, 6)), jnp.float32)
    # Transposed conv k=4, s=2, p=1 as a conv over the 2x zero-stuffed input with the flipped
    # kernel and k-1-p = 2 padding.
    ref = lax.conv_general_dilated(x, w[::-1, ::-1], (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out = conv_transpose_2x(x, w)
    assert out.shape == (2, 10, 6, 6)
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)
    # A single input pixel spreads the (unflipped) kernel around 2i - 1.
    e = jnp.zeros((1, 3, 3, 1)).at[0, 1, 1, 0].set(1.0)
    k = jnp.arange(16.0).reshape(4, 4, 1, 1)
    np.testing.assert_array_equal(conv_transpose_2x(e, k)[0, 1:5, 1:5, 0], k[:, :, 0, 0])


def _lax_conv_down(x, w):
    return lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_conv_down_2x_value_and_custom_gradients():
    x = jnp.asarray(RNG.normal(size=(2, 6, 4, 3)), jnp.float32)
    w = jnp.asarray(RNG.normal(size=(4, 4, 3, 2)), jnp.float32)
    np.testing.assert_allclose(conv_down_2x(x, w), _lax_conv_down(x, w), atol=1e-5)
    # The custom VJP against lax's own, to second order (a gradient-penalty-like objective).
    def gp_like(conv):
        def f(x, w):
            gx = jax.grad(lambda v: jnp.sum(jnp.tanh(conv(v, w))))(x)
            return jnp.sum(jnp.sqrt(jnp.sum(gx ** 2, axis=(1, 2, 3)) + 1e-6))
        return f
    g_fast = jax.jit(jax.grad(gp_like(conv_down_2x), argnums=(0, 1)))(x, w)
    g_ref = jax.jit(jax.grad(gp_like(_lax_conv_down), argnums=(0, 1)))(x, w)
    for a, b in zip(g_fast, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    check_grads(jax.jit(conv_down_2x), (x[:1, :4], w), order=2, modes=["rev"])
    with pytest.raises(ValueError, match="even"):
        conv_down_2x(jnp.zeros((1, 5, 4, 3)), w)


def test_dcgan_networks_shapes():
    """G at 8x8 (one block) and 16x16 conditional; D at 16x16 with every norm, all in one program."""
    z = jnp.asarray(RNG.normal(size=(3, 5)), jnp.float32)
    c = jnp.eye(2)[jnp.array([0, 1, 0])]
    G8 = Generator(z_dim=5, img_resolution=8, img_channels=1, ngf=4)
    G16 = Generator(z_dim=5, c_dim=2, img_resolution=16, img_channels=3, ngf=8)
    Ds = {norm: Discriminator(c_dim=2, img_resolution=16, img_channels=3, ndf=4, norm=norm)
          for norm in ("batch", "layer", "none")}

    @jax.jit
    def run(key):
        out = {}
        for name, net, x, cc in (("G8", G8, z, None), ("G16", G16, z, c)):
            v = net.init(key, x, cc)
            out[name] = (v, net.apply(v, x, cc))
        img = out["G16"][1]
        for norm, D in Ds.items():
            v = D.init(key, img, c)
            out[norm] = (v, D.apply(v, img, c))
        return out

    out = run(jax.random.key(0))
    for name, shape in (("G8", (3, 8, 8, 1)), ("G16", (3, 16, 16, 3))):
        img = out[name][1]
        assert img.shape == shape and float(jnp.max(jnp.abs(img))) <= 1 and float(jnp.std(img)) > 0
    assert out["G8"][0]["params"]["project"]["kernel"].shape == (5, 16 * 4)        # 4x4x(ngf)
    assert out["G16"][0]["params"]["project"]["kernel"].shape == (5 + 2, 16 * 16)  # 4x4x(2 ngf), z + c
    assert out["G16"][0]["params"]["to_img"]["kernel"].shape == (4, 4, 8, 3)
    k = out["G16"][0]["params"]["up0"]["kernel"]                                     # init N(0, 0.02)
    assert k.shape == (4, 4, 16, 8) and abs(float(jnp.std(k)) - 0.02) < 0.002 and abs(float(jnp.mean(k))) < 0.003
    for norm in Ds:
        d_vars, scores = out[norm]
        assert scores.shape == (3,)
        assert ("batch_stats" in d_vars) == (norm == "batch")
        assert ("conv1_ln" in d_vars["params"]) == (norm == "layer")
        assert d_vars["params"]["conv0"]["kernel"].shape == (4, 4, 3 + 2, 4)          # image + label maps
    with pytest.raises(ValueError, match="img_resolution"):
        Generator(img_resolution=12).init(jax.random.key(0), jnp.zeros((1, 100)))
    with pytest.raises(ValueError, match=r"\[N, 5\]"):
        G16.apply(out["G16"][0], jnp.zeros((3, 6)), c)


def test_mlp_networks_shapes_and_errors():
    G = MLPGenerator(z_dim=3, c_dim=2, img_resolution=4, img_channels=2, hidden=(8, 8))
    z, c = jnp.ones((5, 3)), jnp.eye(2)[jnp.array([0, 1, 1, 0, 1])]
    D = MLPDiscriminator(c_dim=2, img_resolution=4, img_channels=2, hidden=(8,), dropout=0.5)

    @jax.jit
    def run(key):
        g_vars = G.init(key, z, c)
        img = G.apply(g_vars, z, c)
        d_vars = D.init(key, img, c)
        train = [D.apply(d_vars, img, c, train=True, rngs={"dropout": jax.random.fold_in(key, i)}) for i in (1, 2)]
        return g_vars, img, d_vars, D.apply(d_vars, img, c), D.apply(d_vars, img, c), train

    g_vars, img, d_vars, eval1, eval2, (a, b) = run(jax.random.key(0))
    assert img.shape == (5, 4, 4, 2) and float(jnp.max(jnp.abs(img))) <= 1
    assert eval1.shape == (5,)
    np.testing.assert_array_equal(eval1, eval2)          # no dropout in inference mode
    assert float(jnp.max(jnp.abs(a - b))) > 0            # dropout is live in train mode
    with pytest.raises(ValueError, match="labels"):
        G.apply(g_vars, z, None)
    with pytest.raises(ValueError, match=r"\[N, 4, 4, 2\]"):
        D.apply(d_vars, jnp.zeros((5, 4, 4, 1)), c)


def test_recipe_init_rejects_wrong_image_shape():
    recipe = RECIPES["dcgan"]()
    with pytest.raises(ValueError, match=r"batch\['image'\]"):
        recipe.init(jax.random.key(0), _batch(8, 1, 0))


# --- latent ops -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolate_endpoints(method):
    z0, z1 = (jnp.asarray(RNG.normal(size=(7,)), jnp.float32) for _ in range(2))
    path = latent_ops.interpolate(z0, z1, 5, method)
    assert path.shape == (5, 7)
    np.testing.assert_allclose(path[0], z0, atol=1e-5)
    np.testing.assert_allclose(path[-1], z1, atol=1e-5)
    batched = latent_ops.interpolate(jnp.stack([z0, z1]), jnp.stack([z1, z0]), 3, method)
    assert batched.shape == (3, 2, 7)
    np.testing.assert_allclose(batched[:, 1], path[::2][::-1], atol=1e-5)


def test_interpolate_linear_and_slerp_values():
    e1, e2 = jnp.eye(2)
    np.testing.assert_allclose(latent_ops.interpolate(e1, e2, 3, "linear")[1], [0.5, 0.5])
    np.testing.assert_allclose(latent_ops.interpolate(e1, e2, 3, "slerp")[1], [2 ** -0.5, 2 ** -0.5], atol=1e-6)
    z0 = jnp.asarray(RNG.normal(size=(16,)), jnp.float32)
    z1 = jnp.asarray(RNG.normal(size=(16,)), jnp.float32)
    z1 = z1 * jnp.linalg.norm(z0) / jnp.linalg.norm(z1)
    norms = jnp.linalg.norm(latent_ops.interpolate(z0, z1, 9, "slerp"), axis=-1)
    np.testing.assert_allclose(norms, jnp.linalg.norm(z0), rtol=1e-5)
    lin = jnp.linalg.norm(latent_ops.interpolate(z0, z1, 9, "linear"), axis=-1)
    assert float(lin[4]) < float(norms[4]) - 1e-3       # the chord dips inside the sphere
    par = latent_ops.interpolate(z0, 2 * z0, 3, "slerp")  # parallel: falls back to lerp
    np.testing.assert_allclose(par[1], 1.5 * z0, rtol=1e-5)
    with pytest.raises(ValueError, match="method"):
        latent_ops.interpolate(z0, z1, 3, "cubic")
    with pytest.raises(ValueError, match="steps"):
        latent_ops.interpolate(z0, z1, 1)


def test_vector_arithmetic_and_variations():
    za = jnp.array([[1.0, 0, 0], [3, 0, 0], [2, 0, 3]])     # mean (2, 0, 1)
    zb = jnp.array([[0.0, 1, 0], [0, 1, 0], [0, 1, 3]])     # mean (0, 1, 1)
    zc = jnp.array([[0.0, 0, 5], [0, 0, 5], [0, 3, 5]])     # mean (0, 1, 5)
    np.testing.assert_allclose(latent_ops.vector_arithmetic(za, zb, zc), [2.0, 0.0, 5.0], atol=1e-6)
    with pytest.raises(ValueError, match="z_dim"):
        latent_ops.vector_arithmetic(za, zb, jnp.zeros((3, 4)))
    z = jnp.arange(4.0)
    v = latent_ops.variations(jax.random.key(0), z, num=8, scale=0.25)
    assert v.shape == (9, 4)
    np.testing.assert_array_equal(v[0], z)
    d = v[1:] - z
    assert float(jnp.max(jnp.abs(d))) <= 0.25 and float(jnp.min(jnp.std(d, axis=0))) > 0
