"""ProGAN: the fade-in arithmetic of G and D (alpha = 0 is the level below, nearest-upscaled /
box-downscaled; alpha = 1 is the new level), the real-image blend, the minibatch-stddev groups,
equalized-lr scaling, the official lod schedule, and the phase driver (handover of G, D and
G_ema at fixed shapes, fresh Adam per phase, resume) on an 8x8 run."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments.progan as E
from gigajax.train import progressive
from gigajax.models import progan as P
from gigajax.train.checkpoint import Checkpoints
from gigajax.train.export import load_variables
from gigajax.train.recipe import DataSpec
from gigajax.train.recipes.progan import ProGANRecipe

# Its module fixtures build and compile models: keep the module on one xdist worker (setup.cfg's
# --dist loadgroup) rather than building them once per worker.
pytestmark = pytest.mark.xdist_group("progan")

KW = dict(fmap_base=64, fmap_max=16)


@pytest.fixture(scope="module")
def nets():
    G = P.Generator(resolution=16, num_channels=3, latent_size=8, **KW)
    D = P.Discriminator(resolution=16, num_channels=3, **KW)
    z = jax.random.normal(jax.random.key(0), (8, 8))
    vg = jax.jit(lambda k: G.init(k, z, method=G.init_all))(jax.random.key(1))
    vd = jax.jit(lambda k: D.init(k, jnp.zeros((8, 16, 16, 3)), method=D.init_all))(jax.random.key(2))
    # Non-zero biases, so that a wrong bias placement shows.
    rnd = lambda v, k: jax.tree_util.tree_map(lambda a: a + 0.1 * jax.random.normal(k, a.shape), v)
    return G, D, z, rnd(vg, jax.random.key(3)), rnd(vd, jax.random.key(4))


def test_generator_fade_in_ends(nets):
    G, _, z, vg, _ = nets
    for level in (1, 2):
        below = G.apply(vg, z, level - 1)
        stable = G.apply(vg, z, level)
        np.testing.assert_allclose(G.apply(vg, z, level, 0.0), P.upscale2d(below), atol=1e-6)
        np.testing.assert_allclose(G.apply(vg, z, level, 1.0), stable, atol=1e-6)
        mid = G.apply(vg, z, level, 0.25)
        np.testing.assert_allclose(mid, 0.75 * P.upscale2d(below) + 0.25 * stable, atol=1e-5)
        assert np.abs(stable - P.upscale2d(below)).max() > 1e-2     # the two ends differ


def test_discriminator_fade_in_ends(nets):
    _, D, _, _, vd = nets
    img = jax.random.normal(jax.random.key(5), (8, 16, 16, 3))
    for level, x in ((2, img), (1, P.downscale2d(img))):
        below = D.apply(vd, P.downscale2d(x), level - 1)
        stable = D.apply(vd, x, level)
        np.testing.assert_allclose(D.apply(vd, x, level, 0.0), below, atol=1e-5)
        np.testing.assert_allclose(D.apply(vd, x, level, 1.0), stable, atol=1e-5)
        assert np.abs(stable - below).max() > 1e-3


def test_resampling_and_pixel_norm():
    x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
    np.testing.assert_array_equal(P.upscale2d(x)[:, ::2, ::2], x)
    np.testing.assert_array_equal(P.upscale2d(x)[:, 1::2, 1::2], x)
    np.testing.assert_allclose(P.downscale2d(x)[0, 0, 0], x[0, :2, :2].mean(axis=(0, 1)))
    np.testing.assert_allclose(P.downscale2d(P.upscale2d(x)), x)
    y = P.pixel_norm(x + 1)
    np.testing.assert_allclose(jnp.mean(y ** 2, axis=-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="multiple of 2"):
        P.downscale2d(jnp.zeros((1, 3, 3, 1)))


def test_equalized_lr_scaling():
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 4))
    conv = P.EqualizedConv(6, 3, gain=1.7)
    v = conv.init(jax.random.key(1), x)
    w, b = v["params"]["weight"], v["params"]["bias"]
    # Stored weights are N(0, 1); the He constant is applied at run time.
    assert 0.7 < float(jnp.std(w)) < 1.3 and w.shape == (3, 3, 4, 6)
    b = b + 0.5
    v = {"params": {"weight": w, "bias": b}}
    ref = jax.lax.conv_general_dilated(x, w * 1.7 / math.sqrt(3 * 3 * 4), (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
    np.testing.assert_allclose(conv.apply(v, x), ref, atol=1e-5)
    # The fused conv-downscale: a 2x2 average of the correlation, then the bias.
    down = P.EqualizedConv(6, 3, gain=1.7, down=True)
    x4 = x[:, :4, :4]
    ref = P.downscale2d(jax.lax.conv_general_dilated(x4, w * 1.7 / math.sqrt(36), (1, 1), "SAME",
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))) + b
    np.testing.assert_allclose(down.apply(v, x4), ref, atol=1e-5)
    dense = P.EqualizedDense(3, gain=math.sqrt(2) / 4)
    h = jax.random.normal(jax.random.key(2), (2, 16))
    vd = dense.init(jax.random.key(3), h)
    np.testing.assert_allclose(dense.apply(vd, h), h @ (vd["params"]["weight"] * math.sqrt(2) / 4 / 4), atol=1e-6)


def test_minibatch_stddev_groups_are_strided(nets):
    # Group size 4 on a batch of 8: sample i shares its statistic with i +- 2, i +- 4, i +- 6.
    from gigajax.models.stylegan2.discriminator import MinibatchStdLayer
    x = jax.random.normal(jax.random.key(0), (8, 2, 2, 3))
    y = MinibatchStdLayer(group_size=4, num_channels=1).apply({}, x)[..., -1]
    for i in range(8):
        members = x[i % 2::2]
        want = jnp.mean(jnp.sqrt(jnp.var(members, axis=0) + 1e-8))
        np.testing.assert_allclose(y[i], want, rtol=1e-5)


def test_reals_blend():
    spec = DataSpec(resolution=16, channels=1, c_dim=0)
    img = jax.random.uniform(jax.random.key(0), (2, 16, 16, 1))
    fade = ProGANRecipe(spec, level=1, fading=True, fade_kimg=1.0, latent_size=8, **KW)
    x8 = P.downscale2d(img)
    np.testing.assert_allclose(fade.reals(img, 1.0), x8, atol=1e-6)
    np.testing.assert_allclose(fade.reals(img, 0.0), P.upscale2d(P.downscale2d(x8)), atol=1e-6)
    np.testing.assert_allclose(fade.reals(img, 0.5), 0.5 * (x8 + P.upscale2d(P.downscale2d(x8))), atol=1e-6)
    assert float(fade.alpha(250.0)) == pytest.approx(0.25) and float(fade.alpha(5e3)) == 1.0
    stable = ProGANRecipe(spec, level=2, latent_size=8, **KW)
    np.testing.assert_array_equal(stable.reals(img, 0.0), img)
    assert float(stable.alpha(0.0)) == 1.0


def _official_lod(kimg, R, r0, train_k, fade_k):
    """The official TrainingSchedule's lod at kimg (tkarras/progressive_growing_of_gans train.py)."""
    phase_dur = train_k + fade_k
    phase_idx = int(math.floor(kimg / phase_dur))
    phase_kimg = kimg - phase_idx * phase_dur
    lod = R - int(math.floor(math.log2(r0))) - phase_idx
    lod -= max(phase_kimg - train_k, 0.0) / fade_k
    return max(lod, 0.0)


