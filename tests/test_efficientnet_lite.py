"""EfficientNet-Lite0 (gigajax.models.efficientnet_lite), the Projected GAN / StyleGAN-XL feature
network, with the pinned `efficientnet-lite0` weights.

Always run: shapes, padding, errors, converters, and the asset's outputs on a fixed input against
statistics recorded with the PyTorch reference. Optional (skipped without torch and the reference
package): parity with efficientnet_lite_pytorch 0.1.0 (the package the weight file was made for)
and with timm's tf_efficientnet_lite0 (the model StyleGAN-XL builds), and the resize against
F.interpolate. Every 224x224 forward uses one shape, [2, 224, 224, 3], so it compiles once.
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from gigajax.models import efficientnet_lite as E

RNG = np.random.RandomState(0)  # reseeded per test by conftest
NET = E.EfficientNetLite0()
_FORWARD = jax.jit(lambda v, x: NET.apply(v, x, logits=True))


@pytest.fixture(scope="module")
def variables():
    return E.efficientnet_lite0_variables()


def fixed_input():
    """[2, 224, 224, 3] float32 in [-1, 1]: a smooth pattern and seeded uniform noise."""
    t = np.linspace(-1.0, 1.0, 224, dtype=np.float64)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    smooth = np.stack([np.sin(3 * np.pi * xx), np.cos(2 * np.pi * yy), xx * yy], -1)
    noise = np.random.RandomState(1234).uniform(-1.0, 1.0, (224, 224, 3))
    return np.stack([smooth, noise]).astype(np.float32)


# Made with the PyTorch reference: efficientnet_lite_pytorch 0.1.0,
# EfficientNet.from_name('efficientnet-lite0') (TF "SAME" padding computed for 224x224), eval mode,
# state_dict = the pinned asset's arrays, torch 2.13.0 CPU float32, input fixed_input() as NCHW.
# The four taps are the outputs of _blocks[2], [4], [10], [15] (= stages 1, 2, 4, 6), statistics in
# float64 per image over all pixels and channels.
TAP_STATS = [  # per tap: per image (mean, std)
    [(0.7086983, 8.770069), (-0.203797, 11.08522)],
    [(-0.3969559, 8.082558), (-1.764916, 6.984765)],
    [(0.05075752, 5.603004), (-0.335375, 3.920084)],
    [(0.07583318, 2.27724), (-0.1556524, 1.772895)],
]
LOGIT_STATS = [(-0.06534223, 1.294238), (-0.08572813, 1.437278)]
TOP1 = [398, 21]  # margins over the runner-up: 1.11 and 1.34 logits


def _rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_shapes_and_parameter_counts():
    for (h, w) in [(224, 224), (33, 31)]:
        x = jax.ShapeDtypeStruct((2, h, w, 3), jnp.float32)
        shapes = jax.eval_shape(lambda x: NET.init_with_output(jax.random.key(0), x, logits=True), x)
        (stages, logits), v = shapes
        hk = [-(-h // 2 ** k) for k in range(6)]
        wk = [-(-w // 2 ** k) for k in range(6)]
        strides = [1, 2, 3, 4, 4, 5, 5]
        assert [s.shape for s in stages] == [(2, hk[k], wk[k], c) for k, c in zip(strides, E.STAGE_CHANNELS)]
        assert logits.shape == (2, E.NUM_CLASSES)
    assert [s.shape[-1] for s in E.taps_from_stages(stages)] == list(E.TAP_CHANNELS) == [24, 40, 112, 320]
    count = lambda tree: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))
    assert count(v["params"]) == 4_652_008
    feat = jax.eval_shape(E.EfficientNetLite0(head=False).init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
    assert count(feat["params"]) == 2_958_848 and "classifier" not in feat["params"]


def test_tf_same_padding():
    assert E.tf_same_padding(224, 3, 2) == (0, 1)   # even input, stride 2: the extra pixel after
    assert E.tf_same_padding(224, 5, 2) == (1, 2)
    assert E.tf_same_padding(225, 3, 2) == (1, 1)   # odd input: symmetric
    assert E.tf_same_padding(7, 5, 1) == (2, 2)
    assert E.tf_same_padding(1, 5, 2) == (2, 2)
    assert E.tf_same_padding(14, 1, 1) == (0, 0)


def test_asset_outputs_match_reference_statistics(variables):
    """The pinned weights through our network on a fixed input, against numbers from the PyTorch
    reference (see TAP_STATS): catches a wrong padding, block order, BN eps or weight layout."""
    stages, logits = _FORWARD(variables, fixed_input())
    for tap, ref in zip(E.taps_from_stages(stages), TAP_STATS):
        t = np.asarray(tap, np.float64)
        for n, (mean, std) in enumerate(ref):
            np.testing.assert_allclose(t[n].std(), std, rtol=2e-5)
            np.testing.assert_allclose(t[n].mean(), mean, atol=2e-5 * std)
    lg = np.asarray(logits, np.float64)
    for n, (mean, std) in enumerate(LOGIT_STATS):
        np.testing.assert_allclose(lg[n].std(), std, rtol=2e-5)
        np.testing.assert_allclose(lg[n].mean(), mean, atol=2e-5 * std)
    assert list(lg.argmax(-1)) == TOP1


def test_taps_method_and_headless_variables(variables):
    headless = E.efficientnet_lite0_variables(head=False)
    assert set(headless["params"]) == set(variables["params"]) - {"conv_head", "bn2", "classifier"}
    feat_net = E.EfficientNetLite0(head=False)
    shapes = jax.eval_shape(lambda v, x: feat_net.apply(v, x, method="taps"), headless,
                            jax.ShapeDtypeStruct((1, 40, 40, 3), jnp.float32))
    assert [t.shape for t in shapes] == [(1, 10, 10, 24), (1, 5, 5, 40), (1, 3, 3, 112), (1, 2, 2, 320)]
    x = fixed_input()
    taps = jax.jit(lambda v, x: feat_net.apply(v, x, method="taps"))(headless, x)
    for a, b in zip(taps, E.taps_from_stages(_FORWARD(variables, x)[0])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_input_errors(variables):
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\].*NCHW"):
        NET.apply(variables, jnp.zeros((1, 3, 32, 32)))
    with pytest.raises(ValueError, match=r"got shape \(32, 32, 3\)"):
        NET.apply(variables, jnp.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match=r"got shape \(1, 32, 32, 4\)"):
        NET.apply(variables, jnp.zeros((1, 32, 32, 4)))
    with pytest.raises(ValueError, match="uint8"):
        NET.apply(variables, jnp.zeros((1, 32, 32, 3), jnp.uint8))
    with pytest.raises(ValueError, match="head=False"):
        E.EfficientNetLite0(head=False).apply(variables, jnp.zeros((1, 32, 32, 3)), logits=True)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        E.resize_like_torch_bilinear(jnp.zeros((32, 32, 3)))


def test_state_dict_converters(variables):
    state = E.timm_state_dict(variables)
    assert len(state) == 296 and state["blocks.5.3.conv_dw.weight"].shape == (1152, 1, 5, 5)
    assert E.detect_naming(state) == "timm"
    back = E.variables_from_state_dict(state)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(back)):
        np.testing.assert_array_equal(a, b)
    # head=False drops the head; a state without it cannot give one
    no_head = {k: v for k, v in state.items() if not k.startswith(("conv_head.", "bn2.", "classifier."))}
    assert "classifier" not in E.variables_from_state_dict(no_head)["params"]
    with pytest.raises(ValueError, match="no head"):
        E.variables_from_state_dict(no_head, head=True)
    bad = dict(state)
    del bad["blocks.3.1.bn2.running_var"]
    with pytest.raises(ValueError, match=r"missing 'blocks.3.1.bn2.running_var'"):
        E.variables_from_state_dict(bad)
    bad = dict(state, **{"blocks.2.0.conv_dw.weight": np.zeros((144, 1, 3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"blocks_2_0.*conv_dw.* \(3, 3, 1, 144\), expected \(5, 5, 1, 144\)"):
        E.variables_from_state_dict(bad)
    with pytest.raises(ValueError, match="unexpected keys"):
        E.variables_from_state_dict(dict(state, **{"blocks.0.0.se.conv_reduce.weight": np.zeros(1)}))
    with pytest.raises(ValueError, match="neither timm names"):
        E.variables_from_state_dict({"features.0.weight": np.zeros(1)})


def test_resize_like_torch_bilinear_basics():
    x = RNG.randn(2, 9, 7, 3).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(E.resize_like_torch_bilinear(x, (9, 7))), x)
    up = np.asarray(E.resize_like_torch_bilinear(np.full((1, 4, 4, 3), 0.25, np.float32), 224))
    assert up.shape == (1, 224, 224, 3)
    np.testing.assert_allclose(up, 0.25, rtol=1e-6)
    # 2x upsampling of a ramp: half-pixel centres, edges clamped
    ramp = np.arange(4, dtype=np.float32).reshape(1, 4, 1, 1)
    got = np.asarray(E.resize_like_torch_bilinear(ramp, (8, 1)))[0, :, 0, 0]
    np.testing.assert_allclose(got, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], atol=1e-6)


# --------------------------------------------------------------------------------------------
# Optional: the PyTorch references
# --------------------------------------------------------------------------------------------

def _asset_state():
    from gigajax import assets
    return assets.load("efficientnet-lite0")


def test_parity_efficientnet_lite_pytorch(variables):
    """Same weights, same random input: our taps and logits vs efficientnet_lite_pytorch's."""
    torch = pytest.importorskip("torch")
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    model = lite.EfficientNet.from_name("efficientnet-lite0").eval()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in _asset_state().items()})
    x = RNG.uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    feats = {}
    for i in (2, 4, 10, 15):  # last block of stages 1, 2, 4, 6
        model._blocks[i].register_forward_hook(lambda m, inp, out, i=i: feats.__setitem__(i, out.numpy()))
    with torch.no_grad():
        ref_logits = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    stages, logits = _FORWARD(variables, x)
    for tap, i in zip(E.taps_from_stages(stages), (2, 4, 10, 15)):
        assert _rel_l2(tap, feats[i].transpose(0, 2, 3, 1)) < 1e-5
    assert _rel_l2(logits, ref_logits) < 1e-5


