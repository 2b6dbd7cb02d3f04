"""StyleGAN v1: the layer epilogue in the official order (noise * strength, bias, leaky ReLU,
instance norm, AdaIN), the mapping's learning-rate multiplier, truncation, style mixing and the
w_avg update, the fade-in ends, the blur, R1, the handover of w_avg between phases, and the tools'
truncation grid on the grown network."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gigajax.models import progan as P
from gigajax.models.stylegan1 import Generator, MappingNetwork, SynthesisNetwork, instance_norm
from gigajax.train.export import save_variables
from gigajax.train.recipe import DataSpec
from gigajax.train.recipes.stylegan1 import StyleGAN1Recipe

# Its module fixtures build and compile models: keep the module on one xdist worker (setup.cfg's
# --dist loadgroup) rather than building them once per worker.
pytestmark = pytest.mark.xdist_group("stylegan1")

NET = dict(latent_size=8, dlatent_size=8, mapping_layers=2, mapping_fmaps=8, fmap_base=64, fmap_max=16)
SPEC = DataSpec(resolution=16, channels=1, c_dim=0)


def _perturb(tree, key, scale=0.3):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(treedef, [a + scale * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)])


@pytest.fixture(scope="module")
def gen():
    G = Generator(resolution=16, num_channels=1, **NET)
    z = jax.random.normal(jax.random.key(0), (8, 8))
    v = jax.jit(lambda k: G.init({"params": k}, z, method=G.init_all))(jax.random.key(1))
    # Non-zero noise strengths, biases and a w_avg, so that every term of the epilogue shows.
    v = {**v, "params": _perturb(v["params"], jax.random.key(2), 0.1),
         "buffers": {"w_avg": jax.random.normal(jax.random.key(3), (8,))}}
    return G, z, v


def test_epilogue_order():
    S = SynthesisNetwork(resolution=8, num_channels=1, dlatent_size=8, fmap_base=64, fmap_max=16)
    ws = jax.random.normal(jax.random.key(0), (2, S.num_layers, 8))
    v = S.init({"params": jax.random.key(1)}, ws, method=S.init_all)
    v = {**v, "params": _perturb(v["params"], jax.random.key(2))}
    x = jax.random.normal(jax.random.key(3), (2, 8, 8, 16))
    got = S.apply(v, x, 2, ws[:, 2], "const", method=lambda m, *a: m._epilogue(*a))
    p = v["params"]
    noise = v["noise"]["noise2"]["value"][None]                                   # [1, 8, 8, 1]
    y = x + noise * p["noise_strength2"]
    y = y + p["bias2"]
    y = jnp.where(y >= 0, y, 0.2 * y)
    y = (y - y.mean(axis=(1, 2), keepdims=True))
    y = y / jnp.sqrt(jnp.mean(y ** 2, axis=(1, 2), keepdims=True) + 1e-8)
    sw, sb = p["style2"]["weight"], p["style2"]["bias"]
    style = ws[:, 2] @ (sw / math.sqrt(8)) + sb                                  # gain 1
    want = y * (style[:, None, None, :16] + 1) + style[:, None, None, 16:]
    np.testing.assert_allclose(got, want, atol=1e-5)
    # 'none' drops the noise term, 'random' draws per-pixel noise shared by the channels.
    none = S.apply(v, x, 2, ws[:, 2], "none", method=lambda m, *a: m._epilogue(*a))
    assert np.abs(none - got).max() > 1e-3
    with pytest.raises(ValueError, match="noise_mode"):
        S.apply(v, ws, 1, noise_mode="bogus")


def test_official_synthesis_switches():
    # const_input_layer=False: the 4x4 input is dense(w_0) (no bias, gain sqrt(2)/4) reshaped
    # channel-major, then the epilogue; the other switches drop their epilogue step.
    S = SynthesisNetwork(resolution=8, num_channels=1, dlatent_size=8, fmap_base=64, fmap_max=16,
                         const_input_layer=False, use_noise=False, use_instance_norm=False, use_pixel_norm=True)
    ws = jax.random.normal(jax.random.key(0), (2, S.num_layers, 8))
    v = S.init({"params": jax.random.key(1)}, ws, method=S.init_all)
    v = {**v, "params": _perturb(v["params"], jax.random.key(2))}
    p = v["params"]
    assert "const" not in p and not any(k.startswith("noise_strength") for k in p)
    dense = ws[:, 0] @ (p["input_dense"]["weight"] * math.sqrt(2) / 4 / math.sqrt(8))       # [2, 16 * 16]
    x = dense.reshape(2, 16, 4, 4).transpose(0, 2, 3, 1) + p["bias0"]
    x = jnp.where(x >= 0, x, 0.2 * x)
    x = x * jax.lax.rsqrt(jnp.mean(x ** 2, axis=-1, keepdims=True) + 1e-8)                 # pixel norm
    style = ws[:, 0] @ (p["style0"]["weight"] / math.sqrt(8)) + p["style0"]["bias"]
    want = x * (style[:, None, None, :16] + 1) + style[:, None, None, 16:]
    got = S.apply(v, ws, "random", method=lambda m, ws, mode: m._epilogue(
        m.input_dense(ws[:, 0]).reshape(2, 16, 4, 4).transpose(0, 2, 3, 1), 0, ws[:, 0], mode), rngs={"noise": jax.random.key(4)})
    np.testing.assert_allclose(got, want, atol=1e-5)
    # Without noise inputs every noise mode draws the same image; with the traditional input the
    # 4x4 block already differs across w.
    imgs = [S.apply(v, ws, 1, None, mode, rngs={"noise": jax.random.key(5)}) for mode in ("random", "const", "none")]
    np.testing.assert_array_equal(imgs[0], imgs[1])
    np.testing.assert_array_equal(imgs[0], imgs[2])
    # use_styles=False: no style layers, and ws only reach the image through the input layer
    B = SynthesisNetwork(resolution=8, num_channels=1, dlatent_size=8, fmap_base=64, fmap_max=16,
                         const_input_layer=False, use_styles=False)
    vb = B.init({"params": jax.random.key(1)}, ws, method=B.init_all)
    assert not any(k.startswith("style") for k in vb["params"])
    ws2 = ws.at[:, 1:].set(0.0)
    np.testing.assert_array_equal(B.apply(vb, ws, 1, None, "const"), B.apply(vb, ws2, 1, None, "const"))


def test_instance_norm_and_blur():
    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3)) * 3 + 1
    y = instance_norm(x)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1, atol=1e-4)
    k = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    w = jnp.asarray(np.tile(k[:, :, None, None], (1, 1, 1, 3)))
    ref = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       feature_group_count=3)
    np.testing.assert_allclose(P.blur121(x), ref, atol=1e-5)


def test_mapping_lr_multiplier():
    M = MappingNetwork(latent_size=4, dlatent_size=3, mapping_layers=2, mapping_fmaps=5, mapping_lrmul=0.01)
    z = jax.random.normal(jax.random.key(0), (3, 4))
    v = M.init(jax.random.key(1), z)
    w0 = v["params"]["dense0"]["weight"]
    assert 50 < float(jnp.std(w0)) < 200                # stored N(0, 1 / lrmul^2)
    v = {"params": {k: {"weight": p["weight"], "bias": p["bias"] + 1.0} for k, p in v["params"].items()}}
    x = z * jax.lax.rsqrt(jnp.mean(z ** 2, axis=1, keepdims=True) + 1e-8)
    for i, fan_in in ((0, 4), (1, 5)):
        p = v["params"][f"dense{i}"]
        x = x @ (p["weight"] * math.sqrt(2) * 0.01 / math.sqrt(fan_in)) + p["bias"] * 0.01
        x = jnp.where(x >= 0, x, 0.2 * x)                   # also after the last layer
    np.testing.assert_allclose(M.apply(v, z), x, atol=1e-5)


def test_truncation(gen):
    G, z, v = gen
    ws = G.apply(v, z, method="map", truncation_psi=1.0)
    t0 = G.apply(v, z, method="map", truncation_psi=0.0, truncation_cutoff=4)
    np.testing.assert_array_equal(t0[:, :4], np.broadcast_to(v["buffers"]["w_avg"], (8, 4, 8)))
    np.testing.assert_array_equal(t0[:, 4:], ws[:, 4:])
    half = G.apply(v, z, method="map", truncation_psi=0.5, truncation_cutoff=None)
    np.testing.assert_allclose(half, 0.5 * (ws + v["buffers"]["w_avg"]), atol=1e-6)


def test_style_mixing_and_w_avg(gen):
    G, z, v = gen
    colls = {k: x for k, x in v.items() if k != "params"}
    w1 = np.asarray(G.apply(v, z, method="map", truncation_psi=1.0))
    mixing = StyleGAN1Recipe(SPEC, level=2, style_mixing_prob=1.0, **NET)
    cutoffs = set()
    for s in range(12):
        ws, new = mixing.mixed_ws(v["params"], colls, z, None, jax.random.key(s))
        ws = np.asarray(ws)
        same = np.all(np.isclose(ws, w1), axis=(0, 2))                    # per layer, over the batch
        k = int(np.argmin(same)) if not same.all() else ws.shape[1]
        assert same[:k].all() and not same[k:].any()                      # one cutoff for the batch
        assert 1 <= k < mixing.cur_layers
        cutoffs.add(k)
        np.testing.assert_allclose(new["buffers"]["w_avg"], 0.995 * v["buffers"]["w_avg"] + 0.005 * w1[:, 0].mean(0),
                                   rtol=1e-5, atol=1e-6)
    assert len(cutoffs) > 1
    plain = StyleGAN1Recipe(SPEC, level=2, style_mixing_prob=0.0, **NET)
    ws, _ = plain.mixed_ws(v["params"], colls, z, None, jax.random.key(0))
    np.testing.assert_array_equal(ws, w1)


def test_synthesis_fade_in_ends(gen):
    G, z, v = gen
    ws = G.apply(v, z, method="map", truncation_psi=1.0)
    below = G.apply(v, ws, 1, None, "const", method="synthesis")
    stable = G.apply(v, ws, 2, None, "const", method="synthesis")
    np.testing.assert_allclose(G.apply(v, ws, 2, 0.0, "const", method="synthesis"), P.upscale2d(below), atol=1e-5)
    np.testing.assert_allclose(G.apply(v, ws, 2, 1.0, "const", method="synthesis"), stable, atol=1e-5)
    np.testing.assert_allclose(G.apply(v, ws, method="synthesize"), stable, atol=1e-5)


def test_r1_and_labels_switch():
    spec = DataSpec(resolution=8, channels=1, c_dim=3)
    r = StyleGAN1Recipe(spec, level=1, conditional=True, **NET)
    batch = {"image": jax.random.uniform(jax.random.key(0), (4, 8, 8, 1)) * 2 - 1,
             "label": jnp.eye(3)[jnp.array([0, 1, 2, 0])]}
    variables = jax.jit(r.init)(jax.random.key(1), batch)
    params = {m: variables[m]["params"] for m in ("G", "D")}
    colls = {m: {k: x for k, x in variables[m].items() if k != "params"} for m in ("G", "D")}
    loss, (metrics, _, _) = jax.jit(r.d_loss)(params, colls, r.init_aux(), batch, jax.random.key(2))
    grad = jax.jit(jax.grad(lambda x: jnp.sum(r._score(params["D"], x, batch["label"], None))))(batch["image"])
    np.testing.assert_allclose(metrics["r1"], jnp.mean(jnp.sum(grad ** 2, axis=(1, 2, 3))), rtol=1e-5)
    # The label switch: the score is the given class's output.
    outs = [r._score(params["D"], batch["image"], jnp.eye(3)[jnp.full((4,), k)], None) for k in range(3)]
    np.testing.assert_allclose(r._score(params["D"], batch["image"], batch["label"], None),
                               [outs[0][0], outs[1][1], outs[2][2], outs[0][3]], atol=1e-6)
    with pytest.raises(ValueError, match="one-hot"):
        r._score(params["D"], batch["image"], None, None)


def test_handover_keeps_w_avg(tmp_path, gen):
    r0 = StyleGAN1Recipe(SPEC, level=1, **NET)
    batch = {"image": jnp.zeros((4, 16, 16, 1)), "label": jnp.zeros((4, 0))}
    v = jax.jit(r0.init)(jax.random.key(0), batch)
    g = {**v["G"], "buffers": {"w_avg": jnp.arange(8.0)}}
    path = save_variables(tmp_path / "handover.npz", {"G": g, "D": v["D"], "G_ema": g})
    r1 = StyleGAN1Recipe(SPEC, level=2, fading=True, fade_kimg=1.0, init_path=str(path), **NET)
    v1 = jax.jit(r1.init)(jax.random.key(5), batch)
    np.testing.assert_array_equal(v1["G"]["buffers"]["w_avg"], np.arange(8.0))
    np.testing.assert_array_equal(v1["G_ema"]["buffers"]["w_avg"], np.arange(8.0))
    assert float(v1["G"]["progan"]["alpha"]) == 0.0                  # the fade starts at the level below
    for a, b in zip(jax.tree_util.tree_leaves(v["G"]["params"]), jax.tree_util.tree_leaves(v1["G"]["params"])):
        np.testing.assert_array_equal(a, b)


def test_tools_truncation_grid(gen):
    from gigajax.tools import grids
    from gigajax.tools.sampler import Sampler
    G, _, v = gen
    sampler = Sampler(G, v)
    g = grids.truncation_grid(sampler, [0, 1], (1.0, 0.0)).reshape(2, 2, 16, 16, 1)
    avg = sampler.images(np.broadcast_to(np.asarray(v["buffers"]["w_avg"]), (1, G.num_layers, 8)))[0]
    np.testing.assert_allclose(g[0, 1], avg, atol=1e-5)
    np.testing.assert_allclose(g[1, 1], avg, atol=1e-5)
    assert np.abs(g[0, 0] - g[1, 0]).max() > 1e-3
