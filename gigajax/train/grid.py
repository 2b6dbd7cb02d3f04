"""Sample grids: a batch of generated images tiled into one PNG."""

from __future__ import annotations

import os

import numpy as np


def to_uint8(images) -> np.ndarray:
    """float images in [-1, 1], [N, H, W, C] -> uint8 [N, H, W, C], rounded as StyleGAN does."""
    x = np.asarray(images, np.float32)
    return np.clip(np.rint(x * 127.5 + 128.0), 0, 255).astype(np.uint8)


def tile(images, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """uint8 [rows*cols, H, W, C] -> uint8 [rows*(H+pad)-pad, cols*(W+pad)-pad, C], row-major."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] != rows * cols:
        raise ValueError(f"tile: expected [rows*cols={rows * cols}, H, W, C] images, got shape {x.shape}")
    n, h, w, c = x.shape
    out = np.zeros((rows * (h + pad) - pad, cols * (w + pad) - pad, c), x.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = x[i]
    return out


def save_grid(images, rows: int, cols: int, path: str | os.PathLike) -> str:
    """Write float images in [-1, 1] ([rows*cols, H, W, C], C in {1, 3}) as one PNG; returns the path."""
    from PIL import Image
    g = tile(to_uint8(images), rows, cols)
    if g.shape[-1] == 1:
        g = g[..., 0]
    elif g.shape[-1] != 3:
        raise ValueError(f"save_grid: images must have 1 or 3 channels, got {g.shape[-1]}")
    tmp = f"{os.fspath(path)}.tmp.png"
    Image.fromarray(g).save(tmp)
    os.replace(tmp, path)   # a reader never sees a half-written grid
    return os.fspath(path)