def test_schedule_follows_the_official_lod():
    c = E.get_config()
    c.lod_training_kimg, c.lod_transition_kimg, c.total_kimg = 3.0, 2.0, 30.0
    phases = progressive.schedule(c, 32)
    assert [(l, f) for l, f, _ in phases] == [(0, False), (1, True), (1, False), (2, True), (2, False), (3, True),
                                              (3, False)]
    assert sum(k for _, _, k in phases) == pytest.approx(30.0)
    starts = np.cumsum([0.0] + [k for _, _, k in phases])
    for kimg in np.arange(0.05, 30.0, 0.1):
        i = int(np.searchsorted(starts, kimg, side="right")) - 1
        level, fading, _ = phases[i]
        alpha = (kimg - starts[i]) / 2.0 if fading else 1.0
        assert _official_lod(kimg, 5, 4, 3.0, 2.0) == pytest.approx(3 - level + (1 - alpha)), kimg
    c.total_kimg = 14.0
    with pytest.raises(ValueError, match="before the networks reach"):
        progressive.schedule(c, 32)


def test_bad_inputs(nets):
    G, D, z, vg, vd = nets
    with pytest.raises(ValueError, match="level must be"):
        G.apply(vg, z, 3)
    with pytest.raises(ValueError, match=r"takes images \[N, 8, 8, 3\]"):
        D.apply(vd, jnp.zeros((8, 16, 16, 3)), 1)
    spec = DataSpec(resolution=16, channels=1, c_dim=0)
    with pytest.raises(ValueError, match="nothing to fade"):
        ProGANRecipe(spec, level=0, fading=True)
    with pytest.raises(ValueError, match="outside"):
        ProGANRecipe(spec, level=3)
    with pytest.raises(ValueError, match="unconditional"):
        ProGANRecipe(DataSpec(16, 1, 10), level=0)


