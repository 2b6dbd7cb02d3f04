"""Average power spectra of image sets, the StyleGAN3 paper's spectral analysis (NVlabs'
`avg_spectra.py`): how much energy real and generated images carry at each 2-D frequency.

Each image is whitened with one scalar mean and standard deviation (NVlabs uses the dataset's, over
all pixels and channels, so that real and generated spectra are on the same scale; pass them),
multiplied by a separable Kaiser window (beta 8, scaled to unit energy), zero-padded at the
bottom/right to `interp` times its size (finer frequency sampling), and |FFT|^2 is averaged over
channels and images (float32 FFTs on the device, float64 sums on the host).

    spec = mean_power_spectrum(images, mean=m, std=s)   # [4H, 4W], DC at [2H, 2W]
    hmap = spectrum_heatmap(spec, image_size=H, smooth=1.25)        # dB, [4H + 1, 4W + 1]
    png  = heatmap_to_uint8(hmap)                                    # [4H + 1, 4W + 1, 3] uint8
    freqs, power = radial_profile(spec, image_size=H)                # mean power per |f|
    s0, s45 = spectrum_slices(hmap)                                  # the paper's 0/45 degree cuts

Frequencies: bin k of an S-point spectrum of an image of size N is k N / S cycles per image;
the spectrum runs from -N/2 to N/2 (Nyquist) cycles per image.
"""

from __future__ import annotations

from functools import partial
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

