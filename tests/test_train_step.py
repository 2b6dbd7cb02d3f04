"""The jit train step: sharding invariance, EMA, phase intervals and the non-finite guard."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gigajax.train import DataSpec
from gigajax.train.state import create_state
from gigajax.train.step import due_phases, ema_beta, jit_train_step

import toy_gan

B = 16


def _batch(seed):
    r = np.random.default_rng(seed)
    return {"image": r.integers(0, 256, (B, 8, 8, 1), dtype=np.uint8),
            "label": np.eye(3, dtype=np.float32)[r.integers(0, 3, B)]}


def _run(devices, steps=6, fuse_phases=False, donate=False, **model_kw):
    mesh = Mesh(np.asarray(devices), ("data",))
    repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    recipe = toy_gan.ToyRecipe(DataSpec(8, 1, 3), **model_kw)
    opts = recipe.optimizers()
    step = jit_train_step(recipe, opts, batch_size=B, ema_kimg=0.01, ema_rampup=0.05,
                          state_sharding=repl, batch_sharding=data, donate=donate, fuse_phases=fuse_phases)
    put = lambda b: {k: jax.device_put(v, data) for k, v in b.items()}
    state = jax.jit(lambda k, b: create_state(recipe, k, b, opts), out_shardings=repl)(jax.random.key(0), put(_batch(0)))
    history = []
    for i in range(steps):
        state, m = step(state, put(_batch(i)), i)
        history.append(jax.device_get(m))
    return jax.device_get(state), history


@pytest.fixture(scope="module")
def one_device_run():
    return _run(jax.devices()[:1])


def test_eight_devices_match_one(one_device_run):
    assert len(jax.devices()) == 8
    s1, _ = one_device_run
    s8, _ = _run(jax.devices())
    for name, a, b in [("params", s1.params, s8.params), ("ema", s1.ema, s8.ema), ("opt", s1.opt, s8.opt)]:
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-6, err_msg=name)
    np.testing.assert_array_equal(s1.rng, s8.rng)
    assert int(s8.step) == 6 and int(s8.nimg) == 6 * B


def test_phase_programs_match_the_fused_step(one_device_run):
    """One program per phase (the default) and one program per set of due phases compute the same
    step: same keys, same order, same metrics; donation must not corrupt the carried state."""
    s1, h1 = one_device_run
    s2, h2 = _run(jax.devices()[:1], fuse_phases=True, donate=True)
    for x, y in zip(jax.tree_util.tree_leaves((s1.params, s1.ema, s1.opt, s1.aux)),
                    jax.tree_util.tree_leaves((s2.params, s2.ema, s2.opt, s2.aux))):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(s1.rng, s2.rng)
    assert [sorted(m) for m in h1] == [sorted(m) for m in h2]
    for a, b in zip(h1, h2):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_lazy_phase_runs_every_interval(one_device_run):
    _, hist = one_device_run
    assert [m["Dreg/ran"] for m in hist] == [1, 0, 0, 0, 1, 0]
    assert all(m["Gmain/ran"] == 1 and m["Dmain/ran"] == 1 for m in hist)
    assert hist[1]["Dreg/r1"] == 0 and hist[4]["Dreg/r1"] > 0


def test_due_phases_follow_the_intervals():
    phases = toy_gan.ToyRecipe(DataSpec(8, 1, 3), r1_interval=4).phases
    assert [due_phases(phases, s) for s in (0, 1, 4, 6)] == [
        (True, True, True), (True, True, False), (True, True, True), (True, True, False)]


def test_ema_beta_matches_the_stylegan2_ada_rule():
    # ema_nimg = min(ema_kimg * 1000, cur_nimg * rampup); beta = 0.5 ** (batch / ema_nimg)
    assert float(ema_beta(jnp.int32(10_000), 32, ema_kimg=10.0, ema_rampup=0.05)) == pytest.approx(0.5 ** (32 / 500))
    assert float(ema_beta(jnp.int32(10_000_000), 32, ema_kimg=10.0, ema_rampup=0.05)) == pytest.approx(0.5 ** (32 / 10_000))
    assert float(ema_beta(jnp.int32(0), 32, ema_kimg=0.0, ema_rampup=0.0)) == 0.0


def test_ema_follows_g_with_the_half_life(one_device_run):
    s, hist = one_device_run
    assert 0 < hist[-1]["ema_beta"] < 1
    g, e = jax.tree_util.tree_leaves(s.params["G"]), jax.tree_util.tree_leaves(s.ema["params"])
    assert any(not np.array_equal(a, b) for a, b in zip(g, e))


def test_nonfinite_loss_skips_the_update_and_counts():
    s, hist = _run(jax.devices()[:1], steps=4, blowup_at=2 * B)   # G's loss is NaN from the 3rd step's D phase on
    assert [m["Gmain/skipped"] for m in hist] == [0, 0, 1, 1]
    assert [m["nonfinite/streak"] for m in hist] == [0, 0, 1, 2]
    assert int(s.nonfinite["total"]) == 2
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(s.params))
    # G stopped changing once its loss went non-finite; D kept training.
    s2, _ = _run(jax.devices()[:1], steps=2, blowup_at=2 * B)
    for a, b in zip(jax.tree_util.tree_leaves(s.params["G"]), jax.tree_util.tree_leaves(s2.params["G"])):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(s.params["D"]),
                                                        jax.tree_util.tree_leaves(s2.params["D"])))


def test_finish_program_compiles_once(monkeypatch):
    """Steps with different due phases reuse one compiled `finish` (a recompile per set of due
    phases cost ~1 s each at StyleGAN2 sizes)."""
    made = []
    real_jit = jax.jit

    def recording_jit(*args, **kwargs):
        made.append(real_jit(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(jax, "jit", recording_jit)
    _run(jax.devices()[:1], steps=5)   # steps 0 and 4 run Dreg, 1-3 do not
    finish = made[len(toy_gan.ToyRecipe(DataSpec(8, 1, 3)).phases)]   # built right after the phase programs
    assert finish._cache_size() == 1


def test_a_phase_can_veto_its_update():
    """A loss that reports SKIP_UPDATE leaves params, optimizer state, colls and aux untouched and
    is not counted as a non-finite skip (StyleGAN-XL's path length before 1 Mimg)."""
    from gigajax.train.recipe import Phase
    from gigajax.train.step import SKIP_UPDATE, _phase_update
    recipe = toy_gan.ToyRecipe(DataSpec(8, 1, 3))
    opts = recipe.optimizers()
    batch = {k: jnp.asarray(v) for k, v in _batch(0).items()}
    batch["image"] = batch["image"].astype(jnp.float32) / 127.5 - 1
    state = create_state(recipe, jax.random.key(0), batch, opts)
    carry = (state.params, state.colls, {**state.aux, "nimg_proxy": jnp.float32(0)}, state.opt)

    def vetoed(veto):
        def loss(params, colls, aux, batch, key):
            value, (metrics, colls, aux) = recipe.d_loss(params, colls, aux, batch, key)
            return value, ({**metrics, SKIP_UPDATE: jnp.bool_(veto)}, colls, aux)
        return Phase("Dmain", "D", loss)

    kept, metrics, finite = _phase_update(vetoed(True), opts["D"], carry, batch, jax.random.PRNGKey(0))
    assert bool(finite) and SKIP_UPDATE not in metrics
    for a, b in zip(jax.tree_util.tree_leaves(kept), jax.tree_util.tree_leaves(carry)):
        np.testing.assert_array_equal(a, b)
    moved, _, _ = _phase_update(vetoed(False), opts["D"], carry, batch, jax.random.PRNGKey(0))
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(moved[0]["D"]),
                                                        jax.tree_util.tree_leaves(carry[0]["D"])))