def _tiny_run_config():
    c = E.get_config()
    c.resolution = 8
    c.batch_size = 8
    c.lod_training_kimg = c.lod_transition_kimg = 0.016      # two steps per phase
    c.total_kimg = 0.048
    c.snapshot_kimg = 0.016
    c.final_metric = ""
    c.log_every = 1
    c.grid_rows = c.grid_cols = 2
    c.model.update(latent_size=8, **KW)
    return c


def test_phase_driver_hands_over_and_resumes(tmp_path):
    c = _tiny_run_config()
    result = E.run(c, E.build, tmp_path, progress=False)
    assert result["status"] == "done" and result["kimg"] == pytest.approx(0.048)
    names = ["4_stable", "8_fade", "8_stable"]
    exports = [load_variables(tmp_path / n / "handover.npz") for n in names]
    assert [m["resolution"] for _, m in exports] == [4, 8, 8] and [m["fading"] for _, m in exports] == [False, True, False]
    # Shapes are the final ones in every phase; the 8x8 layers, idle at 4x4, train in the fade.
    for (a, _), (b, _) in zip(exports, exports[1:]):
        assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    assert np.abs(exports[0][0]["G"]["params"]["b8_conv1"]["weight"]
                  - exports[1][0]["G"]["params"]["b8_conv1"]["weight"]).max() > 0    # trained in the fade
    # The fade's first state is the 4x4 phase's export (G, D and G_ema), with a fresh Adam.
    from gigajax.train.loop import load_run
    _, _, state = load_run(tmp_path / "8_fade", E.build, step=0)
    for key, tree in (("G", state.params["G"]), ("D", state.params["D"]), ("G_ema", state.ema["params"])):
        for x, y in zip(jax.tree_util.tree_leaves(exports[0][0][key]["params"]), jax.tree_util.tree_leaves(tree)):
            np.testing.assert_array_equal(x, y)
    counts = [np.asarray(x) for x in jax.tree_util.tree_leaves(state.opt["G"]) if np.asarray(x).dtype == np.int32]
    assert counts and all(int(x) == 0 for x in counts)
    log = [json.loads(line) for line in (tmp_path / "8_fade" / "metrics.jsonl").read_text().splitlines()]
    assert [r["Dmain/alpha"] for r in log] == pytest.approx([0.0, 0.5])
    # A re-run skips every phase; a longer last phase resumes from its checkpoint.
    step = Checkpoints(tmp_path / "8_stable", keep=99).latest_step()
    E.run(c, E.build, tmp_path, progress=False)
    c.total_kimg = 0.056
    E.run(c, E.build, tmp_path, progress=False)
    assert Checkpoints(tmp_path / "8_stable", keep=99).latest_step() == step + 1
    assert progressive.last_phase_dir(tmp_path).endswith("8_stable")
