"""The embedded datasets: `mnist5k` (the default) and `animal-mnist`, both 28x28 grayscale.

Their arrays come from `gigajax.assets` (pinned packages, cached, offline after the first
fetch). The digits are zero-padded by 2 pixels on each side to 32x32, the way StyleGAN-era
papers train on MNIST, because every generator here wants a power-of-two resolution.

A requested `resolution` other than 32 resizes the padded 32x32 images with PIL: Lanczos when
upsampling (sharp strokes), box when downsampling (an exact area average for integer factors,
so 32 -> 16 is a 2x2 mean and no aliasing). Padding first keeps the digit at the same relative
size and position whatever the resolution.
"""

from __future__ import annotations

import numpy as np
import PIL.Image

from gigajax.data.base import ArraySource
from gigajax.data.errors import DataError

EMBEDDED = ("mnist5k", "animal-mnist")
RAW_SIZE = 28
PAD = 2
NATIVE_RESOLUTION = RAW_SIZE + 2 * PAD  # 32


def open_embedded(name: str, *, resolution: int | None = None, use_labels: bool = True) -> ArraySource:
    """Load embedded dataset `name` -> ArraySource of uint8 [N, R, R, 1] (R = resolution or 32)."""
    from gigajax import assets  # lazy: assets pulls in download machinery that folder/TFDS users never need

    arrays = assets.load(name)
    raw = _raw_images(name, arrays)
    images = np.pad(raw, ((0, 0), (PAD, PAD), (PAD, PAD)))
    if resolution is not None and resolution != NATIVE_RESOLUTION:
        images = resize_square(images, resolution)
    labels, num_classes = _labels(name, arrays, len(images)) if use_labels else (None, 0)
    return ArraySource(name, images[..., None], labels, num_classes, class_names=arrays.get("class_names"))


def resize_square(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [N, S, S] -> uint8 [N, R, R]: Lanczos when R > S, box filter when R < S (see module doc)."""
    size = images.shape[1]
    resample = PIL.Image.Resampling.LANCZOS if resolution > size else PIL.Image.Resampling.BOX
    out = np.empty((len(images), resolution, resolution), np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(PIL.Image.fromarray(image, "L").resize((resolution, resolution), resample))
    return out


def _raw_images(name: str, arrays) -> np.ndarray:
    images = np.asarray(arrays["images"])
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (RAW_SIZE, RAW_SIZE):
        raise DataError(f"{name}: asset images: expected uint8 [N, {RAW_SIZE}, {RAW_SIZE}], "
                        f"got {images.dtype} {images.shape}")
    return images


def _labels(name: str, arrays, count: int) -> tuple[np.ndarray, int]:
    """-> (int64 [N] labels, num_classes); the class count comes from `class_names` when the
    asset has them (a class may be absent from a subset), else from the largest label."""
    labels = np.asarray(arrays["labels"]).astype(np.int64)
    if "class_names" in arrays:
        num_classes = len(arrays["class_names"])
    else:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.shape != (count,):
        raise DataError(f"{name}: asset has {labels.shape} labels for {count} images")
    return labels, num_classes
