"""Multi-scale SSIM (Wang et al. 2003) and ProGAN's diversity score: mean MS-SSIM of generated pairs.

Semantics and constants of tkarras/progressive_growing_of_gans `metrics/ms_ssim.py` (itself
TensorFlow's research/compression `msssim.py`, after Zhou Wang's MATLAB `ssim_index_new.m`):

  SSIM at one scale: Gaussian window of FILTER_SIZE = 11, FILTER_SIGMA = 1.5, shrunk to
      size = min(11, H, W) with sigma = size * 1.5 / 11 on small scales (an even size centres the
      taps on half pixels, as MATLAB's fspecial); 'valid' filtering (no padding);
      c1 = (K1 max_val)^2, c2 = (K2 max_val)^2 with K1 = 0.01, K2 = 0.03, MAX_VAL = 255;
      cs = mean (2 s12 + c2) / (s11 + s22 + c2), ssim = mean l * cs-map, the means over
      height, width and channels of each image (so a grayscale image tiled to RGB scores the same).
  scales: WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) (they do not sum to 1, as in the paper);
      between scales the image is averaged over 2x2 blocks (no rounding);
      MS-SSIM = prod_{j < 5} max(cs_j, 0)^w_j * max(ssim_5, 0)^w_5, per pair of images.

Values are 0..255 (uint8, or float on that scale: max_val is the dynamic range). Where an odd size
must be halved (28 -> 14 -> 7 -> 3 for MNIST) we drop the last row/column first; the official code
fails there with a shape mismatch, and for the power-of-two sizes it accepts the two agree.

Diversity (ProGAN Sec. 6, the official `metric-msssim-20k`): N generated images in their sampling
order are paired (0, 1), (2, 3), ... -- the official pairs consecutive images of each minibatch --
and the score is the mean MS-SSIM over the N / 2 pairs (20,000 images -> 10,000 pairs). Lower
means more diverse; it measures diversity only, not quality (Odena et al. 2017).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

FILTER_SIZE = 11
FILTER_SIGMA = 1.5
K1 = 0.01
K2 = 0.03
MAX_VAL = 255.0
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_taps(size: int, sigma: float) -> np.ndarray:
    """1-D normalised Gaussian [size] at offsets arange(size) - (size - 1) / 2: its outer product
    with itself is MATLAB's fspecial('gaussian', size, sigma), half-pixel centred for even size."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-t * t / (2.0 * sigma * sigma))
    return g / g.sum()


def _valid_blur(x: jax.Array, taps: np.ndarray) -> jax.Array:
    """[N, H, W, C] -> separable 'valid' filter with taps x taps per channel [N, H-k+1, W-k+1, C]."""
    c, k = x.shape[-1], len(taps)
    t = jnp.asarray(taps, jnp.float32)
    dn, hp = ("NHWC", "HWIO", "NHWC"), jax.lax.Precision.HIGHEST
    x = jax.lax.conv_general_dilated(x, jnp.tile(t.reshape(k, 1, 1, 1), (1, 1, 1, c)), (1, 1), "VALID",
                                     dimension_numbers=dn, feature_group_count=c, precision=hp)
    return jax.lax.conv_general_dilated(x, jnp.tile(t.reshape(1, k, 1, 1), (1, 1, 1, c)), (1, 1), "VALID",
                                        dimension_numbers=dn, feature_group_count=c, precision=hp)


def ssim_and_cs(img1: jax.Array, img2: jax.Array, *, max_val: float = MAX_VAL, filter_size: int = FILTER_SIZE,
                filter_sigma: float = FILTER_SIGMA, k1: float = K1, k2: float = K2) -> tuple[jax.Array, jax.Array]:
    """One scale: float [N, H, W, C] pairs -> (mean SSIM [N], mean contrast-structure cs [N]).
    The window shrinks to min(filter_size, H, W) with sigma scaled alike; filter_size=0: no window
    (per-pixel statistics, as the official allows)."""
    _, h, w, c = img1.shape
    size = min(filter_size, h, w)
    if filter_size:
        taps = gaussian_taps(size, size * filter_sigma / filter_size)
        # One filter pass for the five moments: stack them as channels.
        stats = _valid_blur(jnp.concatenate([img1, img2, img1 * img1, img2 * img2, img1 * img2], -1), taps)
        mu1, mu2, s11, s22, s12 = jnp.split(stats, 5, axis=-1)
    else:
        mu1, mu2, s11, s22, s12 = img1, img2, img1 * img1, img2 * img2, img1 * img2
    mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s11, s22, s12 = s11 - mu11, s22 - mu22, s12 - mu12
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    v1 = 2.0 * s12 + c2
    v2 = s11 + s22 + c2
    ssim = jnp.mean((2.0 * mu12 + c1) * v1 / ((mu11 + mu22 + c1) * v2), axis=(1, 2, 3))
    cs = jnp.mean(v1 / v2, axis=(1, 2, 3))
    return ssim, cs


