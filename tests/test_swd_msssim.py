"""ProGAN's metrics: sliced Wasserstein distance on Laplacian-pyramid patches and MS-SSIM diversity.

The pyramid is checked against scipy.ndimage.convolve with the official filter and border, SWD by
its invariances (itself, per-channel affine colour) and by growing with blur and colour mixing,
MS-SSIM against a brute-force window-by-window computation and a closed form, and both names
end to end through compute_metrics on mnist5k.
"""

import numpy as np
import pytest
import scipy.ndimage

from gigajax.metrics import swd
from gigajax.metrics.compute import GeneratorSpec, compute_metrics, generated_images, parse_metric
from gigajax.metrics.ms_ssim import WEIGHTS, ms_ssim, ms_ssim_pairs, msssim_diversity

RNG = np.random.RandomState(0)


def smooth_images(n, res=32, sigma=1.0):
    """n random colour images [n, res, res, 3], float 0..255, channels independent smooth noise."""
    x = scipy.ndimage.gaussian_filter(RNG.randn(n, res, res, 3), (0, sigma, sigma, 0))
    return np.clip(128.0 + x * (60.0 / x.std()), 0.0, 255.0)


# --- the pyramid --------------------------------------------------------------------------------

def test_pyramid_filters_match_the_official_scipy_convolution():
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])[None, :, :, None] / 256.0    # the official 5x5 filter
    x = RNG.rand(2, 20, 12, 3).astype(np.float32) * 255
    down = scipy.ndimage.convolve(x, g, mode="mirror")[:, ::2, ::2]
    np.testing.assert_allclose(swd.pyr_down(x), down, atol=1e-4)
    stuffed = np.zeros((2, 40, 24, 3), np.float32)
    stuffed[:, ::2, ::2] = x
    np.testing.assert_allclose(swd.pyr_up(x), scipy.ndimage.convolve(stuffed, 4 * g, mode="mirror"), atol=1e-4)


def test_laplacian_pyramid_reconstructs_the_image():
    x = RNG.randint(0, 256, size=(2, 64, 64, 3)).astype(np.uint8)
    levels = swd.laplacian_pyramid(x, 3)
    assert [lv.shape[1] for lv in levels] == [64, 32, 16]
    np.testing.assert_allclose(swd.reconstruct_laplacian_pyramid(levels), x.astype(np.float32), atol=1e-3)
    # The band-pass levels of a constant image are 0: only the last (Gaussian) level keeps it.
    flat = swd.laplacian_pyramid(np.full((1, 32, 32, 3), 77.0), 2)
    np.testing.assert_allclose(flat[0], 0.0, atol=1e-4)
    np.testing.assert_allclose(flat[1], 77.0, atol=1e-4)


def test_resolutions_and_bad_sizes():
    assert swd.swd_resolutions(1024) == [1024, 512, 256, 128, 64, 32, 16]
    assert swd.swd_resolutions(28) == [28] and swd.swd_resolutions(32) == [32, 16]
    with pytest.raises(ValueError, match="at least 16"):
        swd.swd_resolutions(15)
    with pytest.raises(ValueError, match="odd size"):
        swd.laplacian_pyramid(np.zeros((1, 66, 66, 3)), 3)       # 66 -> 33 -> 17 would not come back to 33


# --- descriptors and SWD -------------------------------------------------------------------------

