"""gigajax.models.vit: the timm DeiT/ViT port, its state-dict loader and StyleGAN-XL's readout heads.

Non-optional: a tiny config (dim 32, depth 4, heads 2) for shapes, the loader's bitwise round trip
and its errors; the position-embedding resize; the readout heads' shapes and init distributions.

Optional (skipped without torch / timm): parity against timm's deit_small_distilled_patch16_224 and
deit_base_distilled_patch16_224 built with pretrained=False (then re-randomised so that heads and
biases are not zero), saved with torch.save and read back by `load_timm_vit` without torch; the
hooked outputs of blocks 2, 5, 8, 11 and the eval-mode logits, at 224x224 through timm's own forward
(with forward hooks) and at 112x112 through StyleGAN-XL's `forward_flex` (timm's blocks, its
bilinear pos_embed resize), which is how StyleGAN-XL runs any size.

timm versions: StyleGAN-XL pins timm 0.4.12. Newer timm (0.9+, 1.x) keeps the same state-dict
names and the same math for these models; the differences are: distilled DeiTs are a separate
`VisionTransformerDistilled` class (same eval forward (head(cls) + head_dist(dist)) / 2); attention
goes through F.scaled_dot_product_attention (q scaled before the product instead of the scores
after; identical for head_dim 64, where the scale is a power of two, and within float rounding
otherwise); Block gains identity ls1/ls2/q_norm/k_norm. Neither version's own forward accepts a
non-224 input by default (0.4.12 asserts, 1.x has strict_img_size and, with dynamic_img_size, a
bicubic resample): StyleGAN-XL replaces the forward with `forward_flex`, reproduced here. The test
reports the timm version it ran against in its skip/assert messages and as a user property.
"""

import json
import math
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gigajax.models import vit as V

RNG = np.random.RandomState(0)
TINY = dict(embed_dim=32, depth=4, num_heads=2, img_size=64, num_classes=10)


def _rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _random_variables(model, shape, seed=0):
    """Random float32 variables in the module's structure (numpy; a jitted `init` spends seconds
    compiling threefry on 2 CPU cores). LayerNorm scales near 1, everything else N(0, 0.1)."""
    rng = np.random.RandomState(seed)
    tree = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape, jnp.float32))
    leaves = [(1 + 0.1 * rng.randn(*l.shape)) if jax.tree_util.keystr(p).endswith("['scale']")
              else 0.1 * rng.randn(*l.shape) for p, l in jax.tree_util.tree_leaves_with_path(tree)]
    return jax.tree.unflatten(jax.tree.structure(tree), [np.asarray(l, np.float32) for l in leaves])


def _tiny(distilled=True, **kw):
    model = V.VisionTransformer(**{**TINY, "distilled": distilled, **kw})
    return model, _random_variables(model, (1, 64, 64, 3), seed=int(distilled))


def _apply(model, variables, x, *args, method=None):
    """jit(module.apply) (eager apply compiles every op separately: much slower on CPU)."""
    return jax.tree.map(np.asarray, jax.jit(lambda v, x: model.apply(v, x, *args, method=method))(variables, x))


def _write_safetensors(path, state):
    header, body, off = {}, b"", 0
    for k, v in state.items():
        b = np.ascontiguousarray(v, "<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        body += b
        off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + body)