# ColorBrewer 'Blues' (9 classes), light to dark: the colour map of NVlabs' heatmaps.
_BLUES = np.array([[247, 251, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
                   [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107]], np.float64)


def kaiser_window(n: int, beta: float = 8.0) -> np.ndarray:
    """Symmetric Kaiser window [n] (torch.kaiser_window(periodic=False)), scaled to unit energy."""
    w = np.kaiser(n, beta).astype(np.float64)
    return w / np.sqrt(np.sum(w * w))


@partial(jax.jit, static_argnames=("size",))
def _power_sum(x, window, mean, std, size):
    x = (x.astype(jnp.float32) - mean) / std * window[None, :, :, None]
    f = jnp.fft.fft2(x, s=size, axes=(1, 2))               # zero-pads at the bottom / right
    power = jnp.square(jnp.real(f)) + jnp.square(jnp.imag(f))
    return jnp.sum(jnp.mean(power, axis=3), axis=0)


def _spectrum_size(size, interp, h, w):
    if size is None:
        return int(interp) * h, int(interp) * w
    sh, sw = (int(size), int(size)) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
    if sh < h or sw < w:
        raise ValueError(f"spectrum size={size}: must be at least the image size {h}x{w}")
    return sh, sw


def mean_power_spectrum(images, *, mean: float | None = None, std: float | None = None, beta: float = 8.0,
                        interp: int = 4, size=None, batch_size: int = 32) -> np.ndarray:
    """Average power spectrum (module doc) -> float64 [S_h, S_w], fft-shifted: DC at [S_h // 2, S_w // 2].

    images: [N, H, W, C] array (any value range), or an iterable of such batches (then mean and
      std are required: they must be known before the first batch).
    mean, std: whitening scalars; default the mean / standard deviation of all values of `images`.
    size: spectrum size (int or (S_h, S_w)); default interp x the image size.
    """
    is_array = hasattr(images, "shape") and hasattr(images, "dtype")
    if is_array:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(f"mean_power_spectrum: expected images [N, H, W, C], got shape {images.shape}")
        if mean is None:
            mean = float(np.mean(images, dtype=np.float64))
        if std is None:
            std = float(np.std(images, dtype=np.float64))
        batches: Iterable = (images[i:i + batch_size] for i in range(0, len(images), batch_size))
    else:
        if mean is None or std is None:
            raise ValueError("mean_power_spectrum: pass mean= and std= when images is an iterable of batches")
        batches = images
    if not std > 0:
        raise ValueError(f"mean_power_spectrum: std={std} must be positive (constant images?)")

    total, count, shape, fns = None, 0, None, {}
    for batch in batches:
        batch = np.asarray(batch)
        if batch.ndim != 4:
            raise ValueError(f"mean_power_spectrum: expected batches [N, H, W, C], got shape {batch.shape}")
        h, w = batch.shape[1:3]
        if shape is None:
            shape = (h, w)
            s = _spectrum_size(size, interp, h, w)
            window = jnp.asarray(np.outer(kaiser_window(h, beta), kaiser_window(w, beta)), jnp.float32)
        elif (h, w) != shape:
            raise ValueError(f"mean_power_spectrum: all images must be {shape[0]}x{shape[1]}, got {h}x{w}")
        part = np.asarray(_power_sum(batch, window, jnp.float32(mean), jnp.float32(std), s), np.float64)
        total = part if total is None else total + part
        count += batch.shape[0]
    if not count:
        raise ValueError("mean_power_spectrum: no images")
    return np.fft.fftshift(total / count)


def to_db(power, floor: float = 1e-30) -> np.ndarray:
    """10 log10(power), power clipped below at `floor`."""
    return 10 * np.log10(np.maximum(np.asarray(power, np.float64), floor))


def spectrum_heatmap(spectrum, *, image_size: int | None = None, smooth: float = 0.0) -> np.ndarray:
    """Shifted spectrum [S, S] -> dB map [S + 1, S + 1] with both Nyquist edges (the first row and
    column repeated at the end, so DC sits exactly in the middle), optionally smoothed by a
    Gaussian of sigma = S / image_size * smooth bins (NVlabs' heatmaps use smooth = 1.25)."""
    hmap = to_db(spectrum)
    hmap = np.concatenate([hmap, hmap[:1, :]], axis=0)
    hmap = np.concatenate([hmap, hmap[:, :1]], axis=1)
    if smooth > 0:
        if image_size is None:
            raise ValueError("spectrum_heatmap: smooth > 0 needs image_size")
        import scipy.ndimage
        hmap = scipy.ndimage.gaussian_filter(hmap, sigma=spectrum.shape[0] / image_size * smooth, mode="nearest")
    return hmap


def heatmap_to_uint8(hmap, levels: tuple[float, float] = (-40.0, 20.0), flip: bool = True) -> np.ndarray:
    """dB map [h, w] -> RGB uint8 [h, w, 3], ready for a PNG: light (<= levels[0] dB) to dark blue
    (>= levels[1] dB), NVlabs' colour range. flip: put +f_y at the top as a plot's y axis does."""
    lo, hi = levels
    if not hi > lo:
        raise ValueError(f"heatmap_to_uint8: levels={levels} must be increasing")
    u = np.clip((np.asarray(hmap, np.float64) - lo) / (hi - lo), 0, 1) * (len(_BLUES) - 1)
    i = np.minimum(np.floor(u).astype(np.int64), len(_BLUES) - 2)
    frac = (u - i)[..., None]
    rgb = _BLUES[i] * (1 - frac) + _BLUES[i + 1] * frac
    if flip:
        rgb = rgb[::-1]
    return np.ascontiguousarray(np.round(rgb).astype(np.uint8))


def radial_profile(spectrum, *, image_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shifted square spectrum [S, S] -> (freqs [S // 2 + 1], mean power over the ring of bins whose
    distance from DC rounds to r, r = 0 .. S // 2). freqs in cycles per image when image_size is
    given, else in cycles per pixel of the padded grid (r / S)."""
    spectrum = np.asarray(spectrum, np.float64)
    s = spectrum.shape[0]
    if spectrum.ndim != 2 or spectrum.shape[1] != s:
        raise ValueError(f"radial_profile: expected a square spectrum, got shape {spectrum.shape}")
    c = s // 2
    yy, xx = np.indices(spectrum.shape)
    r = np.rint(np.hypot(yy - c, xx - c)).astype(np.int64)
    keep = r <= c
    sums = np.bincount(r[keep], weights=spectrum[keep], minlength=c + 1)
    counts = np.bincount(r[keep], minlength=c + 1)
    rad = np.arange(c + 1, dtype=np.float64)
    freqs = rad * image_size / s if image_size is not None else rad / s
    return freqs, sums / np.maximum(counts, 1)


def spectrum_slices(hmap) -> tuple[np.ndarray, np.ndarray]:
    """The paper's cuts of a `spectrum_heatmap` [S + 1, S + 1] from DC outwards: 0 degrees
    (along +f_x, S / 2 + 1 values up to N / 2 cycles per image) and 45 degrees (the diagonal,
    up to N / sqrt(2))."""
    hmap = np.asarray(hmap)
    c = hmap.shape[0] // 2
    idx = np.arange(c, hmap.shape[0])
    return hmap[c, idx], hmap[idx, idx]
