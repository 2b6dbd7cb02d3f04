"""gigajax.tools on a tiny random StyleGAN2 G (16x16 RGB, 16 channels, z = w = 8): the truncation
grid at psi = 0 is w_avg's image in every row, style mixing with all / no styles gives the
column / row source, interpolations start and end on their keyframes, the projector lowers LPIPS
and its noise regulariser tells white from constant noise, GIFs hold every frame, and a real
(one-step) training run loads back as its G_ema. Compiled functions are shared per module."""

import json
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gigajax.models.stylegan2 import Generator
from gigajax.tools import grids, interpolate, projector
from gigajax.tools.__main__ import main as cli
from gigajax.tools.network import load_generator
from gigajax.tools.sampler import Sampler, class_labels, parse_range, seed_z
from gigajax.train.grid import to_uint8
from gigajax.train.recipe import DataSpec

# Its module fixtures build and compile models: keep the module on one xdist worker (setup.cfg's
# --dist loadgroup) rather than building them once per worker.
pytestmark = pytest.mark.xdist_group("tools")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:        # run directories are rebuilt by experiments.<name>
    sys.path.insert(0, str(ROOT))


def _tiny_g(c_dim=0):
    return Generator.create(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3,
                            mapping_kwargs=dict(num_layers=2), channel_base=64, channel_max=16, num_fp16_res=0)


def _init(G):
    # An 'rbg' key: XLA:CPU compiles G.init's ~60 threefry initialisers in ~15 s, rbg's in ~4 s.
    return jax.jit(lambda k: G.init(k, jnp.zeros((1, G.z_dim)), jnp.zeros((1, G.c_dim)), noise_mode="const"))(
        jax.random.key(0, impl="rbg"))


@pytest.fixture(scope="module")
def sampler():
    G = _tiny_g()
    v = _init(G)
    # A trained G's w_avg is the mean w (G.init leaves it 0): psi = 0 then has somewhere to go.
    ws = G.apply(v, jnp.asarray(seed_z(range(64), 8)), jnp.zeros((64, 0)), method="map")
    return Sampler(G, {"params": v["params"], "buffers": {**v["buffers"], "mapping": {"w_avg": ws[:, 0].mean(0)}}})


def test_parse_range_and_labels():
    assert parse_range("0-3,7") == [0, 1, 2, 3, 7] and parse_range("5") == [5] and parse_range("") == []
    for bad in ("3-1", "a", "1,,2", "-1"):
        with pytest.raises(ValueError):
            parse_range(bad)
    np.testing.assert_array_equal(seed_z([3], 8)[0], np.random.RandomState(3).randn(8).astype(np.float32))
    with pytest.raises(ValueError, match="conditional"):
        class_labels(4, None, 1)
    with pytest.raises(ValueError, match="unconditional"):
        class_labels(0, 2, 1)
    np.testing.assert_array_equal(class_labels(4, 2, 2), [[0, 0, 1, 0]] * 2)
    conditional = Sampler(_tiny_g(c_dim=3), variables=None)     # the check comes before any network call
    with pytest.raises(ValueError, match="conditional"):
        grids.truncation_grid(conditional, [0, 1])
    with pytest.raises(ValueError, match="out of range"):
        grids.style_mixing_grid(conditional, [0], [1], class_idx=3)


def test_truncation_grid_psi0_is_w_avg_in_every_row(sampler):
    seeds, psis = [0, 1, 2], (1.0, 0.5, 0.0)
    g = grids.truncation_grid(sampler, seeds, psis).reshape(len(seeds), len(psis), 16, 16, 3)
    w_avg = np.broadcast_to(np.asarray(sampler.variables["buffers"]["mapping"]["w_avg"]), (1, sampler.num_ws, 8))
    avg_img = sampler.images(w_avg)[0]
    for r in range(len(seeds)):
        np.testing.assert_allclose(g[r, 2], avg_img, atol=1e-6)
    np.testing.assert_allclose(g[:, 0], sampler.generate(seeds), atol=1e-6)      # psi = 1: plain samples
    assert np.abs(g[0, 0] - g[1, 0]).max() > 0.05                                # ... which differ


