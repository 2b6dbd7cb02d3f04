"""Latent interpolation animations (NVlabs' gen_video.py, as a GIF): keyframe seeds, linear paths
in W or spherical paths in Z, one sequence or a grid of them.

    ws = interpolation_ws(sampler, seeds=[0, 1, 2], frames_per_transition=30, space="w")
    frames = render_frames(sampler, ws, grid=(1, 1))          # uint8 [T, H, W, C]
    save_gif(frames, "lerp.gif", fps=30)
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from gigajax.tools.sampler import Sampler, seed_z
from gigajax.train.grid import tile, to_uint8

SPACES = ("w", "z")


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """a + t (b - a), in the two-sided form that returns a at t = 0 and b at t = 1 exactly."""
    return a + t * (b - a) if t < 0.5 else b - (1.0 - t) * (b - a)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of [..., D] vectors: sin((1 - t) theta) / sin(theta) a + sin(t theta) /
    sin(theta) b, theta the angle between them (latents of N(0, I) have nearly equal norms, and the
    mapping normalises z anyway). Exact at t = 0 and 1; lerp for (anti)parallel vectors, where the
    great circle is undefined."""
    if t == 0.0:
        return np.asarray(a)
    if t == 1.0:
        return np.asarray(b)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.clip(np.sum(a * b, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-30), -1.0, 1.0)
    theta = np.arccos(cos)
    sin = np.sin(theta)
    safe = sin > 1e-6
    wa = np.where(safe, np.sin((1.0 - t) * theta) / np.where(safe, sin, 1.0), 1.0 - t)
    wb = np.where(safe, np.sin(t * theta) / np.where(safe, sin, 1.0), t)
    return wa * a + wb * b


def _path(keys: np.ndarray, frames_per_transition: int, loop: bool, fn) -> np.ndarray:
    """keys [K, ...] -> [T, ...] with T = (K - 1) F + 1 (ends on the last key) or K F when `loop`
    (the last transition runs back to the first key, which is not repeated)."""
    K, F = len(keys), int(frames_per_transition)
    T = K * F if loop else (K - 1) * F + 1
    out = []
    for f in range(T):
        seg, u = divmod(f, F)
        if seg == K - 1 and not loop:      # the final frame: the last key itself
            seg, u = K - 2, F
        out.append(fn(keys[seg], keys[(seg + 1) % K], u / F))
    return np.stack(out)


def interpolation_ws(sampler: Sampler, seeds: Sequence[int], *, frames_per_transition: int = 30, space: str = "w",
                     grid: tuple[int, int] = (1, 1), loop: bool = False, truncation_psi: float = 1.0,
                     class_idx: int | None = None) -> np.ndarray:
    """float32 [T, rows * cols, num_ws, w_dim]: the ws of every frame of every grid cell.

    grid = (cols, rows) as gen_video's 'WxH'; the seeds are split into rows * cols consecutive
    runs of K = len(seeds) / (rows * cols) keyframes, one per cell (row-major), as gen_video does.
    space 'w': w = mapping(seed) (truncated by psi) interpolated linearly; 'z': z slerped, then
    mapped and truncated frame by frame. T = (K - 1) F + 1 frames, or K F with `loop` (back to
    the first keyframe, for a seamless animation)."""
    if space not in SPACES:
        raise ValueError(f"space={space!r}: expected one of {list(SPACES)}")
    cols, rows = (int(g) for g in grid)
    if cols < 1 or rows < 1:
        raise ValueError(f"grid={grid}: expected (cols, rows) >= 1")
    seeds, cells, F = list(seeds), cols * rows, int(frames_per_transition)
    if F < 1:
        raise ValueError(f"frames_per_transition={F}: expected >= 1")
    if len(seeds) % cells or len(seeds) // cells < 2:
        raise ValueError(f"{len(seeds)} seeds for a {cols}x{rows} grid: expected a multiple of {cells} with "
                         f"at least 2 keyframes per cell")
    K = len(seeds) // cells
    z = seed_z(seeds, sampler.z_dim).reshape(cells, K, sampler.z_dim)
    c = sampler.labels(class_idx, 1)
    if space == "w":
        ws = sampler.ws(z.reshape(cells * K, -1), np.repeat(c, cells * K, 0), truncation_psi)
        ws = ws.reshape(cells, K, sampler.num_ws, sampler.w_dim)
        paths = [_path(ws[i], F, loop, lerp) for i in range(cells)]             # [cells][T, L, D]
        return np.stack(paths, axis=1).astype(np.float32)
    zs = np.stack([_path(z[i], F, loop, slerp) for i in range(cells)], axis=1)   # [T, cells, z_dim]
    T = zs.shape[0]
    ws = sampler.ws(zs.reshape(T * cells, -1).astype(np.float32), np.repeat(c, T * cells, 0), truncation_psi)
    return ws.reshape(T, cells, sampler.num_ws, sampler.w_dim)


def render_frames(sampler: Sampler, ws: np.ndarray, grid: tuple[int, int] = (1, 1), *,
                  noise_mode: str = "const") -> np.ndarray:
    """ws [T, rows * cols, num_ws, w_dim] -> uint8 frames [T, rows (H + 1) - 1, cols (W + 1) - 1, C],
    each frame the cells tiled row-major with 1 px gutters (just [T, H, W, C] for a 1x1 grid).
    Rendered a few frames at a time and quantised as it goes: long animations never hold all
    frames in float."""
    cols, rows = (int(g) for g in grid)
    T, cells = ws.shape[:2]
    if cells != cols * rows:
        raise ValueError(f"ws has {cells} cells per frame, the grid {cols}x{rows} needs {cols * rows}")
    per_call = max(1, sampler.batch_size // cells)              # whole frames per synthesis call
    out = []
    for start in range(0, T, per_call):
        chunk = np.asarray(ws[start:start + per_call])
        img = to_uint8(sampler.images(chunk.reshape(-1, *ws.shape[2:]), noise_mode=noise_mode))
        out.extend(tile(img[i:i + cells], rows, cols) for i in range(0, len(img), cells))
    return np.stack(out)


def save_gif(frames: np.ndarray, path: str | os.PathLike, fps: float = 30.0) -> str:
    """uint8 frames [T, H, W, C] (C = 1 or 3) -> an endlessly looping animated GIF; returns the path.

    GIF stores 256 colours per frame (Pillow quantises RGB frames adaptively). Pillow also merges
    consecutive frames that are pixel-identical into one longer frame, so a still animation has
    fewer frames than T."""
    from PIL import Image
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3) or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"save_gif: expected uint8 frames [T >= 1, H, W, 1 or 3], got {frames.dtype} {frames.shape}")
    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
    duration = max(int(round(1000.0 / float(fps))), 10)       # ms; browsers clamp shorter delays anyway
    images[0].save(os.fspath(path), save_all=True, append_images=images[1:], duration=duration, loop=0)
    return os.fspath(path)


def interpolation_gif(sampler: Sampler, seeds: Sequence[int], path: str | os.PathLike, *,
                      frames_per_transition: int = 30, space: str = "w", grid: tuple[int, int] = (1, 1),
                      loop: bool = False, truncation_psi: float = 1.0, class_idx: int | None = None,
                      fps: float = 30.0, noise_mode: str = "const") -> str:
    """interpolation_ws -> render_frames -> save_gif in one call; returns the GIF's path."""
    ws = interpolation_ws(sampler, seeds, frames_per_transition=frames_per_transition, space=space, grid=grid,
                          loop=loop, truncation_psi=truncation_psi, class_idx=class_idx)
    return save_gif(render_frames(sampler, ws, grid, noise_mode=noise_mode), path, fps)