def _halve(x: jax.Array) -> jax.Array:
    """[N, H, W, C] -> [N, H//2, W//2, C]: the mean of each 2x2 block (an odd last row/column is dropped)."""
    n, h, w, c = x.shape
    x = x[:, :h - h % 2, :w - w % 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


@functools.partial(jax.jit, static_argnames=("max_val", "filter_size", "filter_sigma", "k1", "k2", "weights"))
def _ms_ssim(img1, img2, max_val, filter_size, filter_sigma, k1, k2, weights):
    x, y = img1.astype(jnp.float32), img2.astype(jnp.float32)
    ssims, css = [], []
    for level in range(len(weights)):
        if level:
            x, y = _halve(x), _halve(y)
        s, c = ssim_and_cs(x, y, max_val=max_val, filter_size=filter_size, filter_sigma=filter_sigma, k1=k1, k2=k2)
        ssims.append(s)
        css.append(c)
    # Clipped at 0: a negative base would give NaN. cs of the last scale is unused (its ssim has it).
    out = jnp.maximum(ssims[-1], 0.0) ** weights[-1]
    for c, w in zip(css[:-1], weights[:-1]):
        out = out * jnp.maximum(c, 0.0) ** w
    return out


def ms_ssim(img1, img2, *, max_val: float = MAX_VAL, filter_size: int = FILTER_SIZE,
            filter_sigma: float = FILTER_SIGMA, k1: float = K1, k2: float = K2,
            weights: tuple[float, ...] = WEIGHTS) -> jax.Array:
    """MS-SSIM of each pair: images [N, H, W, C] (uint8 or float, 0..max_val) -> float32 [N].

    len(weights) scales (the image is halved len(weights) - 1 times, so H, W >= 2^(len - 1));
    module doc for the formula. Symmetric in (img1, img2); 1 for identical images.
    """
    a, b = jnp.asarray(img1), jnp.asarray(img2)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"ms_ssim: expected two image batches [N, H, W, C] of the same shape, got {a.shape} "
                         f"and {b.shape}")
    if not weights or min(a.shape[1:3]) < 2 ** (len(weights) - 1):
        raise ValueError(f"ms_ssim: {len(weights)} scales need images of at least {2 ** (len(weights) - 1)} pixels "
                         f"per side, got {a.shape[1]}x{a.shape[2]}")
    return _ms_ssim(a, b, float(max_val), int(filter_size), float(filter_sigma), float(k1), float(k2),
                    tuple(float(w) for w in weights))


def ms_ssim_pairs(images, **kw) -> jax.Array:
    """images [2P, H, W, C] -> MS-SSIM [P] of the consecutive pairs (0, 1), (2, 3), ... (module doc)."""
    x = jnp.asarray(images)
    if x.ndim != 4 or x.shape[0] % 2:
        raise ValueError(f"ms_ssim_pairs: expected an even number of images [2P, H, W, C], got shape {x.shape}")
    return ms_ssim(x[0::2], x[1::2], **kw)


def msssim_diversity(images, *, batch: int = 64, **kw) -> float:
    """ProGAN's diversity score: mean MS-SSIM over the consecutive pairs of images [2P, H, W, C]
    (uint8 or float, 0..255), computed `batch` images at a time (batch must be even)."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] < 2 or x.shape[0] % 2 or batch % 2:
        raise ValueError(f"msssim_diversity: expected an even number >= 2 of images [2P, H, W, C] and an even "
                         f"batch, got shape {x.shape} and batch={batch}")
    scores = [np.asarray(ms_ssim_pairs(x[i:i + batch], **kw)) for i in range(0, len(x), batch)]
    return float(np.concatenate(scores).astype(np.float64).mean())