# --------------------------------------------------------------------------------------------
# tiny config: shapes, round trip, errors
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("distilled", [True, False])
def test_tiny_shapes(distilled):
    model, variables = _tiny(distilled)
    p = 2 if distilled else 1
    assert variables["params"]["pos_embed"].shape == (1, p + 16, 32)
    assert ("dist_token" in variables["params"]) == distilled
    assert ("head_dist" in variables["params"]) == distilled

    def at_64(mod, x):
        return (mod(x), mod(x, (0, 3)), mod.block_outputs(x, (3,)), mod.features(x))

    x = RNG.randn(2, 64, 64, 3).astype(np.float32)
    logits, (outs, logits2), (last,), feats = _apply(model, variables, x, method=at_64)
    assert logits.shape == (2, 10)
    assert [o.shape for o in outs] == [(2, p + 16, 32)] * 2
    np.testing.assert_array_equal(outs[1], last)
    np.testing.assert_allclose(logits2, logits, rtol=1e-6, atol=1e-6)
    # hooks see the residual stream before the final norm; features are after it
    last = np.asarray(last, np.float64)
    ln = (last - last.mean(-1, keepdims=True)) / np.sqrt(last.var(-1, keepdims=True) + 1e-6)
    ln = ln * variables["params"]["norm"]["scale"] + variables["params"]["norm"]["bias"]
    np.testing.assert_allclose(feats, ln, rtol=1e-4, atol=1e-4)
    # logits: head on cls; distilled: the mean of head(cls) and head_dist(dist) (timm's eval forward)
    f, prm = np.asarray(feats, np.float64), variables["params"]
    want = f[:, 0] @ prm["head"]["kernel"] + prm["head"]["bias"]
    if distilled:
        want = (want + f[:, 1] @ prm["head_dist"]["kernel"] + prm["head_dist"]["bias"]) / 2
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-5)

    # a non-training size: 48x80 (plus a ragged edge that the stride-16 conv ignores) -> 3x5 grid
    def at_other(mod, x):
        return mod.block_outputs(x, (1, 2)), mod.taps(x, (1, 2)), mod.features(x)

    xs = RNG.randn(2, 50, 87, 3).astype(np.float32)
    outs, taps, feats = _apply(model, variables, xs, method=at_other)
    assert [o.shape for o in outs] == [(2, p + 15, 32)] * 2
    assert [t.shape for t in taps] == [(2, 3, 5, 32)] * 2
    np.testing.assert_array_equal(taps[1], np.asarray(outs[1])[:, p:].reshape(2, 3, 5, 32))
    assert feats.shape == (2, p + 15, 32)
    # no head: pre-logits (mean of cls and dist when distilled)
    nohead = V.VisionTransformer(**{**TINY, "distilled": distilled, "num_classes": 0})
    params = {k: v for k, v in variables["params"].items() if k not in ("head", "head_dist")}
    pre = _apply(nohead, {"params": params}, x)
    np.testing.assert_allclose(pre, (f[:, 0] + f[:, 1]) / 2 if distilled else f[:, 0], rtol=1e-5, atol=1e-5)


def test_tiny_bfloat16_and_grad():
    """bfloat16 compute keeps float32 parameters and residual stream; gradients reach the image."""
    model, variables = _tiny()
    x = RNG.randn(2, 64, 64, 3).astype(np.float32)
    (outs, logits), (outs16, logits16), g = jax.jit(lambda v, x: (
        model.apply(v, x, (1, 3)), model.clone(dtype=jnp.bfloat16).apply(v, x, (1, 3)),
        jax.grad(lambda x: model.apply(v, x, (3,), method="taps")[0].sum())(x)))(variables, x)
    assert outs16[1].dtype == jnp.float32 and logits16.dtype == jnp.float32
    assert _rel_l2(outs16[1], outs[1]) < 3e-2 and _rel_l2(logits16, logits) < 3e-2
    assert g.shape == x.shape and np.isfinite(g).all() and np.abs(g).max() > 0


def test_input_errors():
    model, variables = _tiny()
    with pytest.raises(ValueError, match="NCHW"):
        model.apply(variables, np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="patch_size=16"):
        model.apply(variables, np.zeros((1, 8, 64, 3), np.float32))
    with pytest.raises(ValueError, match="hooks"):
        model.apply(variables, np.zeros((1, 64, 64, 3), np.float32), (4,), method="block_outputs")
    with pytest.raises(ValueError, match="unknown ViT name"):
        V.vit_from_name("deit_huge")


def test_tiny_roundtrip_bitwise(tmp_path):
    model, variables = _tiny()
    state = V.timm_state_dict(variables)
    assert state["patch_embed.proj.weight"].shape == (32, 3, 16, 16)
    assert state["blocks.3.attn.qkv.weight"].shape == (96, 32)
    assert state["blocks.0.norm1.weight"].shape == (32,)
    assert len(state) == 3 + 2 + 12 * 4 + 2 + 4   # cls, dist, pos; patch; 12 per block; norm; 2 heads
    back = V.variables_from_timm(state, model)
    assert jax.tree.structure(back) == jax.tree.structure(variables)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(variables)):
        assert a.dtype == np.float32 and np.array_equal(a, b)
    again = V.timm_state_dict(back)
    assert all(np.array_equal(again[k], state[k]) for k in state)
    # through a file, and DeiT's released layout {'model': state_dict} (keys 'model.*')
    f = tmp_path / "tiny.safetensors"
    _write_safetensors(f, {"model." + k: v for k, v in state.items()})
    loaded = V.load_timm_vit(f, model)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(variables)))
    # the feature network alone: head dropped
    nohead = V.variables_from_timm(state, model, head=False)
    assert "head" not in nohead["params"] and "head_dist" not in nohead["params"]
    x = RNG.randn(1, 64, 64, 3).astype(np.float32)
    taps = jax.jit(lambda v, w, x: (model.apply(v, x, (1, 3), method="taps"),
                                    model.apply(w, x, (1, 3), method="taps")))
    for a, b in zip(*taps(nohead, variables, x)):
        np.testing.assert_array_equal(a, b)