def test_descriptors_are_official_patches_normalised_per_channel():
    x = RNG.randint(0, 256, size=(6, 32, 32, 1)).astype(np.uint8)     # grayscale: tiled to RGB
    res, desc = swd.swd_descriptors([x[:4], x[4:]], 6, seed=3)
    assert res == [32, 16] and [d.shape for d in desc] == [(6 * 128, 147)] * 2
    for d in desc:
        per_channel = d.reshape(-1, 3, 49).transpose(1, 0, 2).reshape(3, -1)
        np.testing.assert_allclose(per_channel.mean(1), 0.0, atol=1e-5)
        np.testing.assert_allclose(per_channel.std(1), 1.0, atol=1e-5)
    # Descriptor (image 5, patch 17) of the 16x16 level is the 7x7 window at its centre, in the
    # official (channel, x, y) order, before normalisation.
    (_, _), (cx, cy) = swd.patch_centres(6, 32, seed=3)
    assert cx.min() >= 3 and cx.max() <= 16 - 4 and cy.min() >= 3 and cy.max() <= 16 - 4
    level = np.asarray(swd.laplacian_pyramid(np.tile(x, (1, 1, 1, 3)).astype(np.float32), 2)[1])
    raw = np.asarray(swd._batch_descriptors(x, tuple(swd.patch_centres(6, 32, seed=3)), 2, 7)[1])
    i, p = 5, 17
    window = level[i, cy[i, p] - 3:cy[i, p] + 4, cx[i, p] - 3:cx[i, p] + 4]      # [y, x, C]
    np.testing.assert_array_equal(raw.reshape(6, 128, 3, 7, 7)[i, p], window.transpose(2, 1, 0))


def test_swd_of_a_set_with_itself_is_zero_and_invariant_to_per_channel_affine_colour():
    x, y = smooth_images(48), smooth_images(48)
    assert swd.sliced_wasserstein_distance(x, x) == {"32": 0.0, "16": 0.0, "avg": 0.0}
    base = swd.sliced_wasserstein_distance(x, y)
    assert base["avg"] > 1.0
    # Each set is normalised by its own per-channel statistics: gain and offset per channel vanish.
    shifted = swd.sliced_wasserstein_distance(x, y * np.array([0.5, 1.5, 1.0]) + np.array([10.0, -20.0, 5.0]))
    for k in base:
        assert shifted[k] == pytest.approx(base[k], rel=1e-4)
    # The same seed gives the same numbers; another seed other centres and directions.
    assert swd.sliced_wasserstein_distance(x, y) == base
    assert swd.sliced_wasserstein_distance(x, y, seed=1)["avg"] != base["avg"]


def test_swd_grows_with_blur_and_with_colour_mixing():
    x, y = smooth_images(64), smooth_images(64)
    blur = [swd.sliced_wasserstein_distance(x, scipy.ndimage.gaussian_filter(y, (0, s, s, 0)))["32"]
            for s in (0.0, 1.0, 2.0)]
    assert blur[0] < blur[1] < blur[2] and blur[2] > 3 * blur[0]
    mix = [swd.sliced_wasserstein_distance(x, y @ np.array([[1.0, a, 0], [0, 1, 0], [0, 0, 1]]).T)["avg"]
           for a in (0.0, 0.6, 1.2)]
    assert mix[0] < mix[1] < mix[2] and mix[2] > 1.5 * mix[0]


def test_projected_w1_numpy_and_jax_paths_agree():
    a, b = RNG.randn(500, 147).astype(np.float32), (RNG.randn(500, 147) * 1.3 + 0.2).astype(np.float32)
    dirs = swd.random_directions(np.random.RandomState(0), 147, 16)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=0), 1.0, rtol=1e-6)
    ref = np.mean([np.abs(np.sort(a @ d) - np.sort(b @ d)).mean() for d in dirs.T])
    assert swd._projected_w1_numpy(a, b, dirs) == pytest.approx(ref, rel=1e-5)
    assert float(swd._projected_w1_jax(a, b, dirs)) == pytest.approx(ref, rel=1e-5)


# --- MS-SSIM -------------------------------------------------------------------------------------

