"""DiffAugment: each op against a numpy model of the reference's index arithmetic (padding and
clamped gathers for translation, clamped scatters for cutout), the random ranges, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gigajax.augment import diffaug


def _np_reference(x, p, cutout_ratio):
    """The DiffAugment reference written as it indexes (NCHW there, NHWC here)."""
    x = x.astype(np.float64).copy()
    n, h, w, _ = x.shape
    b = p["brightness"].reshape(n, 1, 1, 1)
    x = x + (b - 0.5)
    m = x.mean(axis=3, keepdims=True)
    x = (x - m) * (p["saturation"].reshape(n, 1, 1, 1) * 2) + m
    m = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - m) * (p["contrast"].reshape(n, 1, 1, 1) + 0.5) + m
    # translation: pad by one zero pixel, gather at clamp(i + t + 1, 0, size + 1)
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.empty_like(x)
    for i in range(n):
        ty, tx = p["translation"][i]
        rows = np.clip(np.arange(h) + ty + 1, 0, h + 1)
        cols = np.clip(np.arange(w) + tx + 1, 0, w + 1)
        out[i] = pad[i][rows][:, cols]
    x = out
    # cutout: zero mask[clamp(k + o - size // 2)] for k < size
    kh, kw = int(h * cutout_ratio + 0.5), int(w * cutout_ratio + 0.5)
    for i in range(n):
        oy, ox = p["cutout"][i]
        rows = np.clip(np.arange(kh) + oy - kh // 2, 0, h - 1)
        cols = np.clip(np.arange(kw) + ox - kw // 2, 0, w - 1)
        mask = np.ones((h, w))
        mask[np.ix_(rows, cols)] = 0
        x[i] *= mask[:, :, None]
    return x


@pytest.mark.parametrize("shape,ratio", [((6, 32, 32, 3), 0.5), ((5, 17, 23, 1), 0.5), ((8, 16, 16, 3), 0.2)])
def test_matches_reference_index_arithmetic(shape, ratio):
    x = np.random.RandomState(1).uniform(-1, 1, shape).astype(np.float32)
    p = diffaug.sample_params(jax.random.PRNGKey(shape[1]), shape, cutout_ratio=ratio)
    got = np.asarray(diffaug.apply_with_params(jnp.asarray(x), p, cutout_ratio=ratio))
    want = _np_reference(x, {k: np.asarray(v) for k, v in p.items()}, ratio)
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_extreme_shifts_and_corner_cutouts():
    """Shifts of +-s blank exactly s rows/columns; a cutout at offset 0 is clipped to the image."""
    n, h, w = 4, 16, 16
    x = jnp.ones((n, h, w, 1))
    p = {"translation": jnp.array([[2, 0], [-2, 0], [0, 2], [0, -2]]), "cutout": jnp.array([[0, 0], [16, 16], [8, 8], [0, 16]])}
    moved = np.asarray(diffaug.apply_with_params(x, p, "translation"))[..., 0]
    assert moved[0, -2:].sum() == 0 and moved[0, :-2].min() == 1
    assert moved[1, :2].sum() == 0 and moved[1, 2:].min() == 1
    assert moved[2, :, -2:].sum() == 0 and moved[3, :, :2].sum() == 0
    cut = np.asarray(diffaug.apply_with_params(x, p, "cutout"))[..., 0]
    k = 8
    assert (cut[0] == 0).sum() == (k - k // 2) ** 2 and cut[0, 0, 0] == 0      # clipped at the top-left
    assert (cut[1] == 0).sum() == (k // 2) ** 2 and cut[1, -1, -1] == 0         # ... and the bottom-right
    assert (cut[2] == 0).sum() == k * k and cut[2, 4:12, 4:12].sum() == 0


def test_random_ranges():
    shape = (4096, 32, 32, 3)
    p = {k: np.asarray(v) for k, v in diffaug.sample_params(jax.random.PRNGKey(0), shape, cutout_ratio=0.2).items()}
    for k in ("brightness", "saturation", "contrast"):
        assert p[k].min() >= 0 and p[k].max() < 1 and abs(p[k].mean() - 0.5) < 0.02
    assert set(np.unique(p["translation"])) == set(range(-4, 5))                 # int(32 / 8 + 0.5) = 4
    assert p["cutout"].min() == 0 and p["cutout"].max() == 32                    # k = 6 is even: [0, 33)
    assert len({tuple(t) for t in p["translation"][:64]}) > 20                   # per sample, not per batch


def test_gradient_is_the_augmentation_jacobian():
    x = jax.random.normal(jax.random.PRNGKey(3), (3, 8, 8, 3))
    p = diffaug.sample_params(jax.random.PRNGKey(4), x.shape, "translation,cutout")
    g = jax.grad(lambda x: jnp.sum(diffaug.apply_with_params(x, p, "translation,cutout")))(x)
    # A shift followed by a mask is a 0/1 selection: each input pixel reaches the output at most once.
    assert set(np.unique(np.asarray(g))) <= {0.0, 1.0}
    out = diffaug.apply_with_params(x, p, "translation,cutout")
    assert int(np.sum(np.asarray(g))) == int(np.sum(np.asarray(out) != 0))


def test_channel_count_one_keeps_saturation_a_no_op():
    x = jax.random.uniform(jax.random.PRNGKey(5), (2, 8, 8, 1), minval=-1, maxval=1)
    p = {"brightness": jnp.full((2,), 0.5), "saturation": jnp.array([0.0, 0.9]), "contrast": jnp.full((2,), 0.5)}
    np.testing.assert_allclose(np.asarray(diffaug.apply_with_params(x, p, "color")), np.asarray(x), atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown op"):
        diffaug.parse_policy("color,flip")
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        diffaug.diff_augment(jnp.zeros((8, 8, 3)), jax.random.PRNGKey(0))