def test_loader_errors():
    model, variables = _tiny()
    state = V.timm_state_dict(variables)
    bad = dict(state)
    del bad["blocks.1.attn.qkv.bias"]
    bad["blocks.4.norm1.weight"] = np.ones(32, np.float32)
    bad["pos_embed"] = np.zeros((1, 2 + 49, 32), np.float32)
    with pytest.raises(ValueError) as e:
        V.variables_from_timm(bad, model)
    msg = str(e.value)
    assert "missing keys (1): ['blocks.1.attn.qkv.bias']" in msg
    assert "unexpected keys (1): ['blocks.4.norm1.weight']" in msg
    assert "pos_embed: shape (1, 51, 32), expected (1, 18, 32)" in msg
    # timm layout of a transposed weight is reported in timm's shape
    bad = dict(state, **{"blocks.0.mlp.fc1.weight": np.zeros((64, 32), np.float32)})
    with pytest.raises(ValueError, match=r"blocks\.0\.mlp\.fc1\.weight: shape \(64, 32\), expected \(128, 32\)"):
        V.variables_from_timm(bad, model)
    # a plain ViT checkpoint into a distilled model
    plain = V.timm_state_dict(_tiny(False)[1])
    with pytest.raises(ValueError, match=r"missing keys.*dist_token"):
        V.variables_from_timm(plain, model)
    with pytest.raises(ValueError, match="not a timm ViT"):
        V.variables_from_timm({"foo.weight": np.zeros(3)}, model)
    with pytest.raises(ValueError, match="several ViTs"):
        V.variables_from_timm({f"{p}.{k}": v for p in ("a", "b") for k, v in state.items()}, model)
    assert V.variables_from_timm({f"b.{k}": v for k, v in state.items()}, model, prefix="b.")


def test_configs():
    for name in ("deit_base_distilled_patch16_224", "deit_small_distilled_patch16_224"):
        m = V.vit_from_name(name)
        assert (m.distilled, m.num_classes, m.patch_size, m.img_size, m.mlp_ratio, m.eps) == \
            (True, 1000, 16, 224, 4.0, 1e-6)
    base, small = (V.vit_from_name(f"deit_{s}_distilled_patch16_224") for s in ("base", "small"))
    assert (base.embed_dim, base.num_heads, small.embed_dim, small.num_heads) == (768, 12, 384, 6)
    assert V.READOUT_FEATURES["deit_base_distilled_patch16_224"] == (96, 192, 384, 768)
    assert V.NORM_STATS["deit_small_distilled_patch16_224"] == (V.IMAGENET_MEAN, V.IMAGENET_STD)
    shapes = V._expected_shapes(V.vit_from_name("deit_base_distilled_patch16_224"))
    assert sum(math.prod(s) for s in shapes.values()) == 87_338_192   # timm's parameter count


def test_pos_embed_resize():
    pe = RNG.randn(1, 2 + 14 * 14, 5).astype(np.float32)
    assert V.resize_pos_embed(pe, 2, (14, 14)) is pe
    out = np.asarray(V.resize_pos_embed(pe, 2, (7, 7)))
    np.testing.assert_array_equal(out[:, :2], pe[:, :2])
    grid = pe[0, 2:].reshape(14, 14, 5)
    want = grid.reshape(7, 2, 7, 2, 5).mean((1, 3))    # halving: every output averages a 2x2 block
    np.testing.assert_allclose(out[0, 2:].reshape(7, 7, 5), want, rtol=1e-6, atol=1e-6)
    up = np.asarray(V.resize_pos_embed(pe, 2, (28, 21)))
    assert up.shape == (1, 2 + 28 * 21, 5)


def test_pos_embed_resize_matches_torch():
    torch = pytest.importorskip("torch")
    pe = RNG.randn(1, 2 + 14 * 14, 6).astype(np.float32)
    for grid in [(7, 7), (28, 28), (9, 20), (14, 5)]:
        g = torch.from_numpy(pe[:, 2:].reshape(1, 14, 14, 6)).permute(0, 3, 1, 2)
        g = torch.nn.functional.interpolate(g, size=grid, mode="bilinear", align_corners=False)
        want = g.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], 6).numpy()
        got = np.asarray(V.resize_pos_embed(pe, 2, grid))[:, 2:]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# readout heads
# --------------------------------------------------------------------------------------------

