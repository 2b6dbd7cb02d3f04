"""StyleGAN3's equivariance metrics and the power-spectrum helpers.

The image operators are checked against a PyTorch rendering of NVlabs' algorithm (torch's own
affine_grid / grid_sample included) when torch is installed; the metric itself on a toy generator
that is exactly equivariant (a band-limited function of transformed continuous coordinates, the
way StyleGAN3's input layer works), one that ignores the transform and one with the wrong sign.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gigajax.metrics import equivariance as eq
from gigajax.metrics import spectrum as sp
from gigajax.metrics.compute import GeneratorSpec, compute_metrics, parse_metric

RNG = np.random.RandomState(0)


# --- PyTorch reference of the official operators (NCHW) --------------------------------------------

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _t_upfirdn(torch, x, f, up, pads, gain=1.0):
    """Zero-stuff by `up`, pad [x0, x1, y0, y1] (negative crops), convolve with the 2-D filter f."""
    n, c, h, w = x.shape
    if up > 1:
        xu = x.new_zeros(n, c, h * up, w * up)
        xu[:, :, ::up, ::up] = x
        x = xu
    x = torch.nn.functional.pad(x, list(pads))
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return torch.nn.functional.conv2d(x, k, groups=c)


def _t_filter2d(torch, x, f, pads=(0, 0, 0, 0)):
    fh, fw = f.shape
    return _t_upfirdn(torch, x, f, 1, [pads[0] + fw // 2, pads[1] + (fw - 1) // 2,
                                      pads[2] + fh // 2, pads[3] + (fh - 1) // 2])


def _t_integer_translation(torch, x, tx, ty):
    _, _, h, w = x.shape
    ix = int(torch.tensor(tx * w, dtype=torch.float32).round())
    iy = int(torch.tensor(ty * h, dtype=torch.float32).round())
    z, m = torch.zeros_like(x), torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            si, sj = i - iy, j - ix
            if 0 <= si < h and 0 <= sj < w:
                z[:, :, i, j] = x[:, :, si, sj]
                m[:, :, i, j] = 1
    return z, m


def _t_fractional_translation(torch, x, tx, ty, a=3):
    _, _, h, w = x.shape
    tx = torch.tensor(tx * w, dtype=torch.float32)
    ty = torch.tensor(ty * h, dtype=torch.float32)
    ix, iy = int(tx.floor()), int(ty.floor())
    b = a - 1
    taps = torch.arange(2 * a, dtype=torch.float32) - b

    def kern(frac):
        k = torch.sinc(taps - frac) * torch.sinc((taps - frac) / a)
        return k / k.sum()

    y = _t_filter2d(torch, x, kern(tx - ix)[None, :], (b, a, 0, 0))
    y = _t_filter2d(torch, y, kern(ty - iy)[:, None], (0, 0, b, a))
    # y[r] holds the output pixel r - b + i (per axis); keep what lands inside the image.
    z = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            r, s = i + b - iy, j + b - ix
            if 0 <= r < y.shape[2] and 0 <= s < y.shape[3]:
                z[:, :, i, j] = y[:, :, r, s]
    m = torch.zeros_like(x)
    y0, y1, x0, x1 = max(iy + a, 0), min(iy - b, 0) + h, max(ix + a, 0), min(ix - b, 0) + w
    if y0 < y1 and x0 < x1:          # (an empty range must not wrap around as a negative slice)
        m[:, :, y0:y1, x0:x1] = 1
    return z, m


def _t_rotation_matrix(torch, angle):
    c, s = np.cos(angle), np.sin(angle)
    return torch.tensor([[c, s, 0], [-s, c, 0], [0, 0, 1]], dtype=torch.float32)


def _t_bandlimit_filter(torch, mat, a, amax, up, aflt=64):
    n = aflt * up * 2 - 1
    taps = ((torch.arange(n) + 1) / up - aflt).roll(1 - aflt * up)
    yi, xi = torch.meshgrid(taps, taps, indexing="ij")
    xo = xi * mat[0, 0] + yi * mat[0, 1]
    yo = xi * mat[1, 0] + yi * mat[1, 1]

    def lanczos(v):
        return torch.where(v.abs() < a, torch.sinc(v / a), torch.zeros_like(v))

    def cconv(p, q):
        return torch.fft.ifftn(torch.fft.fftn(p) * torch.fft.fftn(q)).real

    f = cconv(torch.sinc(xi) * torch.sinc(yi), torch.sinc(xo) * torch.sinc(yo))
    f = f * cconv(lanczos(xi) * lanczos(yi), lanczos(xo) * lanczos(yo))
    c = (aflt - amax) * up
    f = f.roll([aflt * up - 1] * 2, dims=[0, 1])[c:-c, c:-c]
    f = torch.nn.functional.pad(f, [0, 1, 0, 1]).reshape(amax * 2, up, amax * 2, up)
    f = f / f.sum([0, 2], keepdim=True) / up ** 2
    return f.reshape(amax * 2 * up, amax * 2 * up)[:-1, :-1]


def _t_affine(torch, x, mat, a=3, up=4):
    _, _, h, w = x.shape
    f = _t_bandlimit_filter(torch, mat, a, 2 * a, up)
    p = f.shape[0] // 2
    theta = mat.inverse()
    theta[:2, 2] *= 2
    theta[0, 2] += 1 / up / w
    theta[1, 2] += 1 / up / h
    theta[0, :] *= w / (w + p / up * 2)
    theta[1, :] *= h / (h + p / up * 2)
    g = torch.nn.functional.affine_grid(theta[None, :2].repeat(x.shape[0], 1, 1), list(x.shape), align_corners=False)
    fw = f.shape[0]
    y = _t_upfirdn(torch, x, f, up, [p + (fw + up - 1) // 2, p + (fw - up) // 2] * 2, gain=up * up)
    z = torch.nn.functional.grid_sample(y, g, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = torch.zeros_like(y)
    c = 2 * p + 1
    m[:, :, c:-c, c:-c] = 1
    m = torch.nn.functional.grid_sample(m, g, mode="nearest", padding_mode="zeros", align_corners=False)
    return z, m


def _t_fractional_rotation(torch, x, angle):
    return _t_affine(torch, x, _t_rotation_matrix(torch, angle))


def _t_pseudo_rotation(torch, x, angle, a=3):
    f = _t_bandlimit_filter(torch, _t_rotation_matrix(torch, -angle), a, 2 * a, 1)
    y = _t_filter2d(torch, x, f)
    m = torch.zeros_like(y)
    c = f.shape[0] // 2
    m[:, :, c:-c, c:-c] = 1
    return y, m


def _nhwc(torch, t):
    return np.transpose(t.numpy(), (0, 2, 3, 1))


def _images(n=2, h=16, w=16, c=3):
    return RNG.randn(n, h, w, c).astype(np.float32)


@pytest.mark.parametrize("tx,ty", [(0.19, -0.3), (-0.04, 0.0), (0.55, 0.9), (1.3, 0.1)])
def test_integer_translation_matches_torch(torch, tx, ty):
    x = _images()
    z, m = jax.jit(eq.integer_translation)(x, tx, ty)
    rz, rm = _t_integer_translation(torch, torch.from_numpy(x.transpose(0, 3, 1, 2)), tx, ty)
    np.testing.assert_array_equal(np.asarray(m), _nhwc(torch, rm))
    np.testing.assert_array_equal(np.asarray(z), _nhwc(torch, rz))


@pytest.mark.parametrize("tx,ty", [(0.123, -0.27), (-0.04, 0.31), (0.0, 0.0), (-0.9, 0.05)])
def test_fractional_translation_matches_torch(torch, tx, ty):
    x = _images()
    z, m = jax.jit(eq.fractional_translation)(x, tx, ty)
    rz, rm = _t_fractional_translation(torch, torch.from_numpy(x.transpose(0, 3, 1, 2)), tx, ty)
    np.testing.assert_array_equal(np.asarray(m), _nhwc(torch, rm))
    np.testing.assert_allclose(np.asarray(z), _nhwc(torch, rz), atol=2e-6, rtol=0)


def test_bandlimit_filter_matches_torch(torch):
    for angle, up in ((0.7, 4), (-2.3, 1)):
        ours = eq.construct_affine_bandlimit_filter(eq.rotation_matrix(angle), a=3, amax=6, up=up)
        ref = _t_bandlimit_filter(torch, _t_rotation_matrix(torch, angle), 3, 6, up).numpy()
        assert ours.shape == ref.shape == ((47, 47) if up == 4 else (11, 11))
        np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("angle", [0.7, -2.3])
def test_rotation_matches_torch(torch, angle):
    x = _images()
    z, m = jax.jit(eq.fractional_rotation)(x, angle)
    rz, rm = _t_fractional_rotation(torch, torch.from_numpy(x.transpose(0, 3, 1, 2)), angle)
    np.testing.assert_array_equal(np.asarray(m), _nhwc(torch, rm))
    np.testing.assert_allclose(np.asarray(z), _nhwc(torch, rz), atol=2e-5, rtol=0)
    p, pm = jax.jit(eq.fractional_pseudo_rotation)(x, angle)
    rp, rpm = _t_pseudo_rotation(torch, torch.from_numpy(x.transpose(0, 3, 1, 2)), angle)
    np.testing.assert_array_equal(np.asarray(pm), _nhwc(torch, rpm))
    np.testing.assert_allclose(np.asarray(p), _nhwc(torch, rp), atol=2e-5, rtol=0)


def test_affine_with_translation_matches_torch(torch):
    x = _images(h=16, w=12)
    mat = np.array([[0.9, 0.35, 0.07], [-0.3, 1.05, -0.11], [0, 0, 1]], np.float32)
    z, m = jax.jit(lambda x, mat: eq.affine_transformation(x, mat, a=3, amax=6))(x, mat)
    rz, rm = _t_affine(torch, torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(mat))
    np.testing.assert_array_equal(np.asarray(m), _nhwc(torch, rm))
    np.testing.assert_allclose(np.asarray(z), _nhwc(torch, rz), atol=2e-5, rtol=0)


def test_matrices_and_operator_directions():
    np.testing.assert_allclose(eq.rotation_matrix(np.pi / 2), [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-7)
    np.testing.assert_array_equal(eq.translation_matrix(0.25, -0.5), [[1, 0, 0.25], [0, 1, -0.5], [0, 0, 1]])
    x = np.zeros((1, 16, 16, 1), np.float32)
    x[0, 5, 4, 0] = 1
    z, _ = eq.integer_translation(x, 2 / 16, 3 / 16)             # +x right, +y down
    assert np.argwhere(np.asarray(z)[0, :, :, 0]).tolist() == [[8, 6]]
    # A quarter turn by +pi/2 takes +x to -y (counterclockwise on screen): a bump right of the
    # centre ends up above it.
    x = np.zeros((1, 32, 32, 1), np.float32)
    x[0, 15:17, 22:24, 0] = 1
    z, _ = jax.jit(eq.fractional_rotation)(x, np.pi / 2)
    i, j = np.unravel_index(np.argmax(np.asarray(z)[0, :, :, 0]), (32, 32))
    assert 8 <= i <= 9 and 15 <= j <= 16


# --- the metric on toy generators -------------------------------------------------------------------

RES = 24
FREQS = np.array([[1.0, 0.5], [-2.0, 1.0], [0.5, -3.0], [2.5, 2.0]], np.float32)   # cycles / image width
AMPS = np.array([[0.3, 0.2, 0.1], [0.2, -0.3, 0.25], [-0.25, 0.2, 0.3], [0.2, 0.25, -0.3]], np.float32)


def _mapping(params, z, c):
    return z[:, :4] * np.pi + params["offset"]          # per-sample phases


def _toy_synthesis(mode):
    """images(p) = sum_k amps_k cos(2 pi f_k . (A p + b) + w_k) on the pixel centres p, with
    transform [[A, b], [0, 1]] as StyleGAN3's input layer applies it ('eq'); 'ignore' drops the
    transform, 'inverse' applies its inverse (the opposite sign convention)."""
    def synthesis_t(params, w, c, transform):
        s = (jnp.arange(RES, dtype=jnp.float32) + 0.5) / RES - 0.5
        py, px = jnp.meshgrid(s, s, indexing="ij")
        t = {"eq": transform, "ignore": jnp.eye(3), "inverse": jnp.linalg.inv(transform)}[mode]
        qx = t[0, 0] * px + t[0, 1] * py + t[0, 2]
        qy = t[1, 0] * px + t[1, 1] * py + t[1, 2]
        arg = 2 * np.pi * (FREQS[:, 0, None, None] * qx + FREQS[:, 1, None, None] * qy)
        return jnp.einsum("bkhw,kc->bhwc", jnp.cos(arg[None] + w[:, :, None, None]), AMPS)
    return synthesis_t


def _psnrs(mode, **kw):
    return eq.equivariance_psnr(_mapping, _toy_synthesis(mode), {"offset": jnp.float32(0.3)}, num_samples=5,
                                batch_size=2, key=jax.random.key(1), z_dim=4, eqt_int=True, eqt_frac=True,
                                eqr=True, **kw)


def test_equivariant_generator_scores_high():
    r = _psnrs("eq")
    assert set(r) == {"eqt_int", "eqt_frac", "eqr"}
    assert r["eqt_int"] > 50 and r["eqt_frac"] > 50 and r["eqr"] > 50, r


@pytest.mark.parametrize("mode", ["ignore", "inverse"])
def test_non_equivariant_generator_scores_low(mode):
    r = _psnrs(mode)
    assert max(r.values()) < 20, r


def test_metric_names():
    assert parse_metric("eqt50k_int") == parse_metric("eqt50k_int")
    m = parse_metric("eqt50k_int")
    assert (m.kind, m.num_gen) == ("eqt_int", 50_000)
    assert (parse_metric("eqt10k_frac").kind, parse_metric("eqt10k_frac").num_gen) == ("eqt_frac", 10_000)
    assert (parse_metric("eqr0.5k").kind, parse_metric("eqr0.5k").num_gen) == ("eqr", 500)
    for bad in ("eqt50k", "eqr50k_int", "eqt50k_full", "eqr", "eqt0k_int"):
        with pytest.raises(ValueError, match="unknown metric"):
            parse_metric(bad)


def test_compute_metrics_equivariance():
    def generate(params, z, c, key):
        return _toy_synthesis("eq")(params, _mapping(params, z, c), c, jnp.eye(3))

    params = {"offset": jnp.float32(0.0)}
    spec = GeneratorSpec(generate, params, z_dim=4)
    with pytest.raises(ValueError, match="does not support user-specified"):
        compute_metrics(["eqt50k_int"], spec)
    spec = GeneratorSpec(generate, params, z_dim=4, mapping=_mapping, synthesis_t=_toy_synthesis("eq"))
    r = compute_metrics(["eqt0.004k_int", "eqr0.004k"], spec)   # no dataset needed
    assert set(r) == {"eqt0.004k_int", "eqr0.004k"} and min(r.values()) > 50, r


# --- spectrum --------------------------------------------------------------------------------------

def test_spectrum_peak_at_cosine_frequency():
    h, w, k = 32, 32, 5
    x = np.cos(2 * np.pi * k * np.arange(w) / w + 0.4)[None, None, :, None] * np.ones((3, h, 1, 2))
    spec = sp.mean_power_spectrum(x.astype(np.float32))
    assert spec.shape == (4 * h, 4 * w)
    c = spec.shape[0] // 2
    peaks = sorted(map(tuple, np.argwhere(spec >= spec.max() * 0.999)))
    assert peaks == [(c, c - 4 * k), (c, c + 4 * k)]
    # Whitened unit-variance input, window of unit energy: the power sums to H * W per pixel
    # of padded spectrum (Parseval), whatever the padding.
    np.testing.assert_allclose(spec.sum() / spec.size, 1.0, rtol=0.02)
    freqs, prof = sp.radial_profile(spec, image_size=w)
    assert freqs[np.argmax(prof)] == pytest.approx(k)
    hmap = sp.spectrum_heatmap(spec, image_size=w)
    assert hmap.shape == (4 * h + 1, 4 * w + 1)
    img = sp.heatmap_to_uint8(hmap)
    assert img.shape == hmap.shape + (3,) and img.dtype == np.uint8
    s0, s45 = sp.spectrum_slices(hmap)
    assert s0.shape == s45.shape == (2 * h + 1,)
