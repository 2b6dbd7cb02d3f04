"""FIR filter construction: `setup_filter` (StyleGAN2's resampling filters) and
`design_lowpass_filter` (StyleGAN3's Kaiser-windowed sinc and radial jinc low-pass filters).

Filters are plain float32 numpy arrays. They are constants of a layer, and keeping them concrete
lets the resampling ops see at trace time whether a 2-D filter factors into two 1-D passes.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.special

from gigajax.ops._args import fail


def setup_filter(f, normalize=True, flip_filter=False, gain=1, separable=None):
    """Prepare an FIR filter for `upfirdn2d` (same semantics as the official `setup_filter`).

    Args:
      f: `[fh, fw]` (non-separable), `[taps]` (separable), `[]` (impulse) or None (identity).
      normalize: scale so that the filter keeps the magnitude of a constant (DC) signal.
      flip_filter: flip the filter (turns convolution into correlation).
      gain: overall signal gain; applied as `gain ** (ndim / 2)` so 2-D and separable agree.
      separable: return `[taps]`; None picks separable for 1-D filters of 8 or more taps.

    Returns:
      float32 `[fh, fw]` or `[taps]`.
    """
    f = np.asarray(1.0 if f is None else f, dtype=np.float32)
    if f.ndim not in (0, 1, 2):
        fail("f.shape", f.shape, "[], [taps] or [filter_height, filter_width]")
    if f.size == 0:
        fail("f.shape", f.shape, "a non-empty filter")
    if f.ndim == 0:
        f = f[np.newaxis]
    if separable is None:
        separable = f.ndim == 1 and f.size >= 8
    if f.ndim == 1 and not separable:
        f = np.outer(f, f)
    if f.ndim != (1 if separable else 2):
        fail("separable", separable, f"a layout that fits a filter of shape {f.shape}")
    if normalize:
        total = f.sum()
        if total == 0:
            fail("f", f.tolist(), "taps with a non-zero sum when normalize=True")
        f = f / total
    if flip_filter:
        f = np.flip(f, axis=tuple(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return np.ascontiguousarray(f, dtype=np.float32)


def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    """StyleGAN3's low-pass filter design (alias-free GAN, appendix E).

    Args:
      numtaps: filter length; 1 means identity and returns None.
      cutoff: cutoff frequency f_c, in the units of `fs`.
      width: transition band width (2 * f_h), in the units of `fs`.
      fs: sampling rate.
      radial: False gives a separable Kaiser-windowed sinc `[numtaps]`; True gives a radially
        symmetric jinc `[numtaps, numtaps]` windowed by the outer product of the Kaiser window.

    Returns:
      float32 filter, or None for the identity.
    """
    if int(numtaps) != numtaps or numtaps < 1:
        fail("numtaps", numtaps, "an integer >= 1")
    if numtaps == 1:
        return None
    if not radial:
        f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return np.asarray(f, dtype=np.float32)
    # Jinc: the 2-D analogue of sinc, j1(2*pi*fc*r) / (pi*r); Kaiser beta from the same spec as firwin.
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(t, t))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    f = np.where(r == 0, cutoff, f)  # the jinc's limit at r = 0 (only hit by odd numtaps)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    f = f / np.sum(f)
    return np.asarray(f, dtype=np.float32)