# Two rows of one compiled program that see the same ws may round differently: on this CPU XLA
# rounds batch row 7 of the sampler's 8-row program differently from the others (measured
# 9.5e-7 for identical ws, 2.1e-6 once a grid puts a source there). Same-ws images therefore agree
# to float32 rounding, 1e-5, while the style-mixing assertions below separate images that differ
# by more than 1e-3.
SAME_WS_ATOL = 1e-5


def test_style_mixing_grid_layout(sampler):
    rows, cols = [1, 2], [3, 4, 5]
    src = {s: img for s, img in zip(rows + cols, sampler.generate(rows + cols))}

    def cells(styles):
        g = grids.style_mixing_grid(sampler, rows, cols, styles).reshape(3, 4, 16, 16, 3)
        assert (g[0, 0] == -1).all()                                             # black corner
        for j, c in enumerate(cols):
            np.testing.assert_allclose(g[0, j + 1], src[c], atol=SAME_WS_ATOL)   # top row: column sources
        for i, r in enumerate(rows):
            np.testing.assert_allclose(g[i + 1, 0], src[r], atol=SAME_WS_ATOL)   # left column: row sources
        return g[1:, 1:]

    every = cells("0-17")                          # clipped to the 6 ws the tiny G has
    none = cells([])
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            np.testing.assert_allclose(every[i, j], src[c], atol=SAME_WS_ATOL)
            np.testing.assert_allclose(none[i, j], src[r], atol=SAME_WS_ATOL)
    # The cells' ws themselves are exact copies: all styles -> the column's ws, none -> the row's.
    row_ws, col_ws = sampler.seed_ws(rows), sampler.seed_ws(cols)
    np.testing.assert_array_equal(grids.mix_styles(row_ws, col_ws, range(6)).reshape(2, 3, 6, 8),
                                  np.broadcast_to(col_ws[None], (2, 3, 6, 8)))
    np.testing.assert_array_equal(grids.mix_styles(row_ws, col_ws, []).reshape(2, 3, 6, 8),
                                  np.broadcast_to(row_ws[:, None], (2, 3, 6, 8)))
    coarse = cells("0-1")
    assert np.abs(coarse[0, 0] - src[1]).max() > 1e-3 and np.abs(coarse[0, 0] - src[3]).max() > 1e-3
    assert grids.resolve_styles("0-6", sampler.num_ws) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolation_hits_its_keyframes(sampler, space, tmp_path):
    seeds, F = [0, 1, 2], 3
    ws = interpolate.interpolation_ws(sampler, seeds, frames_per_transition=F, space=space)
    assert ws.shape == (2 * F + 1, 1, sampler.num_ws, 8)
    key_ws = sampler.seed_ws(seeds)
    if space == "w":     # the path runs exactly through the keyframes' ws
        np.testing.assert_array_equal(ws[[0, F, 2 * F], 0], key_ws)
    else:                # z is exact there; its mapping ran in another batch shape, so within ulps
        np.testing.assert_allclose(ws[[0, F, 2 * F], 0], key_ws, atol=1e-5)
    frames = interpolate.render_frames(sampler, ws)
    keys = to_uint8(sampler.images(key_ws))
    for f, k in ((0, 0), (F, 1), (2 * F, 2)):
        np.testing.assert_allclose(frames[f].astype(int), keys[k].astype(int), atol=1)
    assert not np.array_equal(frames[1], frames[0])
    path = interpolate.save_gif(frames, tmp_path / "a.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == len(frames) and gif.size == (16, 16)


def test_interpolation_grid_and_loop(sampler):
    ws = interpolate.interpolation_ws(sampler, [0, 1, 2, 3], frames_per_transition=2, grid=(2, 1), loop=True)
    assert ws.shape == (4, 2, sampler.num_ws, 8)        # K = 2 keyframes per cell, K * F frames
    np.testing.assert_allclose(ws[0, 1], sampler.seed_ws([2])[0], atol=1e-6)   # cell 1 starts at its first seed
    frames = interpolate.render_frames(sampler, ws, grid=(2, 1))
    assert frames.shape == (4, 16, 33, 3)
    with pytest.raises(ValueError, match="multiple of 2"):
        interpolate.interpolation_ws(sampler, [0, 1, 2], grid=(2, 1))


def test_noise_regularizer_and_normalisation():
    rng = np.random.RandomState(0)
    white = {"a": jnp.asarray(rng.randn(64, 64), jnp.float32), "b": jnp.asarray(rng.randn(4, 4), jnp.float32)}
    const = {"a": jnp.ones((64, 64)), "b": jnp.ones((4, 4))}
    # Octaves 64, 32, 16, 8 for 'a' and 4 for 'b': 2 per octave for a constant buffer.
    assert float(projector.noise_regularizer(const)) == pytest.approx(10.0)
    assert float(projector.noise_regularizer({"a": white["a"]})) < 0.01
    normed = projector.normalize_noise({"a": 3 * white["a"] + 1})
    assert abs(float(normed["a"].mean())) < 1e-6 and float(jnp.mean(normed["a"] ** 2)) == pytest.approx(1, rel=1e-5)


def test_lpips_features_give_lpips_and_area_downsample():
    from gigajax.metrics.lpips import load_lpips, lpips_distance
    rng = np.random.RandomState(1)
    # One image each: the shapes the projector test compiles for, so both share the programs.
    x, y = (jnp.asarray(rng.uniform(-1, 1, (1, 16, 16, 3)), jnp.float32) for _ in range(2))
    params = load_lpips("vgg")[1]["params"]
    fx, fy = projector._jit_features(params, x, None), projector._jit_features(params, y, None)
    np.testing.assert_allclose(jnp.sum((fx - fy) ** 2, axis=1), lpips_distance(x, y), rtol=1e-4)
    big = jnp.asarray(rng.rand(1, 512, 512, 1), jnp.float32)
    np.testing.assert_allclose(projector.area_downsample(big)[0, 3, 5, 0], big[0, 6:8, 10:12, 0].mean(), rtol=1e-6)


def test_projector_reduces_lpips_and_writes_outputs(sampler, tmp_path):
    from gigajax.metrics.lpips import lpips_distance
    target = to_uint8(sampler.generate([7]))[0]
    steps = 30
    result = projector.project(sampler, target, num_steps=steps, w_avg_samples=1000)
    assert result.ws.shape == (steps, sampler.num_ws, 8) and result.dist.shape == (steps,)
    assert np.all(result.ws[:, 0] == result.ws[:, -1])         # one w broadcast to every layer
    assert result.dist[-1] < 0.5 * result.dist[0], result.dist
    # Independently of the optimiser's own numbers: the rendered projection is closer to the target.
    t = jnp.asarray(target[None], jnp.float32) / 127.5 - 1
    start = sampler.images(result.ws[:1], variables=result.variables(sampler.variables))
    final = sampler.images(result.ws[-1:], variables=result.variables(sampler.variables))
    assert float(lpips_distance(t, final)[0]) < 0.5 * float(lpips_distance(t, start)[0])

    paths = projector.save_projection(tmp_path, sampler, result, target, gif=True, gif_every=10)
    assert np.load(paths["w"])["w"].shape == (1, sampler.num_ws, 8)
    np.testing.assert_array_equal(np.asarray(Image.open(paths["target"])), target)
    with Image.open(paths["gif"]) as gif:
        assert gif.n_frames == 3 and gif.size == (32, 16)      # steps 10, 20, 30: target | projection


def test_projector_w_plus_optimises_each_layer(sampler):
    target = to_uint8(sampler.generate([8]))[0]
    result = projector.project(sampler, target, num_steps=2, w_avg_samples=1000, w_plus=True)
    assert result.ws.shape == (2, sampler.num_ws, 8)
    assert np.abs(result.ws[-1, 0] - result.ws[-1, -1]).max() > 0


def test_load_generator_from_a_pkl_goes_through_the_converter(sampler, tmp_path, monkeypatch):
    # The pickle converter is gigajax.compat.stylegan2_pkl's (tested there); here only the wiring:
    # a stand-in converter, then the command line end to end on what it returns.
    calls = []

    def load_network(path, which="G_ema"):
        calls.append((path, which))
        return sampler.G, sampler.variables
    monkeypatch.setitem(sys.modules, "gigajax.compat.stylegan2_pkl",
                        types.SimpleNamespace(load_network=load_network))
    pkl = tmp_path / "net.pkl"
    pkl.write_bytes(b"")
    G, variables, info = load_generator(pkl)
    assert G is sampler.G and calls == [(str(pkl), "G_ema")] and info["source"] == "pkl"
    with pytest.raises(ValueError, match="run directories"):
        load_generator(pkl, step=3)
    out = tmp_path / "out"
    assert cli(["style-mixing", "--network", str(pkl), "--rows", "1,2", "--cols", "3", "--styles", "0-2",
                "--outdir", str(out)]) == 0
    assert Image.open(out / "style_mixing.png").size == (2 * 17 - 1, 3 * 17 - 1)


# --------------------------------------------------------------------------------------------
# A real training run
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One step of experiments.stylegan2 at 8x8 (Gmain + Dmain only: ~40 s, nearly all compiling).
    ema_kimg without rampup makes G_ema differ from G after the step."""
    from experiments import stylegan2
    from gigajax.train.loop import train
    workdir = tmp_path_factory.mktemp("run")
    c = stylegan2.get_config()
    c.resolution, c.batch_size, c.total_kimg, c.snapshot_kimg = 8, 8, 0.008, 1.0
    c.ema_kimg, c.ema_rampup, c.grid_rows, c.grid_cols = 0.01, 0.0, 2, 2
    c.model.update(z_dim=8, w_dim=8, map_layers=2, cbase=32, cmax=16, r1_gamma=0.0, pl_weight=0.0,
                   style_mixing_prob=0.0, d_architecture="orig")
    result = train(c, stylegan2.build, workdir, progress=False)
    assert result["step"] == 1
    return workdir, stylegan2.build(c, DataSpec(8, 1, 0)), result["state"]     # mnist5k at 8x8, unlabelled


def test_load_generator_from_a_run_is_its_g_ema(trained):
    workdir, recipe, state = trained
    G, variables, info = load_generator(workdir)
    assert info["source"] == "run" and info["experiment"] == "stylegan2" and info["step"] == 1
    z = jax.random.normal(jax.random.key(1), (3, 8))
    c = jnp.zeros((3, 0))
    mine = jax.jit(lambda v: G.apply(v, z, c, noise_mode="const"))(variables)
    generate = jax.jit(recipe.generate)
    np.testing.assert_array_equal(mine, generate(state.ema, z, c, jax.random.key(2)))
    not_ema = generate({"params": state.params["G"], **state.colls["G"]}, z, c, jax.random.key(2))
    assert np.abs(np.asarray(mine) - np.asarray(not_ema)).max() > 1e-4
    with pytest.raises(ValueError, match="no module experiments.nope"):
        load_generator(workdir, experiment="nope")


def test_cli_generate_and_errors(trained, tmp_path, capsys):
    workdir = str(trained[0])
    assert cli(["generate", "--network", workdir, "--seeds", "0-1,5", "--outdir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["seed0000.png", "seed0001.png", "seed0005.png"]
    assert Image.open(tmp_path / "seed0005.png").size == (8, 8)
    with pytest.raises(SystemExit):
        cli(["generate", "--network", workdir, "--seeds", "0-x", "--outdir", str(tmp_path)])
    assert "cannot parse '0-x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["truncation-grid", "--network", str(tmp_path / "missing"), "--seeds", "0", "--outdir", str(tmp_path)])
    assert "no such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["generate", "--network", workdir, "--seeds", "0", "--class", "1", "--outdir", str(tmp_path)])
    assert "unconditional" in capsys.readouterr().err
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    with pytest.raises(SystemExit):
        cli(["generate", "--network", str(not_a_run), "--seeds", "0", "--outdir", str(tmp_path)])
    assert "no checkpoints/" in capsys.readouterr().err
    assert json.loads((trained[0] / "config.json").read_text())["resolution"] == 8
