"""The projected discriminator: spectral norm against torch's, batch-statistics norm, the random
projections' wiring, the frozen/trainable split, conditioning, and clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gigajax.models.efficientnet_lite import efficientnet_lite0_variables
from gigajax.models.projected import (BatchStatNorm, ProjectedDiscriminator, RandomProjection, SingleDisc, SNConv2d,
                                      nominal_resolutions, projection_channels)

# Its module fixtures build and compile models: keep the module on one xdist worker (setup.cfg's
# --dist loadgroup) rather than building them once per worker.
pytestmark = pytest.mark.xdist_group("projected")


def test_spectral_norm_matches_torch():
    torch = pytest.importorskip("torch")
    conv = SNConv2d(5, 7, 4, stride=2, padding=1)
    x = np.random.RandomState(0).randn(2, 8, 8, 5).astype(np.float32)
    v = conv.init(jax.random.PRNGKey(0), x)
    ref = torch.nn.utils.spectral_norm(torch.nn.Conv2d(5, 7, 4, 2, 1))
    with torch.no_grad():
        ref.weight_orig.copy_(torch.tensor(np.asarray(v["params"]["kernel"]).transpose(3, 2, 0, 1)))
        ref.bias.copy_(torch.tensor(np.asarray(v["params"]["bias"])))
        ref.weight_u.copy_(torch.tensor(np.asarray(v["spectral"]["u"])))
    ref.train()
    for _ in range(3):   # three training-mode calls: u advances one power iteration each time
        want = ref(torch.tensor(x).permute(0, 3, 1, 2)).detach().numpy().transpose(0, 2, 3, 1)
        got, upd = conv.apply(v, x, mutable=["spectral"])
        v = {**v, **upd}
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(v["spectral"]["u"]), ref.weight_u.numpy(), rtol=1e-5, atol=1e-6)


def test_spectral_norm_converges_to_the_top_singular_value_and_u_is_frozen_without_mutable():
    conv = SNConv2d(6, 9, 3, padding=1)
    x = jnp.ones((1, 5, 5, 6))
    v = conv.init(jax.random.PRNGKey(1), x)
    w = np.asarray(v["params"]["kernel"]).reshape(-1, 9).T
    top = np.linalg.svd(w, compute_uv=False)[0]
    u0 = np.asarray(v["spectral"]["u"])
    conv.apply(v, x)                                       # not mutable: u stays
    np.testing.assert_array_equal(np.asarray(v["spectral"]["u"]), u0)
    for _ in range(60):
        _, upd = conv.apply(v, x, mutable=["spectral"])
        v = {**v, **upd}
    u = np.asarray(v["spectral"]["u"])
    sigma = np.linalg.norm(w.T @ u)
    assert sigma == pytest.approx(top, rel=1e-4)


def test_batch_stat_norm_uses_this_batch():
    x = jax.random.normal(jax.random.PRNGKey(2), (4, 3, 3, 5)) * 3 + 7
    bn = BatchStatNorm(5)
    y = np.asarray(bn.apply(bn.init(jax.random.PRNGKey(0), x), x))
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1, atol=1e-3)


def test_random_projection_wiring():
    taps = [jnp.ones((2, s, s, c)) for s, c in zip((8, 4, 2, 1), (24, 40, 112, 320))]
    rp = RandomProjection((24, 40, 112, 320), cout=16)
    v = rp.init(jax.random.PRNGKey(0), taps)
    assert set(v) == {"frozen"}                                      # nothing trainable
    out = rp.apply(v, taps)
    assert [o.shape for o in out] == [(2, 16, 16, 16), (2, 8, 8, 16), (2, 4, 4, 32), (2, 2, 2, 64)]
    assert projection_channels(16) == (16, 16, 32, 64)
    k = np.asarray(v["frozen"]["layer3_ccm"]["kernel"])                 # PyTorch default init bounds
    assert k.shape == (320, 128) and np.abs(k).max() <= 1 / np.sqrt(320) and np.abs(k).max() > 0.8 / np.sqrt(320)
    assert nominal_resolutions(256) == (128, 64, 32, 16)


def test_single_disc_sizes_and_projection():
    d = SingleDisc(8, 16, c_dim=3, cmap_dim=4, embedding_dim=5, width_div=64)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 8))
    c = jnp.eye(3)[jnp.array([0, 2])]
    v = d.init(jax.random.PRNGKey(1), x, c)
    assert sorted(v["params"]) == ["cls", "down0", "embed", "embed_proj"]          # 16 -> 8, then the 4x4 head
    out, _ = d.apply(v, x, c, mutable=["spectral"])
    assert out.shape == (2, 5, 5, 1)
    out2, _ = d.apply(v, x, jnp.eye(3)[jnp.array([1, 1])], mutable=["spectral"])
    assert not np.allclose(np.asarray(out), np.asarray(out2))                       # the label matters
    with pytest.raises(ValueError, match="one-hot"):
        d.apply(v, x, None, mutable=["spectral"])


@pytest.fixture(scope="module")
def small_d():
    D = ProjectedDiscriminator(c_dim=10, interp_size=64, proj_im_res=64, width_div=8, cout=16)
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 1), minval=-1, maxval=1)
    c = jax.nn.one_hot(jnp.arange(4) % 10, 10)
    v = jax.jit(D.init)(jax.random.PRNGKey(1), x, c, jax.random.PRNGKey(2))
    return D, v, x, c


def test_projected_discriminator_split_and_logits(small_d):
    D, v, x, c = small_d
    assert set(v) == {"params", "frozen", "spectral"}
    frozen = v["frozen"]["tf_efficientnet_lite0_features"]["backbone"]
    asset = efficientnet_lite0_variables(head=False)
    np.testing.assert_array_equal(np.asarray(frozen["params"]["conv_stem"]["kernel"]),
                                  asset["params"]["conv_stem"]["kernel"])
    rest = {k: v[k] for k in v if k != "params"}
    apply = jax.jit(lambda p, x, key: D.apply({"params": p, **rest}, x, c, key, mutable=["spectral"]))
    (logits,), upd = apply(v["params"], x, jax.random.PRNGKey(3))
    # maps 32, 16, 8, 4 -> logit maps 5x5, 5x5, 5x5, 1x1 per sample
    assert logits.shape == (4, 3 * 25 + 1)
    (again,), _ = apply(v["params"], x, jax.random.PRNGKey(4))
    assert not np.allclose(np.asarray(logits), np.asarray(again))                    # DiffAugment draws per key
    grads = jax.grad(lambda p: jnp.sum(apply(p, x, jax.random.PRNGKey(3))[0][0]))(v["params"])
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    assert not np.array_equal(np.asarray(upd["spectral"]["tf_efficientnet_lite0_discs"]["mini_disc_0"]["cls"]["u"]),
                              np.asarray(v["spectral"]["tf_efficientnet_lite0_discs"]["mini_disc_0"]["cls"]["u"]))


def test_projected_discriminator_errors(small_d):
    D, v, x, c = small_d
    with pytest.raises(ValueError, match="needs a key"):
        D.apply(v, x, c, None, mutable=["spectral"])
    with pytest.raises(ValueError, match=r"\[N, H, W, 1 or 3\]"):
        D.apply(v, jnp.zeros((4, 16, 16, 2)), c, jax.random.PRNGKey(0), mutable=["spectral"])
    with pytest.raises(ValueError, match="unknown feature network"):
        ProjectedDiscriminator(backbones=("resnet50",), diffaug=False).init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="multiple of 32"):
        ProjectedDiscriminator(interp_size=None, diffaug=False, width_div=8, cout=8).init(jax.random.PRNGKey(0), x)


def test_official_backbone_pair_with_a_user_supplied_deit(tmp_path):
    """register_deit reads a timm state dict the user supplies; with EfficientNet it is the
    official pair, both at 224 (the official resize below 224x224): 4 mini-discriminators with
    4x4 logit maps each, per backbone. (deit_tiny stands in for deit_base: same code, 15x smaller.)"""
    from gigajax.models.projected import BACKBONES, register_deit
    from gigajax.models.vit import timm_state_dict, vit_from_name
    name = "deit_tiny_distilled_patch16_224"
    vit = vit_from_name(name, num_classes=0)
    v = jax.jit(vit.init)(jax.random.key(0, impl="rbg"), jnp.zeros((1, 224, 224, 3)))
    np.savez(tmp_path / "deit.npz", **timm_state_dict(v))
    try:
        bb = register_deit(str(tmp_path / "deit.npz"), name)
        assert bb.channels == (24, 48, 96, 192) and bb.always_resize
        D = ProjectedDiscriminator(c_dim=10, backbones=(name, "tf_efficientnet_lite0"), interp_size=224, width_div=16,
                                   cout=8)
        x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3), minval=-1, maxval=1)
        c = jax.nn.one_hot(jnp.array([1, 7]), 10)
        dv = jax.jit(D.init)(jax.random.PRNGKey(1), x, c, jax.random.PRNGKey(2))
        np.testing.assert_array_equal(
            np.asarray(dv["frozen"][f"{name}_features"]["backbone"]["params"]["patch_embed"]["kernel"]),
            np.asarray(v["params"]["patch_embed"]["kernel"]))
        assert "extra" in dv["frozen"][f"{name}_features"]                      # the random readout heads
        logits, _ = jax.jit(lambda v, x: D.apply(v, x, c, jax.random.PRNGKey(3), mutable=["spectral"]))(dv, x)
        assert [l.shape for l in logits] == [(2, 64), (2, 64)]
    finally:
        BACKBONES.pop(name, None)
