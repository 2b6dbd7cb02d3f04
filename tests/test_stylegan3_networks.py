"""StyleGAN3 networks (gigajax.models.stylegan3): golden parity with NVlabs' networks_stylegan3.py,
the state_dict converter and its filter check, the layer schedule, the input transform, the
magnitude EMA, compute dtypes and argument errors."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gigajax.compat import golden, verify
from gigajax.compat.stylegan3_convert import design_filters, official_to_variables, variables_to_official
from gigajax.models.stylegan3 import Generator, synthesis_design

# Its module fixtures build and compile models: keep the module on one xdist worker (setup.cfg's
# --dist loadgroup) rather than building them once per worker.
pytestmark = pytest.mark.xdist_group("stylegan3_networks")

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("stylegan3_*.npz"))
T_CASE = GOLDEN / "stylegan3_generator_t_uncond.npz"
TINY = dict(z_dim=8, c_dim=3, w_dim=16, img_resolution=16, img_channels=1, channel_base=256, channel_max=16,
            num_layers=4, num_critical=1, margin_size=4, num_fp16_res=0, mapping_kwargs=dict(num_layers=2))


def _generator(kw):
    kw = dict(kw)
    return Generator.create(**kw)


@pytest.fixture(scope="module")
def tiny():
    g = _generator(TINY)
    z = jax.random.normal(jax.random.PRNGKey(1), (3, 8))
    c = jax.nn.one_hot(jnp.array([0, 1, 2]), 3)
    v = g.init(jax.random.PRNGKey(0), z, c)
    synth = jax.jit(lambda v, ws, t: g.apply(v, ws, method="synthesize", transform=t))
    ws = g.apply(v, z, c, method="map")
    return g, v, z, c, ws, synth


def test_cases_exist():
    kinds = {golden.load(p).kind for p in CASES}
    assert len(CASES) == 3 and kinds == {"stylegan3.MappingNetwork", "stylegan3.Generator"}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_case(path):
    r = verify.run_case(path)
    assert r.status == "pass", f"{r.kind}: rel-L2 {r.worst} > {r.tolerance} {r.detail}"


@pytest.mark.parametrize("path", [p for p in CASES if "generator" in p.name], ids=lambda p: p.stem)
def test_convert_round_trip_is_identity(path):
    case = golden.load(path)
    filters = design_filters(_generator(case.meta["init_kwargs"]).design())
    v = official_to_variables(case.state, filters=filters)
    assert set(v["buffers"]["synthesis"]["input"]) == {"freqs", "phases", "transform"}
    back = variables_to_official(v, filters=filters)
    assert sorted(back) == sorted(case.state)
    for key, ref in case.state.items():
        assert back[key].shape == ref.shape and back[key].dtype == ref.dtype, key
        np.testing.assert_array_equal(back[key], ref, err_msg=key)


def test_converter_checks_filters_against_the_design():
    case = golden.load(T_CASE)
    kw = case.meta["init_kwargs"]
    # The same checkpoint read as a config-R model: R's radial down filters do not match T's.
    other = design_filters(_generator(dict(kw, use_radial_filters=True)).design())
    with pytest.raises(ValueError, match=r"synthesis\.L0_36_64\.down_filter.*differs from the filter designed"):
        official_to_variables(case.state, filters=other)
    state = dict(case.state)
    del state["synthesis.L5_52_64.up_filter"]
    with pytest.raises(ValueError, match=r"state lacks 'synthesis\.L5_52_64\.up_filter'"):
        official_to_variables(state, filters=design_filters(_generator(kw).design()))


def test_schedule_matches_the_paper_config_t():
    # StyleGAN3-T at 1024: 14 layers + ToRGB, sizes 36 -> 1044 -> 1024, 16 ws, channels up to 512.
    d = synthesis_design(1024, 3, channel_base=32768, channel_max=512)
    assert d.num_ws == 16 and len(d.layers) == 15
    # The layer names of NVlabs' stylegan3-t-ffhq-1024x1024.pkl.
    assert [x.name for x in d.layers] == [
        "L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512", "L6_148_512", "L7_276_323",
        "L8_276_203", "L9_532_128", "L10_1044_81", "L11_1044_51", "L12_1044_32", "L13_1024_32", "L14_1024_3"]
    assert {(x.up_factor, x.down_factor) for x in d.layers[:-1]} == {(2, 2), (4, 2)}
    assert d.layers[-1].up_filter is None and d.layers[-1].down_filter is None
    assert d.layers[10].up_filter.shape == (24,) and d.layers[10].up_factor == 4
    r = synthesis_design(1024, 3, channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
    assert r.layers[0].down_filter.ndim == 2 and r.layers[-3].down_filter.ndim == 1  # critical layers: separable
    assert r.layers[0].conv_kernel == 1 and r.layers[0].out_channels == 1024


def test_init_buffers(tiny):
    g, v, *_ = tiny
    inp = v["buffers"]["synthesis"]["input"]
    np.testing.assert_array_equal(inp["transform"], np.eye(3))
    bandwidth = g.design().input_bandwidth
    radii = np.linalg.norm(inp["freqs"], axis=1)
    assert inp["freqs"].shape == (g.design().input_channels, 2) and radii.max() < bandwidth and radii.std() > 0
    assert np.all(np.abs(inp["phases"]) <= 0.5)
    assert all(float(v["buffers"]["synthesis"][d.name]["magnitude_ema"]) == 1.0 for d in g.design().layers)
    other = g.init(jax.random.PRNGKey(5), tiny[2], tiny[3])
    assert not np.allclose(other["buffers"]["synthesis"]["input"]["freqs"], inp["freqs"])


def test_transform_argument_equals_setting_the_buffer(tiny):
    g, v, z, c, ws, synth = tiny
    angle, tx, ty = 0.3, 0.1, -0.05
    m = np.array([[np.cos(angle), -np.sin(angle), tx], [np.sin(angle), np.cos(angle), ty], [0, 0, 1]], np.float32)
    by_arg = synth(v, ws, m)
    buffers = jax.tree.map(lambda x: x, v["buffers"])
    buffers["synthesis"]["input"]["transform"] = jnp.asarray(m)
    by_buffer = g.apply({"params": v["params"], "buffers": buffers}, ws, method="synthesize")
    np.testing.assert_allclose(by_arg, by_buffer, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(by_arg) - np.asarray(synth(v, ws, np.eye(3, dtype=np.float32)))).max() > 1e-3


def test_update_emas_tracks_magnitudes_and_w_avg(tiny):
    g, v, z, c, *_ = tiny
    _, upd = g.apply(v, z, c, update_emas=True, mutable=["buffers"])
    beta = 0.999
    first = g.design().layers[0].name
    ema = float(upd["buffers"]["synthesis"][first]["magnitude_ema"])
    # lerp(mean(x^2), 1, beta): moves from 1 by at most (1 - beta) * |mean(x^2) - 1|.
    assert ema != 1.0 and abs(ema - 1.0) < (1 - beta) * 100
    assert not np.allclose(upd["buffers"]["mapping"]["w_avg"], v["buffers"]["mapping"]["w_avg"])
    # Without update_emas nothing moves.
    _, same = g.apply(v, z, c, mutable=["buffers"])
    jax.tree.map(np.testing.assert_array_equal, same["buffers"], v["buffers"])


def test_magnitude_ema_is_the_input_gain():
    # A layer's input is scaled by rsqrt(magnitude_ema). Demodulation normalises the weights, not
    # the activations, so the layer's output (and the image) must change with the buffer.
    case = golden.load(T_CASE)
    g = _generator(case.meta["init_kwargs"])
    v = official_to_variables(case.state, filters=design_filters(g.design()))
    ws = g.apply(v, case.inputs["z"], None, method="map")
    synth = jax.jit(lambda v, ws: g.apply(v, ws, method="synthesize"))
    base = np.asarray(synth(v, ws))
    v["buffers"]["synthesis"]["L0_36_64"]["magnitude_ema"] = v["buffers"]["synthesis"]["L0_36_64"]["magnitude_ema"] * 4
    quarter = np.asarray(synth(v, ws))
    assert np.abs(base - quarter).max() > 1e-3


def test_compute_dtype_bfloat16_is_close(tiny):
    g, v, z, c, ws, _ = tiny
    g16 = _generator(dict(TINY, num_fp16_res=4, compute_dtype=jnp.bfloat16))
    ref = np.asarray(g.apply(v, ws, method="synthesize"))
    out = g16.apply(v, ws, method="synthesize")
    assert out.dtype == jnp.float32
    rel = np.linalg.norm(np.asarray(out) - ref) / np.linalg.norm(ref)
    assert np.isfinite(rel) and rel < 0.05
    np.testing.assert_array_equal(g.apply(v, ws, method="synthesize", force_fp32=True), ref)


def test_argument_errors_name_the_argument(tiny):
    g, v, z, c, ws, _ = tiny
    with pytest.raises(ValueError, match=r"SynthesisNetwork kwargs.*\['channel_bsae'\]"):
        Generator.create(8, 0, 16, 16, 1, channel_bsae=256)
    with pytest.raises(ValueError, match=r"ws\.shape.*\[N, num_ws=6, w_dim=16\]"):
        g.apply(v, ws[:, :3], method="synthesize")
    with pytest.raises(ValueError, match=r"transform\.shape.*\[3, 3\] or \[N, 3, 3\]"):
        g.apply(v, ws, method="synthesize", transform=np.eye(2))
    with pytest.raises(ValueError, match=r"noise_mode.*'random', 'const', 'none'"):
        g.apply(v, ws, method="synthesize", noise_mode="fixed")
    with pytest.raises(ValueError, match=r"num_layers"):
        synthesis_design(16, 1, num_layers=2, num_critical=2)