def test_readout_shapes_and_init():
    ro = V.readout_from_name("deit_base_distilled_patch16_224")
    taps = [jnp.zeros((2, 14, 14, 768))] * 4
    # (rbg: threefry's XLA program takes seconds to compile on 2 cores; the distribution is the same)
    variables = jax.jit(ro.init)(jax.random.key(0, impl="rbg"), taps)
    outs = jax.jit(ro.apply)(variables, [RNG.randn(2, 14, 14, 768).astype(np.float32) for _ in range(4)])
    assert [o.shape for o in outs] == [(2, 56, 56, 96), (2, 28, 28, 192), (2, 14, 14, 384), (2, 7, 7, 768)]
    odd = jax.eval_shape(ro.apply, variables, [jnp.zeros((1, 7, 9, 768))] * 4)
    assert [o.shape[1:3] for o in odd] == [(28, 36), (14, 18), (7, 9), (4, 5)]
    p = variables["params"]
    shapes = {k: v["kernel"].shape for k, v in p.items()}
    assert shapes == {"layer1_3": (1, 1, 768, 96), "layer1_4": (4, 4, 96, 96), "layer2_3": (1, 1, 768, 192),
                      "layer2_4": (2, 2, 192, 192), "layer3_3": (1, 1, 768, 384),
                      "layer4_3": (1, 1, 768, 768), "layer4_4": (3, 3, 768, 768)}
    # PyTorch default init: U(+-1/sqrt(fan_in)); fan_in = in*k*k (Conv2d), OUT*k*k (ConvTranspose2d)
    fan_in = {"layer1_3": 768, "layer1_4": 96 * 16, "layer2_3": 768, "layer2_4": 192 * 4,
              "layer3_3": 768, "layer4_3": 768, "layer4_4": 768 * 9}
    for name, fi in fan_in.items():
        bound = 1 / math.sqrt(fi)
        w, b = np.asarray(p[name]["kernel"]), np.asarray(p[name]["bias"])
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound, name
        assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound, name   # uniform: std = b / sqrt(3)
        assert abs(w.mean()) < 0.02 * bound, name
        assert np.abs(b).max() <= bound and np.abs(b).max() > 0.8 * bound, name
    small = V.readout_from_name("deit_small_distilled_patch16_224")
    sv = jax.eval_shape(small.init, jax.random.key(1), [jnp.zeros((1, 14, 14, 384))] * 4)
    outs = jax.eval_shape(small.apply, sv, [jnp.zeros((1, 14, 14, 384))] * 4)
    assert [o.shape[-1] for o in outs] == [48, 96, 192, 384]


