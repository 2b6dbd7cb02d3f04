"""ops.resize_bilinear: torch's bilinear interpolation (align_corners False and True, no antialias)."""

import jax.numpy as jnp
import numpy as np
import pytest

from gigajax import ops
from gigajax.ops.resize import interpolation_matrix


def test_properties():
    x = np.random.RandomState(0).randn(2, 6, 5, 3).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(ops.resize_bilinear(x, (6, 5))), x)          # same size: identity
    up = np.asarray(ops.resize_bilinear(x, (11, 9), align_corners=True))
    np.testing.assert_allclose(up[:, ::2, ::2], x, atol=1e-6)                               # corners aligned: every other
    const = np.asarray(ops.resize_bilinear(np.full((1, 4, 4, 1), 0.3, np.float32), 37))
    np.testing.assert_allclose(const, 0.3, atol=1e-6)
    for n_in, n_out, ac in [(7, 3, False), (4, 9, False), (5, 10, True)]:
        np.testing.assert_allclose(interpolation_matrix(n_in, n_out, ac).sum(1), 1, atol=1e-6)   # rows are averages


def test_half_pixel_centres():
    # 2 -> 4 with align_corners=False samples at -0.25, 0.25, 0.75, 1.25 (clamped): 0, .25, .75, 1.
    got = np.asarray(ops.resize_bilinear(np.array([0.0, 1.0], np.float32).reshape(1, 2, 1, 1), (4, 1)))[0, :, 0, 0]
    np.testing.assert_allclose(got, [0, 0.25, 0.75, 1], atol=1e-7)


@pytest.mark.parametrize("align_corners", [False, True])
def test_matches_torch(align_corners):
    torch = pytest.importorskip("torch")
    x = np.random.RandomState(1).randn(2, 7, 5, 3).astype(np.float32)
    for size in [(14, 10), (3, 2), (224, 224)]:
        ref = torch.nn.functional.interpolate(torch.tensor(x).permute(0, 3, 1, 2), size=size, mode="bilinear",
                                              align_corners=align_corners).permute(0, 2, 3, 1).numpy()
        got = np.asarray(ops.resize_bilinear(jnp.asarray(x), size, align_corners=align_corners))
        np.testing.assert_allclose(got, ref, atol=1e-6)