def _import_timm():
    pytest.importorskip("torch")
    try:
        import timm  # needs a torchvision that works with the installed torch
    except Exception as e:  # noqa: BLE001 -- any import failure means "reference not available"
        pytest.skip(f"timm unavailable: {type(e).__name__}: {e}")
    return timm


@pytest.mark.parametrize("hw", [(224, 224), (97, 130)])
def test_parity_timm_tf_efficientnet_lite0(variables, hw):
    """The asset's weights in timm's names through timm's tf_efficientnet_lite0 (dynamic TF "SAME"
    padding), also at an odd size where stride-2 layers pad symmetrically."""
    import torch
    timm = _import_timm()
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in E.timm_state_dict(variables).items()})
    x = RNG.uniform(-1, 1, (2, *hw, 3)).astype(np.float32)
    with torch.no_grad():
        t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        h = model.bn1(model.conv_stem(t))  # BatchNormAct2d: BN + ReLU6
        ref = []
        for block in model.blocks:
            h = block(h)
            ref.append(h.numpy().transpose(0, 2, 3, 1))
        ref_logits = model(t).numpy()
    stages, logits = _FORWARD(variables, x)
    for i in E.TAP_STAGES:
        assert _rel_l2(stages[i], ref[i]) < 1e-5
    assert _rel_l2(logits, ref_logits) < 1e-5


def test_resize_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    for hw, size in [((32, 32), 224), ((97, 130), 224), ((300, 256), (224, 200))]:
        x = RNG.randn(2, *hw, 3).astype(np.float32)
        out = (size, size) if isinstance(size, int) else size
        ref = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), out,
                                              mode="bilinear", align_corners=False).numpy()
        got = np.asarray(E.resize_like_torch_bilinear(x, size))
        np.testing.assert_allclose(got, ref.transpose(0, 2, 3, 1), rtol=0, atol=1e-6)