def _fspecial(size, sigma):
    """MATLAB's fspecial('gaussian') on the (half-pixel for even size) grid, straight from the formula."""
    t = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _ms_ssim_brute_force(a, b, weights=WEIGHTS, max_val=255.0):
    """One pair [H, W, C] float64, window by window (no convolutions)."""
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    cs_list, ssim = [], None
    for level in range(len(weights)):
        if level:
            a = a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2, -1).mean(axis=(1, 3))
            b = b.reshape(b.shape[0] // 2, 2, b.shape[1] // 2, 2, -1).mean(axis=(1, 3))
        k = min(11, a.shape[0], a.shape[1])
        w = _fspecial(k, k * 1.5 / 11)[:, :, None]
        s_map, cs_map = [], []
        for i in range(a.shape[0] - k + 1):
            for j in range(a.shape[1] - k + 1):
                pa, pb = a[i:i + k, j:j + k], b[i:i + k, j:j + k]
                ma, mb = (w * pa).sum((0, 1)), (w * pb).sum((0, 1))
                va, vb = (w * pa * pa).sum((0, 1)) - ma ** 2, (w * pb * pb).sum((0, 1)) - mb ** 2
                cov = (w * pa * pb).sum((0, 1)) - ma * mb
                cs = (2 * cov + c2) / (va + vb + c2)
                cs_map.append(cs)
                s_map.append((2 * ma * mb + c1) / (ma ** 2 + mb ** 2 + c1) * cs)
        cs_list.append(max(np.mean(cs_map), 0.0))
        ssim = max(np.mean(s_map), 0.0)
    return np.prod(np.power(cs_list[:-1], weights[:-1])) * ssim ** weights[-1]


def test_ms_ssim_matches_a_window_by_window_computation():
    # 16x16 runs every branch: windows of 11, 8 (even: half-pixel taps), 4, 2 and 1 with scaled sigma.
    base = scipy.ndimage.gaussian_filter(RNG.rand(2, 16, 16, 3) * 255, (0, 1, 1, 0))
    other = np.clip(base + RNG.randn(*base.shape) * 15, 0, 255)
    got = np.asarray(ms_ssim(base, other))
    want = [_ms_ssim_brute_force(base[i], other[i]) for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=2e-5)
    assert 0.3 < got.min() and got.max() < 0.99
    # One scale on one 11x11 window is the plain Gaussian-weighted SSIM of that window.
    a, b = RNG.rand(1, 11, 11, 1) * 255, RNG.rand(1, 11, 11, 1) * 255
    np.testing.assert_allclose(ms_ssim(a, b, weights=(1.0,)), [_ms_ssim_brute_force(a[0], b[0], (1.0,))], rtol=2e-5)


def test_ms_ssim_closed_form_for_constant_images():
    # Constant images have no contrast (cs = 1 at every scale), so MS-SSIM is the luminance term of
    # the last scale to its weight: ((2 a b + c1) / (a^2 + b^2 + c1)) ^ 0.1333.
    a, b = np.full((1, 32, 32, 3), 40.0), np.full((1, 32, 32, 3), 200.0)
    c1 = (0.01 * 255) ** 2
    want = ((2 * 40 * 200 + c1) / (40 ** 2 + 200 ** 2 + c1)) ** 0.1333
    # rtol: the variances E[x^2] - mu^2 = 0 cancel 4e4 - 4e4 in float32 (as the official does), ~1e-5 of c2.
    np.testing.assert_allclose(ms_ssim(a, b), [want], rtol=1e-4)


def test_ms_ssim_identity_symmetry_noise_and_pairs():
    from gigajax.data import open_source
    digits = open_source("mnist5k", resolution=28, use_labels=False).images(np.arange(8))   # 28 -> 14 -> 7 -> 3 -> 1
    noise = RNG.randint(0, 256, size=digits.shape).astype(np.uint8)
    np.testing.assert_allclose(ms_ssim(digits, digits), 1.0, atol=1e-6)
    ab, ba = np.asarray(ms_ssim(digits, noise)), np.asarray(ms_ssim(noise, digits))
    np.testing.assert_array_equal(ab, ba)
    assert ab.mean() < 0.2
    cross = np.asarray(ms_ssim(digits[:4], digits[4:]))
    assert ab.mean() < cross.mean() < 1.0
    # Pairs are consecutive images: (d0, d0), (d0, noise0).
    pairs = np.stack([digits[0], digits[0], digits[0], noise[0]])
    np.testing.assert_allclose(ms_ssim_pairs(pairs), [1.0, ab[0]], rtol=1e-6)
    assert msssim_diversity(pairs, batch=2) == pytest.approx((1.0 + ab[0]) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="even"):
        ms_ssim_pairs(digits[:3])
    with pytest.raises(ValueError, match="at least 16"):
        ms_ssim(digits[:, :12, :12], digits[:, :12, :12])
    with pytest.raises(ValueError, match="same shape"):
        ms_ssim(digits, digits[:4])


# --- names and compute_metrics ---------------------------------------------------------------

def test_metric_names():
    assert (parse_metric("swd16k").kind, parse_metric("swd16k").num_gen) == ("swd", 16_000)
    assert parse_metric("swd16.384k").num_gen == 16_384          # the official 'metric-swd-16k'
    m = parse_metric("msssim20k")
    assert (m.kind, m.num_gen) == ("msssim", 20_000)
    for bad in ("swd", "swd16k_full", "msssim0.005k", "msssim20k3", "swd0k"):
        with pytest.raises(ValueError, match="unknown metric"):
            parse_metric(bad)


def _spec(bank=None, res=28, kind="bank"):
    """A 'generator' drawing real digits from `bank` float [K, R, R, 1] in [-1, 1] (z picks which),
    or emitting noise, or a constant image."""
    def generate(params, z, c, key):
        import jax.numpy as jnp
        if kind == "bank":
            idx = (jnp.abs(z[:, 0]) * 1e4).astype(jnp.int32) % params["bank"].shape[0]
            return params["bank"][idx]
        if kind == "noise":
            return jnp.tanh(2 * z[:, :res * res].reshape(-1, res, res, 1))
        return jnp.zeros((z.shape[0], res, res, 1))
    params = {"bank": bank} if kind == "bank" else {}
    return GeneratorSpec(generate, params, z_dim=res * res)


def test_generated_images_do_not_depend_on_the_batch_size():
    spec = _spec(kind="noise")
    a = np.concatenate(list(generated_images(spec, 10, seed=5, batch=4)))
    b = np.concatenate(list(generated_images(spec, 10, seed=5, batch=6)))
    assert a.shape == (10, 28, 28, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_compute_metrics_swd_and_msssim_end_to_end():
    from gigajax.data import open_source
    # mnist5k is 32x32 (padded digits): SWD levels 32 and 16. The 'real' generator draws digits of
    # every class (the dataset is sorted by class; SWD's reals are a random sample of it).
    bank = (open_source("mnist5k", use_labels=False).images(np.arange(7, 5000, 20)).astype(np.float32) - 127.5) / 127.5
    real = compute_metrics(["swd0.064k", "msssim0.064k"], _spec(bank, res=32), dataset="mnist5k", batch_per_device=16)
    assert set(real) == {"swd0.064k", "swd0.064k_32", "swd0.064k_16", "msssim0.064k"}
    assert real["swd0.064k"] == pytest.approx((real["swd0.064k_32"] + real["swd0.064k_16"]) / 2)
    noise = compute_metrics(["swd0.064k", "msssim0.064k"], _spec(kind="noise", res=32), dataset="mnist5k",
                            batch_per_device=16)
    for k in ("swd0.064k_32", "swd0.064k_16"):
        assert 0 < real[k] < noise[k] / 3
    assert noise["msssim0.064k"] < 0.1 < real["msssim0.064k"] < 0.9
    flat = compute_metrics(["msssim0.008k"], _spec(kind="flat"))          # no dataset needed
    assert flat == {"msssim0.008k": pytest.approx(1.0, abs=1e-6)}
    with pytest.raises(ValueError, match="dataset="):
        compute_metrics(["swd0.064k"], _spec(bank, res=32))
    with pytest.raises(ValueError, match="28x28 images but dataset 'mnist5k' holds 32x32"):
        compute_metrics(["swd0.016k"], _spec(kind="noise", res=28), dataset="mnist5k")