def test_readout_state_dict_roundtrip_and_torch_parity():
    ro = V.ViTReadout(features=(8, 12, 16, 20))
    taps = [RNG.randn(2, 5, 6, 24).astype(np.float32) for _ in range(4)]
    variables = jax.tree.map(np.asarray, jax.jit(ro.init)(jax.random.key(2, impl="rbg"), taps))
    state = V.readout_state_dict(variables, prefix="pretrained.")
    assert state["pretrained.layer1.4.weight"].shape == (8, 8, 4, 4)       # ConvTranspose2d [in, out, k, k]
    assert state["pretrained.layer4.4.weight"].shape == (20, 20, 3, 3)
    back = V.readout_variables_from_state_dict(state, (8, 12, 16, 20), prefix="pretrained.")
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(variables)))
    with pytest.raises(ValueError, match="output channels"):
        V.readout_variables_from_state_dict(state, (8, 12, 16, 21), prefix="pretrained.")
    torch = pytest.importorskip("torch")
    nn = torch.nn
    seqs = [nn.Sequential(nn.Conv2d(24, 8, 1), nn.ConvTranspose2d(8, 8, 4, 4)),
            nn.Sequential(nn.Conv2d(24, 12, 1), nn.ConvTranspose2d(12, 12, 2, 2)),
            nn.Sequential(nn.Conv2d(24, 16, 1)),
            nn.Sequential(nn.Conv2d(24, 20, 1), nn.Conv2d(20, 20, 3, 2, 1))]
    for k, seq in enumerate(seqs, 1):
        for j, layer in enumerate(seq, 3):
            layer.weight.data = torch.from_numpy(state[f"pretrained.layer{k}.{j}.weight"])
            layer.bias.data = torch.from_numpy(state[f"pretrained.layer{k}.{j}.bias"])
    outs = jax.jit(ro.apply)(variables, taps)
    with torch.no_grad():
        for seq, t, o in zip(seqs, taps, outs):
            ref = seq(torch.from_numpy(t.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
            assert _rel_l2(o, ref) < 1e-6
    # torch's own default init has the bounds the module reproduces (the ConvTranspose2d fan_in quirk)
    torch.manual_seed(0)
    up = nn.ConvTranspose2d(96, 96, 4, 4)
    bound = 1 / math.sqrt(96 * 16)
    assert 0.99 * bound < up.weight.abs().max().item() <= bound


# --------------------------------------------------------------------------------------------
# parity with timm (optional)
# --------------------------------------------------------------------------------------------

def _import_timm():
    pytest.importorskip("torch")
    try:
        import timm  # needs a torchvision that works with the installed torch
    except Exception as e:  # noqa: BLE001 -- any import failure means "reference not available"
        pytest.skip(f"timm unavailable: {type(e).__name__}: {e}")
    return timm


def _randomise(model, torch, seed):
    """timm's init leaves heads (0.4.12) and biases at zero: draw every parameter at random."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("weight") and p.ndim == 1:                    # LayerNorm gains
                p.copy_(1 + 0.1 * noise)
            elif name in ("cls_token", "dist_token", "pos_embed"):
                p.copy_(0.5 * noise)
            else:
                p.copy_(0.02 * noise)


def _flex_forward(model, torch, x, hooks):
    """StyleGAN-XL's forward_flex (feature_networks/vit.py) on timm's modules, with its bilinear
    pos_embed resize and forward-hook outputs, plus timm's eval-mode distilled head."""
    F = torch.nn.functional
    b, _, h, w = x.shape
    gh, gw = h // 16, w // 16
    pos = model.pos_embed
    tok, grid = pos[:, :2], pos[0, 2:]
    g0 = int(math.sqrt(len(grid)))
    grid = grid.reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(gh, gw), mode="bilinear", align_corners=False)
    pos = torch.cat([tok, grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)], dim=1)
    t = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    t = torch.cat([model.cls_token.expand(b, -1, -1), model.dist_token.expand(b, -1, -1), t], dim=1) + pos
    outs = []
    for i, blk in enumerate(model.blocks):
        t = blk(t)
        if i in hooks:
            outs.append(t)
    t = model.norm(t)
    return outs, (model.head(t[:, 0]) + model.head_dist(t[:, 1])) / 2


@pytest.mark.parametrize("name,sizes,batch", [
    # the classifier-guidance network; 112: pos_embed resize through forward_flex
    ("deit_small_distilled_patch16_224", (224, 112), 2),
    ("deit_base_distilled_patch16_224", (224,), 1),      # the discriminator's feature network
])
def test_parity_timm(name, sizes, batch, tmp_path, record_property):
    import torch
    timm = _import_timm()
    record_property("timm_version", timm.__version__)
    tm = timm.create_model(name, pretrained=False).eval()
    _randomise(tm, torch, seed=batch)
    f = tmp_path / f"{name}.pth"
    torch.save(tm.state_dict(), f)
    model = V.vit_from_name(name)
    variables = V.load_timm_vit(f, name)                  # read without torch
    hooks = V.TAP_HOOKS
    forward = jax.jit(lambda v, x: model.apply(v, x, hooks))
    for hw in sizes:
        x = RNG.randn(batch, hw, hw, 3).astype(np.float32)
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        with torch.no_grad():
            if hw == 224:   # timm's own forward, its blocks read by forward hooks (as StyleGAN-XL does)
                acts = {}
                handles = [tm.blocks[i].register_forward_hook(lambda m, a, o, i=i: acts.__setitem__(i, o))
                           for i in hooks]
                ref_logits = tm(xt).numpy()
                for hd in handles:
                    hd.remove()
                ref_outs = [acts[i].numpy() for i in hooks]
                _, flex_logits = _flex_forward(tm, torch, xt, hooks)   # forward_flex == forward at 224
                assert _rel_l2(flex_logits.numpy(), ref_logits) < 1e-6
            else:
                ref_outs, ref_logits = _flex_forward(tm, torch, xt, hooks)
                ref_outs, ref_logits = [o.numpy() for o in ref_outs], ref_logits.numpy()
        outs, logits = forward(variables, x)
        errs = [_rel_l2(o, r) for o, r in zip(outs, ref_outs)] + [_rel_l2(logits, ref_logits)]
        print(f"timm {timm.__version__} {name} {batch}x{hw}x{hw}: rel-L2 blocks {hooks} "
              f"{['%.1e' % e for e in errs[:-1]]}, logits {errs[-1]:.1e}")
        assert max(errs) < 1e-5, (timm.__version__, hw, errs)
        assert np.abs(ref_logits).max() > 1e-2        # the heads are not zero
