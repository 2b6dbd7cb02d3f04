"""StyleGAN-XL's recipe: phases and optimizer constants, the hinge sums, one step of the stem
(what moves, what stays), the path-length veto, errors. The superres stage (frozen stem,
classifier guidance) is exercised through the stage driver in test_stylegan_xl_experiment.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gigajax.train.recipe import DataSpec
from gigajax.train.recipes.stylegan_xl import StyleGANXLRecipe, hinge_sum, stage_index
from gigajax.train.state import create_state
from gigajax.train.step import SKIP_UPDATE, jit_train_step

# Its module fixtures build and compile models: keep the module on one xdist worker (setup.cfg's
# --dist loadgroup) rather than building them once per worker.
pytestmark = pytest.mark.xdist_group("stylegan_xl_recipe")

B = 4
TINY = dict(z_dim=8, w_dim=8, cbase=128, cmax=4, syn_layers=3, head_layers=3, margin_size=2, rand_embedding=True,
            interp_size=64, proj_im_res=64, d_width_div=16, pl_weight=0.0)


def _batch(res, seed=0):
    r = np.random.default_rng(seed)
    return {"image": r.integers(0, 256, (B, res, res, 1), dtype=np.uint8),
            "label": np.eye(10, dtype=np.float32)[r.integers(0, 10, B)]}


def _model_batch(res, seed=0):
    b = _batch(res, seed)
    return {"image": jnp.asarray(b["image"], jnp.float32) / 127.5 - 1, "label": jnp.asarray(b["label"])}


def _steps(recipe, res, n):
    mesh = Mesh(np.asarray(jax.devices()[:1]), ("data",))
    repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    opts = recipe.optimizers()
    state = jax.jit(lambda k, b: create_state(recipe, k, b, opts), out_shardings=repl)(jax.random.key(0), _batch(res))
    step = jit_train_step(recipe, opts, batch_size=B, ema_kimg=0.001, ema_rampup=0.0, state_sharding=repl,
                          batch_sharding=data, donate=False)
    history = [state]
    for i in range(n):
        state, metrics = step(state, _batch(res, i), i)
        history.append(state)
    return jax.device_get(history), jax.device_get(metrics)


@pytest.fixture(scope="module")
def stem_run():
    recipe = StyleGANXLRecipe(DataSpec(16, 1, 10), **TINY)
    return recipe, _steps(recipe, 16, 2)


def _leaves(tree):
    return jax.tree_util.tree_leaves(tree)


def test_stage_index_and_hinge():
    assert [stage_index(r, 16) for r in (16, 32, 64)] == [0, 1, 2]
    for bad in (8, 24):
        with pytest.raises(ValueError, match="power of two"):
            stage_index(bad, 16)
    a = jnp.array([[2.0, -2.0], [0.0, 0.5]])
    b = jnp.array([[-3.0]])
    # relu(1 + L) per logit, mean over a sample's logits, summed over samples and backbones
    assert float(hinge_sum([a, jnp.zeros((2, 1))], 1.0)) == pytest.approx((3 + 0) / 2 + (1 + 1.5) / 2 + 2)
    assert float(hinge_sum([b], -1.0)) == pytest.approx(4.0)


def test_phases_and_lazy_compensation():
    r = StyleGANXLRecipe(DataSpec(16, 1, 10), **{**TINY, "pl_weight": 2.0})
    assert [p.name for p in r.phases] == ["Gmain", "Greg", "Dmain"] and r.phases[1].interval == 4
    assert [p.name for p in StyleGANXLRecipe(DataSpec(16, 1, 10), **TINY).phases] == ["Gmain", "Dmain"]
    # Adam with lr * 4/5, beta2 ** (4/5) for G and lr * 16/17, beta2 ** (16/17) for D: one step on a
    # constant gradient from zero moments moves a parameter by exactly lr_eff (beta1 = 0).
    for name, lr, interval in (("G", 0.0025, 4), ("D", 0.002, 16)):
        opt = r.optimizers()[name]
        upd, _ = opt.update({"w": jnp.ones(())}, opt.init({"w": jnp.zeros(())}))
        assert float(upd["w"]) == pytest.approx(-lr * interval / (interval + 1), rel=1e-5)


def test_stem_step(stem_run):
    recipe, (history, metrics) = stem_run
    s0, s1, s2 = history
    assert set(metrics) >= {"Gmain/loss", "Dmain/loss_real", "Dmain/loss_fake", "Dmain/blur_sigma"}
    assert all(np.isfinite(v) for v in metrics.values())
    assert float(s2.aux["cur_nimg"]) == 2 * B                            # the blur clock, advanced by Dmain
    assert metrics["Dmain/blur_sigma"] == pytest.approx(2.0 * (1 - B / 300e3))
    g0, g2 = s0.colls["G"]["buffers"], s2.colls["G"]["buffers"]
    assert not np.array_equal(g0["mapping"]["w_avg"], g2["mapping"]["w_avg"])       # tracked in Dmain
    for name, layer in g2["synthesis"].items():                         # never updated (official)
        if "magnitude_ema" in layer:
            assert float(layer["magnitude_ema"]) == float(g0["synthesis"][name]["magnitude_ema"])
    assert all(not np.array_equal(a, b) for a, b in zip(_leaves(s0.colls["D"]["spectral"]),
                                                        _leaves(s2.colls["D"]["spectral"])))
    for a, b in zip(_leaves(s0.colls["D"]["frozen"]), _leaves(s2.colls["D"]["frozen"])):
        np.testing.assert_array_equal(a, b)                              # backbone and projections stay
    moved = [not np.array_equal(a, b) for a, b in zip(_leaves(s0.params["G"]), _leaves(s2.params["G"]))]
    assert sum(moved) > len(moved) // 2


def test_path_length_vetoes_its_update_before_the_start(stem_run):
    recipe = StyleGANXLRecipe(DataSpec(16, 1, 10), **{**TINY, "pl_weight": 2.0, "pl_start_kimg": 0.004})
    _, (history, _) = stem_run
    s = history[0]
    batch = _model_batch(16)
    g_pl = jax.jit(recipe.g_pl)
    for nimg, veto in ((0.0, True), (4.0, False)):
        aux = {"cur_nimg": jnp.float32(nimg), "pl_mean": jnp.float32(0)}
        loss, (metrics, _, new_aux) = g_pl(s.params, s.colls, aux, batch, jax.random.PRNGKey(0))
        assert bool(metrics[SKIP_UPDATE]) == veto and np.isfinite(float(loss)) and float(new_aux["pl_mean"]) > 0


def test_errors():
    with pytest.raises(ValueError, match="stem_variables"):
        StyleGANXLRecipe(DataSpec(32, 1, 10), **TINY)
    with pytest.raises(ValueError, match="labelled data"):
        StyleGANXLRecipe(DataSpec(16, 1, 0), **TINY)
    with pytest.raises(ValueError, match="cfg"):
        StyleGANXLRecipe(DataSpec(16, 1, 10), cfg="stylegan2", **TINY)
    r = StyleGANXLRecipe(DataSpec(16, 1, 10), **TINY)
    with pytest.raises(ValueError, match="one-hot"):
        r._labels({"image": jnp.zeros((2, 16, 16, 1)), "label": jnp.zeros((2, 3))})
